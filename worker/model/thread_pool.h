// A fixed pool of threads running parallel-for loops for the CPU backend: the
// calling thread takes part, chunks are handed out dynamically (attention blocks
// have uneven cost under a causal mask).
#ifndef SF_WORKER_MODEL_THREAD_POOL_H_
#define SF_WORKER_MODEL_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace sf::model {

class ThreadPool {
 public:
  // `num_threads` <= 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over disjoint chunks covering [0, n), chunks of at most
  // `grain` items, on all threads; returns when all are done. Not reentrant: fn must
  // not call ParallelFor on the same pool.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  struct Job {
    const std::function<void(int64_t, int64_t)>* fn = nullptr;
    int64_t n = 0;
    int64_t grain = 1;
    std::atomic<int64_t> next{0};
  };
  void WorkerLoop();
  static void RunChunks(Job& job);

  // std::mutex and condition variables: the pool needs nothing more, and ThreadSanitizer
  // (SF_TSAN=ON) sees them in any build of abseil.
  std::mutex mu_;
  std::condition_variable work_cv_;  // a job was posted, or stop_
  std::condition_variable idle_cv_;  // busy_ dropped to zero
  Job* job_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace sf::model

#endif  // SF_WORKER_MODEL_THREAD_POOL_H_
