#include "common/logging.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sf {
namespace {

LogLevel InitialLevel() {
  LogLevel level = LogLevel::kInfo;
  if (const char* env = std::getenv("SF_LOG_LEVEL")) ParseLogLevel(env, &level);
  return level;
}

std::atomic<int>& MinLevelStorage() {
  static std::atomic<int> level(static_cast<int>(InitialLevel()));
  return level;
}

// The sink, swapped under a mutex and called outside it with a copy so that a sink
// being replaced is never destroyed mid-call.
std::mutex& SinkMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}
std::shared_ptr<const LogSink>& SinkStorage() {
  static auto* sink = new std::shared_ptr<const LogSink>;
  return *sink;
}

char LevelLetter(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return 'D';
    case LogLevel::kInfo:
      return 'I';
    case LogLevel::kWarning:
      return 'W';
    case LogLevel::kError:
      return 'E';
    case LogLevel::kFatal:
      return 'F';
  }
  return '?';
}

}  // namespace

void SetLogSink(LogSink sink) {
  std::shared_ptr<const LogSink> next =
      sink ? std::make_shared<const LogSink>(std::move(sink)) : nullptr;
  std::lock_guard<std::mutex> lock(SinkMutex());
  SinkStorage() = std::move(next);
}

void SetMinLogLevel(LogLevel level) { MinLevelStorage().store(static_cast<int>(level)); }

LogLevel MinLogLevel() { return static_cast<LogLevel>(MinLevelStorage().load()); }

bool ParseLogLevel(absl::string_view text, LogLevel* level) {
  std::string t(text);
  absl::AsciiStrToLower(&t);
  if (t == "debug")
    *level = LogLevel::kDebug;
  else if (t == "info")
    *level = LogLevel::kInfo;
  else if (t == "warning" || t == "warn")
    *level = LogLevel::kWarning;
  else if (t == "error")
    *level = LogLevel::kError;
  else
    return false;
  return true;
}

namespace logging_internal {

LogMessage::LogMessage(LogLevel level, const char* file, int line) : level_(level) {
  const char* base = std::strrchr(file, '/');
  stream_ << LevelLetter(level) << ' '
          << absl::FormatTime("%Y-%m-%d %H:%M:%E3S", absl::Now(), absl::LocalTimeZone()) << ' '
          << (base ? base + 1 : file) << ':' << line << "] ";
}

LogMessage::~LogMessage() {
  stream_ << '\n';
  const std::string text = stream_.str();
  std::shared_ptr<const LogSink> sink;
  {
    std::lock_guard<std::mutex> lock(SinkMutex());
    sink = SinkStorage();
  }
  if (sink && level_ != LogLevel::kFatal) {
    (*sink)(text);
  } else {
    // One write() so that lines from several threads never interleave.
    ssize_t unused = ::write(STDERR_FILENO, text.data(), text.size());
    (void)unused;
  }
  if (level_ == LogLevel::kFatal) std::abort();
}

}  // namespace logging_internal
}  // namespace sf
