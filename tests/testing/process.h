// Child processes for multi-process tests: start a binary with arguments (stderr to a
// log file, stdout to a pipe the test can read), signal it, wait for it.
#ifndef SF_TESTS_TESTING_PROCESS_H_
#define SF_TESTS_TESTING_PROCESS_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sf::testing {

class Process {
 public:
  // Starts `argv[0]` with `argv`; its stderr goes to `log_path`. nullptr if fork fails.
  static std::unique_ptr<Process> Start(const std::vector<std::string>& argv,
                                        const std::string& log_path) {
    int out[2];
    if (pipe(out) != 0) return nullptr;
    const pid_t pid = fork();
    if (pid < 0) return nullptr;
    if (pid == 0) {
      dup2(out[1], 1);
      const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (log >= 0) dup2(log, 2);
      close(out[0]);
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(out[1]);
    auto p = std::unique_ptr<Process>(new Process);
    p->pid_ = pid;
    p->stdout_ = out[0];
    return p;
  }

  ~Process() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      Wait();
    }
    if (stdout_ >= 0) close(stdout_);
  }

  // Reads stdout until a line "... port N ..." appears; returns N, or -1 on timeout/EOF.
  int ReadPort(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    std::string text;
    while (absl::Now() < deadline) {
      pollfd fd{stdout_, POLLIN, 0};
      if (poll(&fd, 1, 100) <= 0) continue;
      char buf[256];
      const ssize_t n = read(stdout_, buf, sizeof(buf));
      if (n <= 0) return -1;
      text.append(buf, static_cast<size_t>(n));
      const size_t at = text.find("port ");
      if (at == std::string::npos) continue;
      size_t end = at + 5;
      while (end < text.size() && isdigit(static_cast<unsigned char>(text[end]))) ++end;
      int port = 0;
      if (end < text.size() && absl::SimpleAtoi(text.substr(at + 5, end - at - 5), &port)) {
        return port;
      }
    }
    return -1;
  }

  void Signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }
  // The child's process id while it runs (for /proc), -1 after Wait().
  pid_t pid() const { return pid_; }
  // Waits for exit; returns the exit code, 128 + signal for a signal, -1 if not started.
  int Wait() {
    if (pid_ <= 0) return exit_code_;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
  }
  bool Running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == 0) return true;
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }

 private:
  Process() = default;
  pid_t pid_ = -1;
  int stdout_ = -1;
  int exit_code_ = -1;
};

}  // namespace sf::testing

#endif  // SF_TESTS_TESTING_PROCESS_H_
