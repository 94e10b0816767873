#include "analysis/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "analysis/explorer.h"
#include "analysis/plots.h"
#include "common/status.h"
#include "methods/registry.h"

namespace sf::analysis {

namespace {

std::string Html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// `fmt` is one of this file's literal printf formats for a double.
std::string Fmt(double v, const char* fmt = "%.4g") {
  if (std::isnan(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

std::string Csv(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

absl::Status Write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

std::vector<MissingPoint> FindMissing(const AnalysisInput& input) {
  std::set<std::string> models, tasks;
  std::set<int64_t> lengths;
  // (method, phase, compression); phase "" for dense.
  std::set<std::tuple<std::string, std::string, double>> configs = {
      {BaselineMethod().name, "", 1.0}};
  std::set<std::tuple<std::string, std::string, int64_t, std::string, std::string, double>> present;
  for (const ResultPoint& p : input.points) {
    models.insert(p.model);
    tasks.insert(p.task);
    lengths.insert(p.seq_len);
    // An adaptive method's settings all sit in one cell (a job not run yet has no
    // measured compression to tell them apart).
    const double c = p.is_dense() || p.compression_measured ? 1.0 : p.nominal_compression;
    const std::string phase = p.is_dense() ? "" : p.phase;
    configs.insert({p.method, phase, c});
    if (!p.samples.empty()) present.insert({p.model, p.task, p.seq_len, p.method, phase, c});
  }
  std::vector<MissingPoint> out;
  for (const auto& m : models) {
    for (const auto& t : tasks) {
      for (int64_t l : lengths) {
        for (const auto& [method, phase, c] : configs) {
          if (!present.count({m, t, l, method, phase, c})) {
            out.push_back({m, t, l, method, phase, c});
          }
        }
      }
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<AnalysisResults> Analyze(const AnalysisInput& input, const ReportOptions& options) {
  for (size_t i = 0; i < input.points.size(); ++i) {
    const ResultPoint& p = input.points[i];
    if (p.model.empty() || p.task.empty() || p.method.empty() || p.seq_len <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "result point ", i, " (model '", p.model, "', task '", p.task, "', method '", p.method,
          "', length ", p.seq_len, ") needs a model, task, method and a positive length"));
    }
    if (!(p.Params() > 0.0) || (p.shape.num_layers <= 0 && p.flops_prefill <= 0 &&
                                p.flops_decode <= 0 && p.flops_indexing <= 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "result point ", i, " (model '", p.model,
          "') has no architecture: fill ResultPoint::shape from the model's config.json "
          "(or set ResultPoint::params and record the worker's FLOPs)"));
    }
    if (!p.is_dense() && p.phase != "prefill" && p.phase != "decode") {
      return absl::InvalidArgumentError(absl::StrCat("result point ", i, " (", p.model, ", ",
                                                     p.method, ") has phase '", p.phase,
                                                     "'; expected prefill or decode"));
    }
    if (!p.is_dense() && !(p.nominal_compression >= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat("result point ", i, " (", p.model, ", ",
                                                     p.method, ") has nominal compression ",
                                                     p.nominal_compression, "; must be >= 1"));
    }
  }
  AnalysisResults r;
  SF_ASSIGN_OR_RETURN(r.preserved, ComputePreservedCompression(input.points, options.preserved));
  r.curves = BuildIsoFlopsCurves(input.points, options.flops);
  for (IsoFlopsCurve& c : MeanOverTasks(r.curves)) r.curves.push_back(std::move(c));
  r.critical = FindCriticalLengths(r.curves);
  r.time_device = TimedDevice(input.points);
  if (!r.time_device.empty()) {
    FlopsOptions time = options.flops;
    time.axis = CostAxis::kSeconds;
    time.device = r.time_device;
    r.time_curves = BuildIsoFlopsCurves(input.points, time);
    for (IsoFlopsCurve& c : MeanOverTasks(r.time_curves)) r.time_curves.push_back(std::move(c));
    r.time_critical = FindCriticalLengths(r.time_curves);
    r.speedups = MeasureSpeedups(input.points, time);
    r.disagreements = CompareFrontiers(r.curves, r.time_curves);
  }
  r.missing = FindMissing(input);
  std::set<std::string> phases, no_formula;
  for (const ResultPoint& p : input.points) {
    if (!p.is_dense()) phases.insert(p.phase);
    bool known = true;
    PointFlops(p, options.flops, &known);
    if (!known) no_formula.insert(p.method);
  }
  for (const std::string& m : no_formula) {
    r.warnings.push_back(absl::StrCat("method '", m,
                                      "' has no estimation-FLOPs formula and recorded no "
                                      "indexing FLOPs: its indexing cost is counted as 0"));
  }
  for (const std::string& phase : phases) {
    PhaseFit pf;
    pf.phase = phase;
    // Identical scores everywhere (e.g. random-weight models scoring 0) leave the logistic
    // fit without a maximum: IRLS drifts to huge coefficients with meaningless errors.
    std::set<double> scores;
    for (const ResultPoint& p : input.points) {
      if (p.is_dense() || p.phase == phase) {
        for (const SampleScore& s : p.samples) scores.insert(s.score);
      }
    }
    if (scores.size() == 1) {
      pf.error = absl::StrCat("every sample scores ", *scores.begin(),
                              ": nothing for the scaling law to fit");
      r.fits.push_back(std::move(pf));
      continue;
    }
    absl::StatusOr<ScalingLawFit> fit = FitScalingLaw(input.points, phase, options.scaling);
    if (fit.ok()) {
      pf.fit = *std::move(fit);
      pf.validation = ValidateScalingLaw(input.points, phase, options.scaling);
    } else {
      pf.error = std::string(fit.status().message());
    }
    r.fits.push_back(std::move(pf));
  }
  if (!r.missing.empty()) {
    r.warnings.push_back(absl::StrCat(r.missing.size(),
                                      " grid points have no scored samples (partial sweep); "
                                      "they are left out, not counted as zero"));
  }
  return r;
}

std::string FormatSummary(const AnalysisResults& r, const ReportOptions& options) {
  std::string out;
  for (const std::string& w : r.warnings) absl::StrAppend(&out, "warning: ", w, "\n");
  for (const PhaseFit& pf : r.fits) {
    absl::StrAppend(&out, "\nscaling law, ", pf.phase, ":");
    if (!pf.fit) {
      absl::StrAppend(&out, " no fit: ", pf.error, "\n");
      continue;
    }
    absl::StrAppend(&out, " ", pf.fit->n_points, " points\n");
    for (size_t k = 0; k < pf.fit->names.size(); ++k) {
      absl::StrAppend(&out, absl::StrFormat("  %-28s %10.4f +- %.4f\n", pf.fit->names[k],
                                            pf.fit->coefficients[k], pf.fit->standard_errors[k]));
    }
    for (const HoldoutValidation& v : pf.validation) {
      if (v.error.empty()) {
        absl::StrAppend(&out, absl::StrFormat("  held out largest %s: R2 %.3f, Spearman %.3f, "
                                              "MAE %.3f (%d points)\n",
                                              v.axis, v.r2, v.spearman, v.mae, v.n_test));
      } else {
        absl::StrAppend(&out, "  held out largest ", v.axis, ": ", v.error, "\n");
      }
    }
  }
  bool header = false;
  for (const CriticalLength& c : r.critical) {
    if (c.task != kMeanOverTasks) continue;
    if (!header) absl::StrAppend(&out, "\ncritical length (mean over tasks):\n");
    header = true;
    absl::StrAppend(&out, "  ", c.phase, " ", c.large_model, " (sparse) vs ", c.small_model,
                    " (dense): ", c.verdict,
                    c.critical_len ? absl::StrCat(" at L = ", Fmt(*c.critical_len, "%.0f")) : "",
                    "\n");
  }
  if (!r.speedups.empty()) {
    absl::StrAppend(&out, "\nwall clock on ", r.time_device,
                    " (speed-up over the same model's dense phase, mean over tasks):\n");
    for (const SpeedupRow& s : r.speedups) {
      absl::StrAppend(&out,
                      absl::StrFormat("  %-8s %-14s %-16s L=%-7d C=%-5g FLOPs %6.2fx  "
                                      "time %6.2fx  estimation %4.1f%%\n",
                                      s.phase, s.model, s.method, s.seq_len, s.nominal_compression,
                                      s.flops_speedup, s.time_speedup, 100 * s.estimation_share));
    }
  }
  for (const CriticalLength& c : r.time_critical) {
    if (c.task != kMeanOverTasks) continue;
    absl::StrAppend(&out, "  iso-time critical length, ", c.phase, " ", c.large_model,
                    " (sparse) vs ", c.small_model, " (dense): ", c.verdict,
                    c.critical_len ? absl::StrCat(" at L = ", Fmt(*c.critical_len, "%.0f")) : "",
                    "\n");
  }
  if (!r.disagreements.empty()) {
    absl::StrAppend(&out, "  isoFLOPS and iso-time frontiers disagree in ", r.disagreements.size(),
                    " panels (listed in the report)\n");
  }
  // Mean preserved compression per (phase, method, length): the heatmap in one line each.
  // Groups whose dense score is 0 on every sample are left out (nothing to lose) and
  // counted apart.
  std::map<std::tuple<std::string, std::string, int64_t>, std::pair<double, int>> mean;
  std::map<std::tuple<std::string, std::string, int64_t>, int> at_zero;
  for (const PreservedCompression& pc : r.preserved) {
    if (pc.dense_at_zero) ++at_zero[{pc.phase, pc.method, pc.seq_len}];
    if (std::isnan(pc.preserved)) continue;
    auto& m = mean[{pc.phase, pc.method, pc.seq_len}];
    m.first += pc.preserved;
    ++m.second;
  }
  if (!mean.empty()) {
    absl::StrAppend(&out, "\npreserved compression (", PairedTestName(options.preserved.test),
                    ", alpha ", Fmt(options.preserved.alpha), "), mean over models and tasks:\n");
  }
  for (const auto& [key, m] : mean) {
    const auto zero = at_zero.find(key);
    const std::string left_out =
        zero == at_zero.end()
            ? ""
            : absl::StrCat("; ", zero->second, " with dense at 0 on every sample left out");
    absl::StrAppend(&out, absl::StrFormat("  %-8s %-16s L=%-7d %6.2f  (%d groups%s)\n",
                                          std::get<0>(key), std::get<1>(key), std::get<2>(key),
                                          m.first / m.second, m.second, left_out));
  }
  if (!r.missing.empty()) {
    absl::StrAppend(&out, "\n", r.missing.size(), " grid points missing (listed in the report)\n");
  }
  return out;
}

namespace {

// The report's wall-clock section: does sparsity translate into wall-clock gains? The
// measured speed-ups beside the FLOPs ones, the iso-time figures (drawn by `figures`),
// the iso-time critical lengths and where the two frontiers disagree.
template <typename Figures>
void WriteWallClockSection(const AnalysisResults& r, std::string* h, Figures& figures) {
  absl::StrAppend(h, "<h2>Wall clock: iso-time frontier</h2>\n");
  if (r.time_device.empty()) {
    absl::StrAppend(h,
                    "<p>No result recorded its time per phase, so there is no iso-time "
                    "frontier.</p>\n");
    return;
  }
  absl::StrAppend(h, "<p>Measured seconds per sample on <b>", Html(r.time_device),
                  "</b> (results from other devices are left out: times compare only on one "
                  "device). Speed-up = the same model's dense phase over the sparse one, mean "
                  "over tasks; estimation = the share of the sparse phase the method spent "
                  "choosing (0 where the method does not time it).</p>\n<table><tr><th>phase"
                  "</th><th>model</th><th>method</th><th>length</th><th>compression</th>"
                  "<th>tasks</th><th>FLOPs speed-up</th><th>time speed-up</th><th>estimation"
                  "</th></tr>\n");
  for (const SpeedupRow& s : r.speedups) {
    absl::StrAppend(h, "<tr><td class=l>", Html(s.phase), "</td><td class=l>", Html(s.model),
                    "</td><td class=l>", Html(s.method), "</td><td>", s.seq_len, "</td><td>",
                    Fmt(s.nominal_compression), "</td><td>", s.tasks, "</td><td>",
                    Fmt(s.flops_speedup, "%.2f"), "x</td><td>", Fmt(s.time_speedup, "%.2f"),
                    "x</td><td>", Fmt(100 * s.estimation_share, "%.1f"), "%</td></tr>\n");
  }
  absl::StrAppend(h, "</table>\n");
  figures("isotime");
  absl::StrAppend(h,
                  "<h3>Critical length at equal time</h3>\n<table><tr><th>phase</th><th>task"
                  "</th><th>smaller (dense)</th><th>larger</th><th>critical length</th><th>"
                  "verdict</th></tr>\n");
  for (const CriticalLength& c : r.time_critical) {
    absl::StrAppend(h, "<tr><td class=l>", Html(c.phase), "</td><td class=l>", Html(c.task),
                    "</td><td class=l>", Html(c.small_model), "</td><td class=l>",
                    Html(c.large_model), "</td><td>",
                    c.critical_len ? Fmt(*c.critical_len, "%.0f") : "-", "</td><td class=l>",
                    Html(c.verdict), "</td></tr>\n");
  }
  absl::StrAppend(h, "</table>\n<h3>Where the isoFLOPS and iso-time frontiers disagree</h3>\n");
  if (r.disagreements.empty()) {
    absl::StrAppend(h,
                    "<p>Nowhere: every panel's two frontiers name the same configurations.</p>\n");
    return;
  }
  absl::StrAppend(h,
                  "<table><tr><th>phase</th><th>task</th><th>length</th><th>on the FLOPs "
                  "frontier only</th><th>on the time frontier only</th></tr>\n");
  for (const FrontierDisagreement& d : r.disagreements) {
    absl::StrAppend(h, "<tr><td class=l>", Html(d.phase), "</td><td class=l>", Html(d.task),
                    "</td><td>", d.seq_len, "</td><td class=l>",
                    Html(absl::StrJoin(d.flops_only, "; ")), "</td><td class=l>",
                    Html(absl::StrJoin(d.time_only, "; ")), "</td></tr>\n");
  }
  absl::StrAppend(h, "</table>\n");
}

}  // namespace

absl::Status WriteReport(const AnalysisInput& input, const ReportOptions& options,
                         const std::string& out_dir) {
  SF_ASSIGN_OR_RETURN(AnalysisResults r, Analyze(input, options));
  return WriteReport(input, r, options, out_dir);
}

absl::Status WriteReport(const AnalysisInput& input, const AnalysisResults& r,
                         const ReportOptions& options, const std::string& out_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", out_dir, ": ", ec.message()));
  std::vector<PlotFile> plots;
  SF_RETURN_IF_ERROR(WritePlotScripts(input, r, options, out_dir, &plots));
  SF_RETURN_IF_ERROR(WriteExplorer(input, options, r.time_device, out_dir));
  if (options.render_plots) SF_RETURN_IF_ERROR(RenderPlots(plots, options.gnuplot, out_dir));

  // Tables as CSV.
  std::string points_csv =
      "model,params,task,seq_len,method,phase,nominal_compression,measured_compression,"
      "samples,mean_score,flops_prefill,flops_decode,flops_indexing,flops_total\n";
  for (const ResultPoint& p : input.points) {
    const FlopsBreakdown f = PointFlops(p, options.flops);
    absl::StrAppend(&points_csv, Csv(p.model), ",", Fmt(p.Params(), "%.6g"), ",", Csv(p.task), ",",
                    p.seq_len, ",", Csv(p.method), ",", Csv(p.phase), ",",
                    Fmt(p.nominal_compression), ",", Fmt(p.measured_compression), ",",
                    p.samples.size(), ",", Fmt(p.MeanScore(), "%.6g"), ",",
                    Fmt(f.Prefill(), "%.6g"), ",", Fmt(f.Decode(), "%.6g"), ",",
                    Fmt(f.indexing, "%.6g"), ",", Fmt(f.Total(), "%.6g"), "\n");
  }
  SF_RETURN_IF_ERROR(Write(fs::path(out_dir) / "points.csv", points_csv));
  std::string preserved_csv =
      "model,task,seq_len,method,phase,preserved_compression,non_monotone,tests,censored,"
      "dense_at_zero\n";
  for (const PreservedCompression& pc : r.preserved) {
    std::string tests;
    for (const CompressionTest& t : pc.tests) {
      absl::StrAppend(&tests, tests.empty() ? "" : " ", Fmt(t.compression), ":p=", Fmt(t.p_value),
                      ":n=", t.n_pairs);
    }
    absl::StrAppend(&preserved_csv, Csv(pc.model), ",", Csv(pc.task), ",", pc.seq_len, ",",
                    Csv(pc.method), ",", Csv(pc.phase), ",", Fmt(pc.preserved), ",",
                    pc.non_monotone ? "yes" : "no", ",", Csv(tests), ",",
                    IsCensored(pc) ? "yes" : "no", ",", pc.dense_at_zero ? "yes" : "no", "\n");
  }
  SF_RETURN_IF_ERROR(Write(fs::path(out_dir) / "preserved.csv", preserved_csv));
  std::string fit_csv = "phase,name,coefficient,standard_error\n";
  for (const PhaseFit& pf : r.fits) {
    if (!pf.fit) continue;
    for (size_t k = 0; k < pf.fit->names.size(); ++k) {
      absl::StrAppend(&fit_csv, pf.phase, ",", Csv(pf.fit->names[k]), ",",
                      Fmt(pf.fit->coefficients[k], "%.10g"), ",",
                      Fmt(pf.fit->standard_errors[k], "%.10g"), "\n");
    }
  }
  SF_RETURN_IF_ERROR(Write(fs::path(out_dir) / "scaling_law.csv", fit_csv));

  // The page.
  std::string h = absl::StrCat(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", Html(options.title),
      "</title>\n<style>body{font-family:sans-serif;max-width:1300px;margin:auto;padding:1em}"
      "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #bbb;padding:2px "
      "6px;text-align:right}th{background:#eee}td.l{text-align:left}.warn{background:#fff3cd;"
      "padding:0.5em;border:1px solid #e0c060}img{max-width:100%;border:1px solid #ddd}"
      "</style></head><body>\n<h1>",
      Html(options.title), "</h1>\n");
  if (!input.caveat.empty()) {
    absl::StrAppend(&h, "<p class=\"warn\"><b>Caveat:</b> ", Html(input.caveat), "</p>\n");
  }
  for (const std::string& w : r.warnings) {
    absl::StrAppend(&h, "<p class=\"warn\">", Html(w), "</p>\n");
  }
  std::map<std::string, double> model_n;
  std::set<std::string> tasks;
  std::set<int64_t> lengths;
  for (const ResultPoint& p : input.points) {
    model_n[p.model] = p.Params();
    tasks.insert(p.task);
    lengths.insert(p.seq_len);
  }
  absl::StrAppend(&h, "<p>", input.points.size(), " result points; ", model_n.size(), " models, ",
                  tasks.size(), " tasks, ", lengths.size(),
                  " lengths. Tables: <a href=\"points.csv\">points.csv</a> (with FLOPs), "
                  "<a href=\"preserved.csv\">preserved.csv</a>, "
                  "<a href=\"scaling_law.csv\">scaling_law.csv</a>. Each figure links to its "
                  "SVG; its gnuplot script and data are in plots/ and data/. "
                  "<a href=\"explore.html\"><b>Explore the points interactively</b></a> "
                  "(hover for a point's model, method, compression, score and n; toggle "
                  "methods; choose task, length and axis; works offline).</p>\n");
  if (!options.render_plots) {
    absl::StrAppend(&h, "<p class=\"warn\">Figures were not rendered: run <code>cd ", Html(out_dir),
                    " &amp;&amp; for f in plots/*.gp; do gnuplot $f; done</code>.</p>\n");
  }
  std::vector<std::pair<double, std::string>> by_size;
  for (const auto& [m, n] : model_n) by_size.push_back({n, m});
  std::sort(by_size.begin(), by_size.end());
  absl::StrAppend(&h, "<table><tr><th>model</th><th>parameters N</th></tr>\n");
  for (const auto& [n, m] : by_size) {
    absl::StrAppend(&h, "<tr><td class=l>", Html(m), "</td><td>", Fmt(n / 1e9, "%.3f"),
                    " B</td></tr>\n");
  }
  absl::StrAppend(&h, "</table>\n");
  auto figures = [&](const std::string& section) {
    for (const PlotFile& p : plots) {
      if (p.section != section) continue;
      absl::StrAppend(&h, "<h3>", Html(p.title), "</h3><a href=\"", p.stem, ".svg\"><img src=\"",
                      p.stem, ".png\" alt=\"", Html(p.title), "\"></a>\n");
    }
  };

  absl::StrAppend(&h, "<h2>isoFLOPS: score vs FLOPs per sample</h2>\n");
  figures("isoflops");
  absl::StrAppend(&h,
                  "<h3>Critical length: larger sparse model vs smaller dense model at the "
                  "smaller one's FLOPs</h3>\n<table><tr><th>phase</th><th>task</th><th>smaller "
                  "(dense)</th><th>larger (best config at equal FLOPs)</th><th>advantage by "
                  "length</th><th>critical length</th><th>verdict</th></tr>\n");
  for (const CriticalLength& c : r.critical) {
    std::string adv;
    for (const CriticalLengthRow& row : c.rows) {
      absl::StrAppend(&adv, adv.empty() ? "" : "; ", row.seq_len, ": ",
                      Fmt(row.advantage, "%+.3f"));
    }
    absl::StrAppend(&h, "<tr><td class=l>", Html(c.phase), "</td><td class=l>", Html(c.task),
                    "</td><td class=l>", Html(c.small_model), "</td><td class=l>",
                    Html(c.large_model), "</td><td class=l>", adv, "</td><td>",
                    c.critical_len ? Fmt(*c.critical_len, "%.0f") : "-", "</td><td class=l>",
                    Html(c.verdict), "</td></tr>\n");
  }
  absl::StrAppend(&h, "</table>\n");
  WriteWallClockSection(r, &h, figures);
  absl::StrAppend(&h, "<h2>Score vs compression</h2>\n");
  figures("compression");

  absl::StrAppend(&h,
                  "<h2>Preserved compression</h2>\n<p>Largest compression whose per-sample "
                  "scores are not significantly worse than dense on the same samples ("
                  "one-sided ",
                  PairedTestName(options.preserved.test), ", alpha ", Fmt(options.preserved.alpha),
                  "), counting only compressions at or below the first significant drop; "
                  "1 = none preserved, &ge;&nbsp;C = even the largest tested compression C "
                  "passed (the true value may be larger), n/a = no dense baseline or fewer "
                  "than 2 paired samples, dense 0 = dense scored 0 on every sample, so there "
                  "was nothing to lose and the group is left out.</p>\n");
  figures("preserved");
  absl::StrAppend(&h,
                  "<table><tr><th>model</th><th>task</th><th>length</th><th>method</th>"
                  "<th>phase</th><th>preserved</th><th>p-values by compression (n "
                  "pairs)</th></tr>\n");
  for (const PreservedCompression& pc : r.preserved) {
    std::string tests;
    for (const CompressionTest& t : pc.tests) {
      absl::StrAppend(&tests, tests.empty() ? "" : "; ", Fmt(t.compression),
                      "x: ", Fmt(t.p_value, "%.3g"), " (", t.n_pairs, ")",
                      t.significantly_worse ? " worse" : "");
    }
    absl::StrAppend(&h, "<tr><td class=l>", Html(pc.model), "</td><td class=l>", Html(pc.task),
                    "</td><td>", pc.seq_len, "</td><td class=l>", Html(pc.method),
                    "</td><td class=l>", Html(pc.phase), "</td><td>",
                    pc.dense_at_zero ? "dense 0" : "", IsCensored(pc) ? "&ge;&nbsp;" : "",
                    pc.dense_at_zero ? "" : Fmt(pc.preserved), pc.non_monotone ? "*" : "",
                    "</td><td class=l>", tests, "</td></tr>\n");
  }
  absl::StrAppend(&h,
                  "</table>\n<h2>Scaling law</h2>\n<p>score ~ sigmoid(eps + delta_task + a "
                  "ln N + b ln L + c ln C), binomial GLM (IRLS) weighted by samples, per "
                  "phase (dense points in both with C = 1).</p>\n");
  for (const PhaseFit& pf : r.fits) {
    absl::StrAppend(&h, "<h3>", Html(pf.phase), "</h3>\n");
    if (!pf.fit) {
      absl::StrAppend(&h, "<p class=\"warn\">No fit: ", Html(pf.error), "</p>\n");
      continue;
    }
    absl::StrAppend(&h,
                    "<table><tr><th>coefficient</th><th>estimate</th><th>std. error</th></tr>\n");
    for (size_t k = 0; k < pf.fit->names.size(); ++k) {
      absl::StrAppend(&h, "<tr><td class=l>", Html(pf.fit->names[k]), "</td><td>",
                      Fmt(pf.fit->coefficients[k], "%.4f"), "</td><td>",
                      Fmt(pf.fit->standard_errors[k], "%.4f"), "</td></tr>\n");
    }
    absl::StrAppend(&h, "</table><p>", pf.fit->n_points, " points, deviance ",
                    Fmt(pf.fit->deviance), ", reference task ", Html(pf.fit->tasks.front()),
                    pf.fit->dropped.empty() ? "" : ", not estimated (no variation): ");
    for (size_t k = 0; k < pf.fit->dropped.size(); ++k) {
      absl::StrAppend(&h, k ? ", " : "", pf.fit->dropped[k]);
    }
    absl::StrAppend(&h,
                    "</p>\n<table><tr><th>held out</th><th>value</th><th>train</th><th>test"
                    "</th><th>R<sup>2</sup></th><th>Spearman rho</th><th>MAE</th></tr>\n");
    for (const HoldoutValidation& v : pf.validation) {
      absl::StrAppend(&h, "<tr><td class=l>largest ", v.axis, "</td><td>", Fmt(v.held_value),
                      "</td><td>", v.n_train, "</td><td>", v.n_test, "</td>");
      if (v.error.empty()) {
        absl::StrAppend(&h, "<td>", Fmt(v.r2, "%.3f"), "</td><td>", Fmt(v.spearman, "%.3f"),
                        "</td><td>", Fmt(v.mae, "%.3f"), "</td></tr>\n");
      } else {
        absl::StrAppend(&h, "<td colspan=3 class=l>", Html(v.error), "</td></tr>\n");
      }
    }
    absl::StrAppend(&h, "</table>\n");
  }
  figures("fit");
  absl::StrAppend(&h, "<h2>Missing points</h2>\n");
  if (r.missing.empty()) {
    absl::StrAppend(&h, "<p>None: the grid is complete.</p>\n");
  } else {
    absl::StrAppend(&h,
                    "<table><tr><th>model</th><th>task</th><th>length</th><th>method</th>"
                    "<th>phase</th><th>compression</th></tr>\n");
    for (const MissingPoint& m : r.missing) {
      absl::StrAppend(&h, "<tr><td class=l>", Html(m.model), "</td><td class=l>", Html(m.task),
                      "</td><td>", m.seq_len, "</td><td class=l>", Html(m.method),
                      "</td><td class=l>", Html(m.phase), "</td><td>", Fmt(m.compression),
                      "</td></tr>\n");
    }
    absl::StrAppend(&h, "</table>\n");
  }
  absl::StrAppend(&h, "</body></html>\n");
  return Write(fs::path(out_dir) / "index.html", h);
}

}  // namespace sf::analysis
