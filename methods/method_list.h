// Internal: the declaration of each method, defined in its own file
// (methods/<name>.cc) and collected, in this order, by methods/registry.cc.
#ifndef SF_METHODS_METHOD_LIST_H_
#define SF_METHODS_METHOD_LIST_H_

#include "methods/method.h"

// X(function): one line per method; the function returns its MethodInfo.
#define SF_METHOD_LIST(X) \
  X(DenseMethod)          \
  X(BlockSparseMethod)    \
  X(VerticalSlashMethod)  \
  X(FlexPrefillMethod)    \
  X(XAttentionMethod)     \
  X(StreamingMethod)      \
  X(SnapKvMethod)         \
  X(AdaSnapKvMethod)      \
  X(QuestMethod)          \
  X(OracleTopKMethod)     \
  X(TriShapeMethod)

namespace sf::methods {

#define SF_DECLARE_METHOD(fn) MethodInfo fn();
SF_METHOD_LIST(SF_DECLARE_METHOD)
#undef SF_DECLARE_METHOD

}  // namespace sf::methods

#endif  // SF_METHODS_METHOD_LIST_H_
