// Internal to kernels/cpu: what the exact fidelity path (fidelity.cc) shares with the
// fast table (fidelity_table.cc), so that both calibrate budgets with the same code.
#ifndef SF_KERNELS_CPU_FIDELITY_INTERNAL_H_
#define SF_KERNELS_CPU_FIDELITY_INTERNAL_H_

#include <functional>

#include "kernels/cpu/fidelity.h"

namespace sf::kernels::internal {

// The rows of `ref`'s phase as an attention input (decode: rows from ref.prompt on).
AttentionInput PhaseInput(const LayerQkv& qkv, const DenseReference& ref);
// The prompt's queries (decode observation window source).
TensorView Observation(const LayerQkv& qkv, const DenseReference& ref);

// Builds the selection of the calibrated method for typed parameters.
using SelectFn = std::function<absl::StatusOr<SelectionResult>(const MethodParams&)>;

// CalibrateBudget with the selection step given (only reference.phase and
// reference.prompt are read).
absl::StatusOr<ParamMap> CalibrateWith(absl::string_view method, const ParamMap& params,
                                       double compression, const LayerQkv& qkv,
                                       const DenseReference& reference, const SelectFn& select);

}  // namespace sf::kernels::internal

#endif  // SF_KERNELS_CPU_FIDELITY_INTERNAL_H_
