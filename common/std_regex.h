// The one way project code includes <regex>: GCC 12 with -fsanitize=address (SF_ASAN)
// reports -Wmaybe-uninitialized inside libstdc++'s regex automaton (std::function moved
// out of a _State built on the stack), a false positive of the compiler in a system
// header that -Werror would turn into a failed build. The warning is silenced for the
// templates declared here only; project code keeps it, as an error with SF_WERROR.
#ifndef SF_COMMON_STD_REGEX_H_
#define SF_COMMON_STD_REGEX_H_

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>  // IWYU pragma: export
#pragma GCC diagnostic pop

#endif  // SF_COMMON_STD_REGEX_H_
