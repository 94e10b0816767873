// Internal to kernels/cpu: the CPU selection of each method, defined in its own file
// (kernels/cpu/methods/<name>.cc) and collected by kernels/cpu/cpu_method.cc.
#ifndef SF_KERNELS_CPU_METHODS_METHOD_LIST_H_
#define SF_KERNELS_CPU_METHODS_METHOD_LIST_H_

#include "kernels/cpu/cpu_method.h"

// X(function): one line per method; the function returns its CpuMethodEntry.
#define SF_CPU_METHOD_LIST(X) \
  X(DenseCpu)                 \
  X(BlockSparseCpu)           \
  X(VerticalSlashCpu)         \
  X(FlexPrefillCpu)           \
  X(XAttentionCpu)            \
  X(StreamingCpu)             \
  X(SnapKvCpu)                \
  X(AdaSnapKvCpu)             \
  X(QuestCpu)                 \
  X(OracleTopKCpu)            \
  X(TriShapeCpu)

namespace sf::kernels {

#define SF_DECLARE_CPU_METHOD(fn) CpuMethodEntry fn();
SF_CPU_METHOD_LIST(SF_DECLARE_CPU_METHOD)
#undef SF_DECLARE_CPU_METHOD

}  // namespace sf::kernels

#endif  // SF_KERNELS_CPU_METHODS_METHOD_LIST_H_
