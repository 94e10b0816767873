// In-memory result records that every analysis works on: one ResultPoint per finished
// grid point (model, task, length, method, compression) with its per-sample scores.
// The database loader (sfctl analyze) fills these; the analysis never touches SQLite.
#ifndef SF_ANALYSIS_RESULT_POINT_H_
#define SF_ANALYSIS_RESULT_POINT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "analysis/flops.h"
#include "methods/registry.h"

namespace sf::analysis {

// One scored sample. `index` is the sample's index in the task (the same index means
// the same prompt across methods), which is what makes paired tests possible.
struct SampleScore {
  int64_t index = 0;
  double score = 0.0;  // in [0, 1] for the scaling-law fit
};

// One grid point's result.
struct ResultPoint {
  std::string model;  // e.g. "qwen2.5-7b"
  ModelShape shape;   // architecture, for the FLOPs model and N
  // N as recorded with the result (every weight of the checkpoint); 0 = count it from
  // `shape`. The record wins because the wire shape carries no o/MLP biases.
  double params = 0.0;
  std::string task;                   // e.g. "ruler_niah"
  int64_t seq_len = 0;                // nominal sequence length L (tokens)
  std::string method;                 // BaselineMethod() ("dense") is every phase's baseline
  std::string phase;                  // "prefill" or "decode"; ignored for dense
  double nominal_compression = 1.0;   // what the spec asked
  double measured_compression = 0.0;  // what was computed; 0 = not measured
  // The method's budget adapts to the data (no nominal compression), so
  // nominal_compression holds the measured one; its grid cell is the setting, not that.
  bool compression_measured = false;
  std::vector<SampleScore> samples;
  // FLOPs as recorded by the worker; all zero = not recorded (the analysis computes
  // them from `shape` with the FLOPs model).
  double flops_prefill = 0.0;
  double flops_decode = 0.0;
  double flops_indexing = 0.0;
  int64_t decode_tokens = 0;  // output tokens per sample (for the FLOPs model)
  // Measured seconds per sample of each phase (estimation is part of its phase's time and
  // also given apart), and the device that measured them (the GPU's name, or "cpu");
  // 0 / "": not recorded. Times compare only between points of one device.
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;
  double estimation_seconds = 0.0;
  std::string device;

  bool is_dense() const { return method == BaselineMethod().name; }
  // The scaling law's N: `params` when recorded, else TotalParams(shape).
  double Params() const;
  // Mean sample score; NaN when there are no samples.
  double MeanScore() const;
  // The standard error of the mean score (0 for fewer than two samples).
  double StandardErrorOfMean() const;
  // The compression used by the analysis: measured when recorded and
  // `prefer_measured`, else nominal. Dense is 1.
  double Compression(bool prefer_measured) const;
  double TotalFlops() const { return flops_prefill + flops_decode + flops_indexing; }
};

// Everything an analysis run needs.
struct AnalysisInput {
  std::vector<ResultPoint> points;
  // Free text shown at the top of the report (e.g. "random-weight demo models: scores
  // carry no meaning").
  std::string caveat;
  // The caveat in one short line, drawn on every figure so that it stays with a figure
  // copied out of the report; "" = the caveat's first sentence.
  std::string figure_caveat;
};

}  // namespace sf::analysis

#endif  // SF_ANALYSIS_RESULT_POINT_H_
