// Minimal leveled logging to stderr (Debian's abseil has no absl/log):
//   SF_LOG(INFO) << "leased " << n << " jobs";
//   SF_CHECK(ptr != nullptr) << "why";   // programmer bugs only: aborts
// The minimum level comes from SF_LOG_LEVEL (DEBUG, INFO, WARNING, ERROR; default
// INFO) or SetMinLogLevel(). Each message is written with one write() call.
#ifndef SF_COMMON_LOGGING_H_
#define SF_COMMON_LOGGING_H_

#include <functional>
#include <sstream>

#include "absl/strings/string_view.h"

namespace sf {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kFatal = 4 };

void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();
// Parses "debug", "INFO", "warning", "error" (case-insensitive); false if unknown.
bool ParseLogLevel(absl::string_view text, LogLevel* level);

// Where log lines go instead of stderr while set, e.g. a progress display that redraws
// around them (sfctl run); an empty function restores stderr. Each call gets one whole
// line with its trailing newline; the sink may be called from any thread at once and
// must not log itself. Fatal messages always go to stderr too.
using LogSink = std::function<void(absl::string_view line)>;
void SetLogSink(LogSink sink);

namespace logging_internal {

class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();  // writes the line; aborts for kFatal
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

// Swallows the stream expression when the level is disabled.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace logging_internal
}  // namespace sf

#define SF_LOG_LEVEL_DEBUG ::sf::LogLevel::kDebug
#define SF_LOG_LEVEL_INFO ::sf::LogLevel::kInfo
#define SF_LOG_LEVEL_WARNING ::sf::LogLevel::kWarning
#define SF_LOG_LEVEL_ERROR ::sf::LogLevel::kError
#define SF_LOG_LEVEL_FATAL ::sf::LogLevel::kFatal

#define SF_LOG(level)                          \
  (SF_LOG_LEVEL_##level < ::sf::MinLogLevel()) \
      ? (void)0                                \
      : ::sf::logging_internal::Voidify() &    \
            ::sf::logging_internal::LogMessage(SF_LOG_LEVEL_##level, __FILE__, __LINE__).stream()

#define SF_CHECK(cond)                                                                        \
  (cond) ? (void)0                                                                            \
         : ::sf::logging_internal::Voidify() &                                                \
               ::sf::logging_internal::LogMessage(::sf::LogLevel::kFatal, __FILE__, __LINE__) \
                       .stream()                                                              \
                   << "Check failed: " #cond " "

#endif  // SF_COMMON_LOGGING_H_
