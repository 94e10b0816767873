#include "analysis/plots.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/status.h"
#include "methods/registry.h"

extern char** environ;

namespace sf::analysis {

namespace {

// Twelve distinguishable colours (ColorBrewer Dark2 and Paired), so that nine tasks or
// a dozen models each get their own.
constexpr const char* kColors[] = {"#1b9e77", "#d95f02", "#7570b3", "#e7298a",
                                   "#66a61e", "#e6ab02", "#a6761d", "#666666",
                                   "#1f78b4", "#b15928", "#6a3d9a", "#fb9a99"};
// Open markers for the sparse methods (circle, square, triangles, diamond, pentagon),
// so that overlapping points stay visible; dense has its own filled star.
constexpr int kPointTypes[] = {6, 4, 8, 10, 12, 14, 1, 2};
constexpr int kDensePointType = 3;

const char* Color(size_t i) { return kColors[i % std::size(kColors)]; }
int PointType(size_t i) { return kPointTypes[i % std::size(kPointTypes)]; }

// A gnuplot double-quoted string literal.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";  // gnuplot expands \n in double quotes
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string Num(double v) { return absl::StrFormat("%.10g", v); }

// gnuplot commands for a log x axis over [lo, hi] (both > 0): a little margin and the
// coarsest labelled ticks that give at least three (decades, 1-2-5, ..., tenths), so that
// data spanning less than a decade still gets readable tick labels.
std::string LogXAxis(double lo, double hi) {
  if (!(lo > 0) || !(hi >= lo)) return "set logscale x\nset format x '%.0e'\n";
  const double from = lo / 1.25, to = hi * 1.25;
  auto tics = [&](const std::vector<double>& mantissas) {
    std::vector<double> out;
    for (int d = static_cast<int>(std::floor(std::log10(from)));
         d <= static_cast<int>(std::ceil(std::log10(to))); ++d) {
      for (double m : mantissas) {
        const double v = m * std::pow(10.0, d);
        if (v >= from && v <= to) out.push_back(v);
      }
    }
    return out;
  };
  // Coarsest first: decades, 1-2-5, integers, halves, tenths.
  std::vector<std::vector<double>> choices = {{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
  for (double step : {0.5, 0.1}) {
    std::vector<double> fine;
    for (int i = 0; 1 + i * step < 9.999; ++i) fine.push_back(1 + i * step);
    choices.push_back(fine);
  }
  std::vector<double> t;
  for (const std::vector<double>& mantissas : choices) {
    t = tics(mantissas);
    if (t.size() >= 3) break;
  }
  if (t.size() > 6) {  // tenths over a wide span: thin them so that labels do not overlap
    std::vector<double> thin;
    const size_t every = (t.size() + 4) / 5;
    for (size_t i = 0; i < t.size(); i += every) thin.push_back(t[i]);
    t = thin;
  }
  std::vector<std::string> items;
  for (double v : t) {
    items.push_back(absl::StrCat("\"", absl::StrReplaceAll(absl::StrFormat("%.2g", v), {{"+", ""}}),
                                 "\" ", Num(v)));
  }
  return absl::StrCat("set logscale x\nset xrange [", Num(from), ":", Num(to), "]\nset xtics (",
                      absl::StrJoin(items, ", "), ")\n");
}

std::string LengthLabel(int64_t len) {
  if (len >= 1024 && len % 1024 == 0) return absl::StrCat(len / 1024, "K");
  return absl::StrCat(len);
}

absl::Status WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

// Models ordered by parameter count.
std::vector<std::string> ModelsByParams(const AnalysisInput& input) {
  std::map<std::string, double> n;
  for (const ResultPoint& p : input.points) n[p.model] = p.Params();
  std::vector<std::string> models;
  for (const auto& [m, v] : n) models.push_back(m);
  std::stable_sort(models.begin(), models.end(),
                   [&](const std::string& a, const std::string& b) { return n[a] < n[b]; });
  return models;
}

size_t IndexOf(const std::vector<std::string>& v, const std::string& x) {
  return static_cast<size_t>(std::find(v.begin(), v.end(), x) - v.begin());
}

// Emits `body` once per terminal so one script makes both files.
std::string TwoTerminals(const std::string& stem, int width, int height, const std::string& body) {
  return absl::StrCat("set encoding utf8\nset datafile separator whitespace\n",
                      "set terminal pngcairo size ", width, ",", height,
                      " noenhanced font \"Sans,10\"\n", "set output '", stem, ".png'\n", body,
                      "unset multiplot\nset output\nreset\n", "set terminal svg size ", width, ",",
                      height, " noenhanced font \"Sans,10\" background \"white\"\n", "set output '",
                      stem, ".svg'\n", body, "unset multiplot\nset output\n");
}

// The caveat of models with random weights, drawn at the top of every figure so that it
// travels with the figure when it is copied out of the report.
std::string CaveatLabel(const AnalysisInput& input) {
  std::string text = input.figure_caveat;
  if (text.empty()) text = input.caveat.substr(0, input.caveat.find(". "));
  if (text.empty()) return "";
  if (text.size() > 140) text = text.substr(0, 137) + "...";
  return absl::StrCat("set label 990 ", Quote("CAVEAT: " + text),
                      " at screen 0.01,0.99 left front font ',10' tc rgb '#b00000'\n");
}

// One legend for a whole multi-panel figure, in a band at its bottom: entries drawn as
// plot items with no data (NaN), so that they appear once instead of beside each panel.
struct FigureLegend {
  std::vector<std::string> items;  // gnuplot plot items with titles, no data
  // The key's settings; `height` is the figure's height in pixels.
  std::string Settings(int height) const {
    return absl::StrCat("set key at screen 0.5,", Num(8.0 / height),
                        " center bottom horizontal maxrows 2 samplen 2 font ',9'\n");
  }
};

// `set multiplot layout` leaving room for the title, caveat and the legend band.
std::string MultiplotLayout(size_t panels, int panel_w, int panel_h, int* width, int* height,
                            const std::string& title) {
  const size_t cols = panels <= 1 ? 1 : 2;
  const size_t rows = std::max<size_t>(1, (panels + cols - 1) / cols);
  *width = static_cast<int>(cols) * panel_w;
  *height = static_cast<int>(rows) * panel_h + 110;
  return absl::StrCat("set multiplot layout ", rows, ",", cols, " title ", Quote(title),
                      " margins 0.07,0.97,", Num(80.0 / *height), ",", Num(1 - 50.0 / *height),
                      " spacing 0.08,", Num(70.0 / *height), "\n");
}

// Compressions seen per (phase, method) across the whole input: a series' grid.
std::map<std::pair<std::string, std::string>, std::set<double>> CompressionGrid(
    const AnalysisInput& input, const ReportOptions& options) {
  std::map<std::pair<std::string, std::string>, std::set<double>> grid;
  for (const ResultPoint& p : input.points) {
    if (p.is_dense()) continue;
    grid[{p.phase, p.method}].insert(p.nominal_compression);
  }
  return grid;
}

// The point for (model, task, len, method, nominal compression) of `phase`, if scored.
const ResultPoint* FindPoint(const AnalysisInput& input, const std::string& phase,
                             const std::string& model, const std::string& task, int64_t len,
                             const std::string& method, double comp) {
  for (const ResultPoint& p : input.points) {
    if (p.model != model || p.task != task || p.seq_len != len || p.method != method ||
        p.samples.empty()) {
      continue;
    }
    if (p.is_dense()) return &p;
    if (p.phase == phase && p.nominal_compression == comp) return &p;
  }
  return nullptr;
}

}  // namespace

std::string SafeName(const std::string& name) {
  std::string out = name;
  for (char& c : out) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) {
      c = '_';
    }
  }
  return out;
}

namespace {

// What every figure of one phase draws from.
struct PhaseFigures {
  std::filesystem::path root;  // the report folder
  const AnalysisInput* input;
  const AnalysisResults* results;
  const ReportOptions* options;
  std::string phase;
  std::vector<std::string> models;                                       // by parameter count
  std::map<std::pair<std::string, std::string>, std::set<double>> grid;  // CompressionGrid
  std::set<std::string> tasks;
  std::set<int64_t> lengths;
  std::vector<std::string> methods;  // the phase's sparse methods
};

// The legend of the isoFLOPS figures: colour = model, marker = method.
FigureLegend IsoFlopsLegend(const PhaseFigures& ctx) {
  FigureLegend legend;
  legend.items.push_back("NaN with lines lw 2.5 lc rgb 'black' title 'Pareto frontier'");
  for (const std::string& model : ctx.models) {
    legend.items.push_back(absl::StrCat("NaN with lines lw 4 lc rgb '",
                                        Color(IndexOf(ctx.models, model)), "' title ",
                                        Quote(model)));
  }
  legend.items.push_back(absl::StrCat("NaN with points pt ", kDensePointType,
                                      " ps 1.6 lc rgb 'black' title 'dense (reference)'"));
  for (const std::string& method : ctx.methods) {
    legend.items.push_back(absl::StrCat("NaN with linespoints pt ",
                                        PointType(IndexOf(ctx.methods, method)),
                                        " lc rgb 'black' title ", Quote(method)));
  }
  return legend;
}

// One isoFLOPS panel (curve `c`): writes its data file and returns its gnuplot lines.
// `time_axis`: the iso-time panel (measured seconds on the x axis) of the same layout.
// Each point is labelled with its compression; the legend items go in `legend` (the
// first panel draws them for the whole figure).
absl::StatusOr<std::string> IsoFlopsPanel(const PhaseFigures& ctx, const IsoFlopsCurve* c,
                                          const std::string& stem, bool time_axis,
                                          const FigureLegend* legend) {
  const std::string& phase = ctx.phase;
  const auto& models = ctx.models;
  const auto& methods = ctx.methods;
  const auto& grid = ctx.grid;
  const std::string data = absl::StrCat("data/", stem, "_", c->seq_len, ".dat");
  std::string text = "# frontier: flops score\n";
  double max_flops = 0, min_flops = std::numeric_limits<double>::infinity();
  for (const IsoFlopsPoint& p : c->points) {
    max_flops = std::max(max_flops, p.flops);
    min_flops = std::min(min_flops, p.flops);
  }
  double last = 0;
  for (const IsoFlopsPoint& p : c->points) {
    if (!p.on_frontier) continue;
    absl::StrAppend(&text, Num(p.flops), " ", Num(p.score), "\n");
    last = p.score;
  }
  absl::StrAppend(&text, Num(max_flops), " ", Num(last), "\n\n\n");
  std::vector<std::string> plot_items = {
      absl::StrCat("'", data, "' index 0 using 1:2 with steps lw 2.5 lc rgb 'black' notitle")};
  int block = 1;
  for (const std::string& model : models) {
    const char* color = Color(IndexOf(models, model));
    const IsoFlopsPoint* dense = nullptr;
    for (const IsoFlopsPoint& q : c->points) {
      if (q.model == model && q.method == BaselineMethod().name) dense = &q;
    }
    if (dense != nullptr) {
      absl::StrAppend(&text, "# ", model, " dense\n", Num(dense->flops), " ", Num(dense->score),
                      " 1\n\n\n");
      plot_items.push_back(absl::StrCat("'", data, "' index ", block++,
                                        " using 1:2 with points pt ", kDensePointType,
                                        " ps 1.6 lc rgb '", color, "' notitle"));
    }
    for (const std::string& method : methods) {
      std::vector<double> comps = {1.0};
      auto g = grid.find({phase, method});
      if (g != grid.end()) comps.insert(comps.end(), g->second.begin(), g->second.end());
      std::string series;
      bool any = false, gap = false;
      for (double comp : comps) {
        const IsoFlopsPoint* p = nullptr;
        for (const IsoFlopsPoint& q : c->points) {
          if (q.model == model && q.method == (comp == 1.0 ? BaselineMethod().name : method) &&
              q.nominal_compression == comp) {
            p = &q;
          }
        }
        if (p == nullptr) {
          if (!gap) series += "\n";  // a blank line breaks the line: missing
          gap = true;
          continue;
        }
        gap = false;
        any = true;
        absl::StrAppend(&series, Num(p->flops), " ", Num(p->score), " ", Num(comp), "\n");
      }
      if (!any) continue;
      absl::StrAppend(&text, "# ", model, " ", method, "\n", series, "\n\n");
      const std::string index = absl::StrCat("'", data, "' index ", block++);
      plot_items.push_back(absl::StrCat(index, " using 1:2 with linespoints lw 1.2 lc rgb '", color,
                                        "' pt ", PointType(IndexOf(methods, method)),
                                        " ps 1.1 notitle"));
      plot_items.push_back(
          absl::StrCat(index,
                       " using 1:2:($3 == 1 ? \"\" : sprintf(\"%gx\", $3)) with labels offset char "
                       "0.9,0.6 font ',7' tc rgb '",
                       color, "' notitle"));
    }
  }
  SF_RETURN_IF_ERROR(WriteFile(ctx.root / data, text));
  if (legend != nullptr) {
    plot_items.insert(plot_items.end(), legend->items.begin(), legend->items.end());
  }
  return absl::StrCat(
      "set title ", Quote(absl::StrCat("L = ", LengthLabel(c->seq_len))), "\n",
      LogXAxis(min_flops, max_flops), "set xlabel ",
      Quote(absl::StrCat(time_axis ? "seconds per sample" : "FLOPs per sample",
                         ctx.options->flops.isoflops_total ? " (total)" : " (" + phase + ")")),
      "\n",
      "set ylabel 'score'\nset yrange [-0.04<*:*<1.04]\nset offsets 0, 0, 0.03, 0.03\nset grid\n",
      "plot ", absl::StrJoin(plot_items, ", \\\n  "), "\n", legend != nullptr ? "unset key\n" : "");
}

// isoFLOPS (or, with `time_axis`, iso-time on results->time_device) of one task: one panel
// per length, one legend below them.
absl::Status WriteIsoFlopsFigure(const PhaseFigures& ctx, const std::string& task, bool time_axis,
                                 std::vector<PlotFile>* plots) {
  std::vector<const IsoFlopsCurve*> panels;
  for (const IsoFlopsCurve& c : time_axis ? ctx.results->time_curves : ctx.results->curves) {
    if (c.phase == ctx.phase && c.task == task) panels.push_back(&c);
  }
  if (panels.empty()) return absl::OkStatus();
  const std::string kind = time_axis ? "isotime" : "isoflops";
  const std::string stem = SafeName(absl::StrCat(kind, "_", ctx.phase, "_", task));
  const std::string what =
      time_axis ? absl::StrCat("iso-time on ", ctx.results->time_device) : "isoFLOPS";
  int w = 0, h = 0;
  std::string body = MultiplotLayout(
      panels.size(), 640, 420, &w, &h,
      absl::StrCat(what, ", ", ctx.phase, ", ", task,
                   " (labels: compression; black steps: Pareto frontier; gaps: missing points)"));
  const FigureLegend legend = IsoFlopsLegend(ctx);
  body = CaveatLabel(*ctx.input) + legend.Settings(h) + body;
  for (size_t i = 0; i < panels.size(); ++i) {
    SF_ASSIGN_OR_RETURN(std::string panel,
                        IsoFlopsPanel(ctx, panels[i], stem, time_axis, i == 0 ? &legend : nullptr));
    body += panel;
  }
  SF_RETURN_IF_ERROR(
      WriteFile(ctx.root / "plots" / (stem + ".gp"), TwoTerminals(stem, w, h, body)));
  plots->push_back({kind, absl::StrCat(ctx.phase, " / ", task), stem});
  return absl::OkStatus();
}

// The legend of the score-vs-compression figures: colour = model, marker = length.
FigureLegend CompressionLegend(const PhaseFigures& ctx) {
  FigureLegend legend;
  for (const std::string& model : ctx.models) {
    legend.items.push_back(absl::StrCat("NaN with lines lw 4 lc rgb '",
                                        Color(IndexOf(ctx.models, model)), "' title ",
                                        Quote(model)));
  }
  size_t li = 0;
  for (int64_t len : ctx.lengths) {
    legend.items.push_back(absl::StrCat("NaN with linespoints dt ", li % 5 + 1, " pt ",
                                        PointType(li), " lc rgb 'black' title ",
                                        Quote(absl::StrCat("L = ", LengthLabel(len)))));
    ++li;
  }
  legend.items.push_back("NaN with yerrorbars lc rgb 'black' title '+- 1 standard error'");
  return legend;
}

// One score-vs-compression panel (`method`): writes its data file and returns its
// gnuplot lines. Error bars: the standard error of each mean.
absl::StatusOr<std::string> CompressionPanel(const PhaseFigures& ctx, const std::string& task,
                                             const std::string& method, const std::string& stem,
                                             const FigureLegend* legend) {
  const std::string& phase = ctx.phase;
  const AnalysisInput& input = *ctx.input;
  const auto& models = ctx.models;
  const auto& lengths = ctx.lengths;
  const auto& grid = ctx.grid;
  const std::string data = absl::StrCat("data/", stem, "_", SafeName(method), ".dat");
  std::vector<double> comps = {1.0};
  const auto& g = grid.at({phase, method});
  comps.insert(comps.end(), g.begin(), g.end());
  std::string text;
  std::vector<std::string> items;
  int block = 0;
  size_t li = 0;
  for (int64_t len : lengths) {
    for (const std::string& model : models) {
      std::string series;
      bool any = false, gap = false;
      for (double comp : comps) {
        const ResultPoint* p = FindPoint(input, phase, model, task, len,
                                         comp == 1.0 ? BaselineMethod().name : method, comp);
        if (p == nullptr) {
          if (!gap) series += "\n";
          gap = true;
          continue;
        }
        gap = false;
        any = true;
        absl::StrAppend(&series, Num(comp), " ", Num(p->MeanScore()), " ",
                        Num(p->StandardErrorOfMean()), "\n");
      }
      if (!any) continue;
      absl::StrAppend(&text, "# ", model, " L=", len, ": compression mean stderr\n", series,
                      "\n\n");
      items.push_back(absl::StrCat(
          "'", data, "' index ", block++, " using 1:2:3 with yerrorlines lw 1.2 dt ", li % 5 + 1,
          " lc rgb '", Color(IndexOf(models, model)), "' pt ", PointType(li), " ps 1.1 notitle"));
    }
    ++li;
  }
  if (items.empty()) {
    text = "0 NaN 0\n";
    items.push_back(absl::StrCat("'", data, "' using 1:2 notitle"));
  }
  SF_RETURN_IF_ERROR(WriteFile(ctx.root / data, text));
  std::string xtics;
  for (double c : comps) {
    if (!xtics.empty()) xtics += ", ";
    absl::StrAppend(&xtics, "'", Num(c), "' ", Num(c));
  }
  if (legend != nullptr) items.insert(items.end(), legend->items.begin(), legend->items.end());
  return absl::StrCat("set title ", Quote(method), "\nset logscale x\nset xtics (", xtics,
                      ")\nset xrange [0.9:", Num(comps.back() * 1.15),
                      "]\nset xlabel 'compression (nominal; 1 = dense)'\nset ylabel 'score'\n",
                      "set yrange [-0.04<*:*<1.04]\nset offsets 0, 0, 0.03, 0.03\nset grid\nplot ",
                      absl::StrJoin(items, ", \\\n  "), "\n",
                      legend != nullptr ? "unset key\n" : "");
}

// Score vs compression of one task: one panel per method, one legend below them.
absl::Status WriteCompressionFigure(const PhaseFigures& ctx, const std::string& task,
                                    std::vector<PlotFile>* plots) {
  const std::string stem = SafeName(absl::StrCat("compression_", ctx.phase, "_", task));
  int w = 0, h = 0;
  std::string body = MultiplotLayout(
      ctx.methods.size(), 600, 380, &w, &h,
      absl::StrCat("score vs compression, ", ctx.phase, ", ", task,
                   " (colour: model, marker and dash: length; gaps: missing points)"));
  const FigureLegend legend = CompressionLegend(ctx);
  body = CaveatLabel(*ctx.input) + legend.Settings(h) + body;
  for (size_t i = 0; i < ctx.methods.size(); ++i) {
    SF_ASSIGN_OR_RETURN(std::string panel, CompressionPanel(ctx, task, ctx.methods[i], stem,
                                                            i == 0 ? &legend : nullptr));
    body += panel;
  }
  SF_RETURN_IF_ERROR(
      WriteFile(ctx.root / "plots" / (stem + ".gp"), TwoTerminals(stem, w, h, body)));
  plots->push_back({"compression", absl::StrCat(ctx.phase, " / ", task), stem});
  return absl::OkStatus();
}

// Preserved-compression heatmap: rows (task, length), columns (model, method).
absl::Status WritePreservedHeatmap(const PhaseFigures& ctx, std::vector<PlotFile>* plots) {
  const std::string& phase = ctx.phase;
  const AnalysisResults& results = *ctx.results;
  const ReportOptions& options = *ctx.options;
  const std::filesystem::path& root = ctx.root;
  const auto& models = ctx.models;
  const auto& methods = ctx.methods;
  const auto& tasks = ctx.tasks;
  const auto& lengths = ctx.lengths;
  const auto& grid = ctx.grid;
  std::vector<std::pair<std::string, std::string>> cols;
  for (const std::string& model : models) {
    for (const std::string& method : methods) cols.push_back({model, method});
  }
  std::vector<std::pair<std::string, int64_t>> rows;
  for (const std::string& task : tasks) {
    if (task == kMeanOverTasks) continue;
    for (int64_t len : lengths) rows.push_back({task, len});
  }
  const std::string stem = SafeName(absl::StrCat("preserved_", phase));
  std::string cells, missing;
  double max_value = 2.0;
  for (size_t y = 0; y < rows.size(); ++y) {
    for (size_t x = 0; x < cols.size(); ++x) {
      const PreservedCompression* found = nullptr;
      for (const PreservedCompression& pc : results.preserved) {
        if (pc.phase == phase && pc.model == cols[x].first && pc.method == cols[x].second &&
            pc.task == rows[y].first && pc.seq_len == rows[y].second) {
          found = &pc;
        }
      }
      if (found == nullptr || std::isnan(found->preserved)) {
        absl::StrAppend(&missing, x, " ", y, "\n");
      } else {
        max_value = std::max(max_value, found->preserved);
        // The largest tested compression passed: the answer is at least that (censored).
        absl::StrAppend(&cells, x, " ", y, " ", Num(found->preserved), " \"",
                        IsCensored(*found) ? "\u2265" : "", Num(found->preserved),
                        found->non_monotone ? "*" : "", "\"\n");
      }
    }
  }
  if (cells.empty()) cells = "-10 -10 1 \"\"\n";
  if (missing.empty()) missing = "-10 -10\n";
  SF_RETURN_IF_ERROR(WriteFile(root / "data" / (stem + ".dat"), cells));
  SF_RETURN_IF_ERROR(WriteFile(root / "data" / (stem + "_missing.dat"), missing));
  std::string xtics, ytics;
  for (size_t x = 0; x < cols.size(); ++x) {
    absl::StrAppend(&xtics, x ? ", " : "", Quote(cols[x].first + " " + cols[x].second), " ", x);
  }
  for (size_t y = 0; y < rows.size(); ++y) {
    absl::StrAppend(&ytics, y ? ", " : "", Quote(rows[y].first + " " + LengthLabel(rows[y].second)),
                    " ", y);
  }
  const int w = std::max(760, 300 + 80 * static_cast<int>(cols.size()));
  const int h = std::max(400, 200 + 26 * static_cast<int>(rows.size()));
  std::set<double> phase_comps = {1.0};
  for (const std::string& method : methods) {
    const auto& g = grid.at({phase, method});
    phase_comps.insert(g.begin(), g.end());
  }
  max_value = std::max(max_value, *phase_comps.rbegin());
  std::string cbtics;
  for (double c : phase_comps) absl::StrAppend(&cbtics, cbtics.empty() ? "" : ", ", Num(c));
  const std::string body = absl::StrCat(
      CaveatLabel(*ctx.input), "set title ",
      Quote(absl::StrCat("largest compression not significantly worse than dense (", phase, ", ",
                         PairedTestName(options.preserved.test), ", alpha ",
                         Num(options.preserved.alpha),
                         ")\ngrey: missing; \u2265: the largest tested passed; *: a larger "
                         "compression passes again")),
      "\nset xrange [-0.5:", cols.size() - 0.5, "]\nset yrange [", rows.size() - 0.5,
      ":-0.5]\nset xtics (", xtics, ") rotate by 45 right\nset ytics (", ytics, ")\n",
      "set logscale cb\nset cbrange [1:", Num(max_value), "]\nset cbtics (", cbtics,
      ")\nset cblabel 'preserved compression' offset 1.5,0\n",
      "set palette defined (0 '#d73027', 0.5 '#fee08b', 1 '#1a9850')\nunset key\n",
      "set style fill solid 1.0 border lc rgb 'white'\nplot 'data/", stem,
      "_missing.dat' using 1:2:(0.5):(0.5) with boxxyerror lc rgb '#cccccc', \\\n", "  'data/",
      stem, ".dat' using 1:2:(0.5):(0.5):3 with boxxyerror lc palette, \\\n", "  'data/", stem,
      ".dat' using 1:2:4 with labels font ',9'\n");
  SF_RETURN_IF_ERROR(WriteFile(root / "plots" / (stem + ".gp"), TwoTerminals(stem, w, h, body)));
  plots->push_back({"preserved", phase, stem});
  return absl::OkStatus();
}

// Predicted vs observed mean scores of a phase's scaling-law fit.
absl::Status WriteFitFigure(const PhaseFigures& ctx, const PhaseFit& pf,
                            std::vector<PlotFile>* plots) {
  const std::string& phase = ctx.phase;
  const AnalysisInput& input = *ctx.input;
  const ReportOptions& options = *ctx.options;
  const std::filesystem::path& root = ctx.root;
  const std::string stem = SafeName(absl::StrCat("fit_", phase));
  std::string text;
  std::vector<std::string> items;
  int block = 0;
  for (size_t t = 0; t < pf.fit->tasks.size(); ++t) {
    std::string series;
    for (const ResultPoint& p : input.points) {
      if (p.samples.empty() || p.task != pf.fit->tasks[t]) continue;
      if (!p.is_dense() && p.phase != phase) continue;
      absl::StrAppend(&series, Num(pf.fit->Predict(p, options.scaling)), " ", Num(p.MeanScore()),
                      "\n");
    }
    absl::StrAppend(&text, "# in-sample ", pf.fit->tasks[t], "\n", series, "\n\n");
    items.push_back(absl::StrCat("'data/", stem, ".dat' index ", block++,
                                 " using 1:2 with points pt 7 ps 0.8 lc rgb '", Color(t),
                                 "' title ", Quote(pf.fit->tasks[t])));
  }
  std::vector<std::string> held;
  for (size_t v = 0; v < pf.validation.size(); ++v) {
    const HoldoutValidation& val = pf.validation[v];
    if (!val.error.empty()) continue;
    std::string series;
    for (size_t i = 0; i < val.observed.size(); ++i) {
      absl::StrAppend(&series, Num(val.predicted[i]), " ", Num(val.observed[i]), "\n");
    }
    absl::StrAppend(&text, "# held out ", val.axis, "\n", series, "\n\n");
    held.push_back(
        absl::StrCat("'data/", stem, ".dat' index ", block++, " using 1:2 with points pt ",
                     PointType(v), " ps 1 lc rgb '", Color(v), "' title ",
                     Quote(absl::StrFormat("largest %s held out (R2 %.2f)", val.axis, val.r2))));
  }
  SF_RETURN_IF_ERROR(WriteFile(root / "data" / (stem + ".dat"), text));
  const std::string common =
      "set xrange [0:1]\nset yrange [0:1]\nset size ratio 1\nset grid\n"
      "set xlabel 'predicted mean score'\nset ylabel 'observed mean score'\nset key top left "
      "font ',8'\n";
  std::string body = absl::StrCat(
      CaveatLabel(input), "set multiplot layout 1,2 title ",
      Quote(absl::StrCat("scaling law, ", phase, ": predicted vs observed mean scores")), "\n",
      "set title 'fit on all points'\n", common, "plot x with lines lc rgb 'gray' notitle, ",
      absl::StrJoin(items, ", "), "\n");
  absl::StrAppend(&body, "set title 'held-out validation'\n", common,
                  "plot x with lines lc rgb 'gray' notitle", held.empty() ? "" : ", ",
                  absl::StrJoin(held, ", "), "\n");
  SF_RETURN_IF_ERROR(
      WriteFile(root / "plots" / (stem + ".gp"), TwoTerminals(stem, 1100, 560, body)));
  plots->push_back({"fit", phase, stem});
  return absl::OkStatus();
}

}  // namespace

absl::Status WritePlotScripts(const AnalysisInput& input, const AnalysisResults& results,
                              const ReportOptions& options, const std::string& out_dir,
                              std::vector<PlotFile>* plots) {
  namespace fs = std::filesystem;
  const fs::path root(out_dir);
  std::error_code ec;
  fs::create_directories(root / "data", ec);
  fs::create_directories(root / "plots", ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", out_dir, ": ", ec.message()));
  std::set<std::string> phases;
  for (const IsoFlopsCurve& c : results.curves) phases.insert(c.phase);

  for (const std::string& phase : phases) {
    PhaseFigures ctx{root, &input, &results, &options, phase};
    ctx.models = ModelsByParams(input);
    ctx.grid = CompressionGrid(input, options);
    for (const auto& [key, comps] : ctx.grid) {
      if (key.first == phase) ctx.methods.push_back(key.second);
    }
    for (const IsoFlopsCurve& c : results.curves) {
      if (c.phase != phase) continue;
      ctx.tasks.insert(c.task);
      ctx.lengths.insert(c.seq_len);
    }

    for (const std::string& task : ctx.tasks) {
      SF_RETURN_IF_ERROR(WriteIsoFlopsFigure(ctx, task, /*time_axis=*/false, plots));
      SF_RETURN_IF_ERROR(WriteIsoFlopsFigure(ctx, task, /*time_axis=*/true, plots));
    }
    for (const std::string& task : ctx.tasks) {
      if (task == kMeanOverTasks) continue;
      SF_RETURN_IF_ERROR(WriteCompressionFigure(ctx, task, plots));
    }
    SF_RETURN_IF_ERROR(WritePreservedHeatmap(ctx, plots));
    for (const PhaseFit& pf : results.fits) {
      if (pf.phase != phase || !pf.fit.has_value()) continue;
      SF_RETURN_IF_ERROR(WriteFitFigure(ctx, pf, plots));
    }
  }
  return absl::OkStatus();
}

absl::Status RenderPlots(const std::vector<PlotFile>& plots, const std::string& gnuplot,
                         const std::string& out_dir) {
  // Absolute: gnuplot is spawned in out_dir, and the log is opened after that chdir (a
  // relative out_dir made every spawn fail with ENOENT, reported as "cannot run").
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::absolute(out_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot resolve ", out_dir, ": ", ec.message()));
  const std::string log = (dir / "plots" / "gnuplot.log").string();
  // pngcairo draws anti-aliased text; fall back to libgd's png where it is missing.
  bool cairo = true;
  for (const PlotFile& plot : plots) {
    const std::string script = absl::StrCat("plots/", plot.stem, ".gp");
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::string run_script = script;
      if (!cairo) {
        std::ifstream in(std::filesystem::path(out_dir) / script);
        std::stringstream ss;
        ss << in.rdbuf();
        std::string text = ss.str();
        for (size_t pos; (pos = text.find("pngcairo")) != std::string::npos;) {
          text.replace(pos, 8, "png");
        }
        run_script = absl::StrCat("plots/", plot.stem, ".png.gp");
        SF_RETURN_IF_ERROR(WriteFile(std::filesystem::path(out_dir) / run_script, text));
      }
      posix_spawn_file_actions_t actions;
      posix_spawn_file_actions_init(&actions);
      posix_spawn_file_actions_addchdir_np(&actions, out_dir.c_str());
      posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                       O_WRONLY | O_CREAT | O_APPEND, 0644);
      posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
      std::vector<char*> argv = {const_cast<char*>(gnuplot.c_str()),
                                 const_cast<char*>(run_script.c_str()), nullptr};
      pid_t pid = 0;
      const int rc = posix_spawnp(&pid, gnuplot.c_str(), &actions, nullptr, argv.data(), environ);
      posix_spawn_file_actions_destroy(&actions);
      if (rc != 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot run '", gnuplot, "': ", std::strerror(rc),
                         " (install gnuplot-nox, or render_plots = false)"));
      }
      int status = 0;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot run '", gnuplot, "' (install gnuplot-nox)"));
      }
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) break;
      if (attempt == 0 && cairo) {
        cairo = false;  // retry this and later plots with the png terminal
        continue;
      }
      return absl::InternalError(
          absl::StrCat("gnuplot failed on ", out_dir, "/", script, "; see ", log));
    }
  }
  return absl::OkStatus();
}

}  // namespace sf::analysis
