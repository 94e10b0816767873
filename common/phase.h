// The two phases of generation, used by every layer that distinguishes them: the
// method registry, the spec, the kernels, the model engine and the worker.
#ifndef SF_COMMON_PHASE_H_
#define SF_COMMON_PHASE_H_

namespace sf {

// Prefill: the prompt's queries in one pass. Decode: one query per generated token.
enum class Phase { kPrefill, kDecode };

inline const char* PhaseName(Phase phase) {
  return phase == Phase::kPrefill ? "prefill" : "decode";
}

// A set of phases: where a method can run, or where a sweep variant applies it.
class PhaseSet {
 public:
  constexpr PhaseSet() = default;
  constexpr static PhaseSet Of(Phase phase) {
    return phase == Phase::kPrefill ? PhaseSet(true, false) : PhaseSet(false, true);
  }
  constexpr static PhaseSet Both() { return PhaseSet(true, true); }

  constexpr bool Has(Phase phase) const { return phase == Phase::kPrefill ? prefill_ : decode_; }
  constexpr bool empty() const { return !prefill_ && !decode_; }
  constexpr bool both() const { return prefill_ && decode_; }
  // Whether every phase of `other` is in this set.
  constexpr bool Contains(PhaseSet other) const {
    return (prefill_ || !other.prefill_) && (decode_ || !other.decode_);
  }
  constexpr bool operator==(const PhaseSet&) const = default;

  // "prefill", "decode", "both" or "none".
  const char* Name() const {
    if (both()) return "both";
    if (prefill_) return "prefill";
    return decode_ ? "decode" : "none";
  }

 private:
  constexpr PhaseSet(bool prefill, bool decode) : prefill_(prefill), decode_(decode) {}
  bool prefill_ = false;
  bool decode_ = false;
};

}  // namespace sf

#endif  // SF_COMMON_PHASE_H_
