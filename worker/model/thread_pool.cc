#include "worker/model/thread_pool.h"

#include <algorithm>

namespace sf::model {

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0)
    num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::RunChunks(Job& job) {
  while (true) {
    const int64_t begin = job.next.fetch_add(job.grain);
    if (begin >= job.n) return;
    (*job.fn)(begin, std::min(job.n, begin + job.grain));
  }
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  while (true) {
    Job* job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // job_ is null once the poster has collected its job: a late waker waits for
      // the next one instead of touching a finished job.
      while (!stop_ && (generation_ == seen || job_ == nullptr)) work_cv_.wait(lock);
      if (stop_) return;
      seen = generation_;
      job = job_;
      ++busy_;
    }
    RunChunks(*job);
    std::lock_guard<std::mutex> lock(mu_);
    if (--busy_ == 0) idle_cv_.notify_all();
  }
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (workers_.empty() || n <= grain) {
    fn(0, n);
    return;
  }
  Job job;
  job.fn = &fn;
  job.n = n;
  job.grain = grain;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &job;
    ++generation_;
  }
  work_cv_.notify_all();
  RunChunks(job);
  std::unique_lock<std::mutex> lock(mu_);
  job_ = nullptr;
  while (busy_ > 0) idle_cv_.wait(lock);
}

}  // namespace sf::model
