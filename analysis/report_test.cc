#include "analysis/report.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "analysis/glm.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace sf::analysis {
namespace {

// A folder of this test process under the test temp dir: runs of the suite from other
// checkouts at the same time must not share it.
std::string TestDir(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name, "_", getpid());
}

using ::sf::testing::StatusIs;
using ::testing::HasSubstr;

// The law the synthetic sweep is drawn from.
constexpr double kEps = -18.4, kA = 1.0, kB = -0.3, kC = -0.5;
const std::map<std::string, double>& TaskDelta() {
  static const auto* d = new std::map<std::string, double>{
      {"qa_squad", 0.0}, {"ruler_niah", 0.9}, {"story_retrieval", -0.4}};
  return *d;
}

// A sweep over 3 Qwen2.5 sizes, 3 tasks, 3 lengths, 2 prefill methods and 1 decode
// method at 4 compressions, 200 samples each, each sample an independent Bernoulli
// draw (the GLM's assumption, so its standard errors are honest).
AnalysisInput SyntheticSweep() {
  AnalysisInput in;
  in.caveat = "synthetic data drawn from a known logistic law";
  const std::vector<std::pair<std::string, ModelShape>> models = {
      {"qwen2.5-7b", Qwen25_7B()}, {"qwen2.5-14b", Qwen25_14B()}, {"qwen2.5-32b", Qwen25_32B()}};
  const std::vector<std::pair<std::string, std::string>> methods = {
      {"block_sparse", "prefill"}, {"vertical_slash", "prefill"}, {"quest", "decode"}};
  std::mt19937_64 rng(2026);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  for (const auto& [model, shape] : models) {
    for (const auto& [task, delta] : TaskDelta()) {
      for (int64_t len : {32768, 65536, 131072}) {
        auto make = [&](const std::string& method, const std::string& phase, double comp) {
          ResultPoint p;
          p.model = model;
          p.shape = shape;
          p.task = task;
          p.seq_len = len;
          p.method = method;
          p.phase = phase;
          p.nominal_compression = comp;
          p.decode_tokens = 64;
          const double prob =
              Sigmoid(kEps + delta + kA * std::log(TotalParams(shape)) +
                      kB * std::log(static_cast<double>(len)) + kC * std::log(comp));
          for (int64_t i = 0; i < 200; ++i) {
            p.samples.push_back({i, unif(rng) < prob ? 1.0 : 0.0});
          }
          return p;
        };
        in.points.push_back(make("dense", "", 1.0));
        for (const auto& [method, phase] : methods) {
          for (double comp : {2.0, 5.0, 10.0, 20.0}) in.points.push_back(make(method, phase, comp));
        }
      }
    }
  }
  return in;
}

// Drops two points and a whole (model, task, length, method) group of four and empties
// one more point, as an interrupted sweep would leave it: 7 missing points.
AnalysisInput PartialSweep() {
  AnalysisInput in = SyntheticSweep();
  std::erase_if(in.points, [](const ResultPoint& p) {
    return (p.model == "qwen2.5-32b" && p.task == "ruler_niah" && p.seq_len == 131072 &&
            ((p.method == "quest" && p.nominal_compression == 20.0) ||
             (p.method == "block_sparse" && p.nominal_compression == 5.0))) ||
           (p.model == "qwen2.5-7b" && p.task == "story_retrieval" && p.seq_len == 131072 &&
            p.method == "vertical_slash");
  });
  for (ResultPoint& p : in.points) {
    if (p.model == "qwen2.5-7b" && p.task == "qa_squad" && p.seq_len == 32768 &&
        p.method == "vertical_slash" && p.nominal_compression == 10.0) {
      p.samples.clear();
    }
  }
  return in;
}

TEST(Analyze, SyntheticSweep_RecoversTheLawInBothPhases) {
  SF_ASSERT_OK_AND_ASSIGN(AnalysisResults r, Analyze(PartialSweep(), {}));
  ASSERT_EQ(r.fits.size(), 2u);
  for (const PhaseFit& pf : r.fits) {
    ASSERT_TRUE(pf.fit.has_value()) << pf.phase << ": " << pf.error;
    const std::map<std::string, double> truth = {{"eps", kEps},
                                                 {"delta[ruler_niah]", 0.9},
                                                 {"delta[story_retrieval]", -0.4},
                                                 {"a_lnN", kA},
                                                 {"b_lnL", kB},
                                                 {"c_lnC", kC}};
    ASSERT_EQ(pf.fit->names.size(), truth.size());
    for (size_t k = 0; k < pf.fit->names.size(); ++k) {
      EXPECT_LT(std::fabs(pf.fit->coefficients[k] - truth.at(pf.fit->names[k])),
                4.0 * pf.fit->standard_errors[k])
          << pf.phase << " " << pf.fit->names[k] << " = " << pf.fit->coefficients[k];
    }
    ASSERT_EQ(pf.validation.size(), 3u);
    for (const HoldoutValidation& v : pf.validation) {
      EXPECT_EQ(v.error, "");
      EXPECT_GT(v.spearman, 0.8) << pf.phase << " " << v.axis;
      EXPECT_LT(v.mae, 0.08) << pf.phase << " " << v.axis;
    }
  }
  // 2 phases x (3 tasks + their mean) x 3 lengths.
  EXPECT_EQ(r.curves.size(), 24u);
  ASSERT_EQ(r.missing.size(), 7u);
  EXPECT_EQ(std::count_if(r.missing.begin(), r.missing.end(),
                          [](const MissingPoint& m) { return m.model == "qwen2.5-7b"; }),
            5);
  // At 20x the law takes 0.2 to 0.3 off every score: with 200 samples that is always
  // significant, so no group preserves 20x.
  ASSERT_EQ(r.preserved.size(), 3u * 3u * 3u * 3u - 1u);
  for (const PreservedCompression& pc : r.preserved) {
    EXPECT_LT(pc.preserved, 20.0) << pc.model << " " << pc.task << " " << pc.method;
    if (pc.tests.back().compression == 20.0) {
      EXPECT_TRUE(pc.tests.back().significantly_worse);
    }
  }
}

TEST(FormatSummary, SyntheticSweep_ListsFitsCriticalLengthsAndPreserved) {
  SF_ASSERT_OK_AND_ASSIGN(AnalysisResults r, Analyze(PartialSweep(), {}));
  const std::string text = FormatSummary(r, {});
  // 27 dense + 2 methods x 27 x 4 - 6 missing; decode: 27 + 27 x 4 - 1.
  EXPECT_THAT(text, HasSubstr("scaling law, prefill: 237 points"));
  EXPECT_THAT(text, HasSubstr("c_lnC"));
  EXPECT_THAT(text, HasSubstr("held out largest L: R2"));
  EXPECT_THAT(text, HasSubstr("critical length (mean over tasks):"));
  EXPECT_THAT(text, HasSubstr("decode   quest            L=131072"));
  EXPECT_THAT(text, HasSubstr("7 grid points missing"));
}

TEST(WriteReport, SyntheticSweep_WritesPageTablesAndPlots) {
  const std::string dir = TestDir("sf_report_test");
  std::filesystem::remove_all(dir);
  SF_ASSERT_OK(WriteReport(PartialSweep(), {}, dir));
  std::ifstream html_in(dir + "/index.html");
  std::stringstream html;
  html << html_in.rdbuf();
  EXPECT_THAT(html.str(), HasSubstr("synthetic data drawn from a known logistic law"));
  EXPECT_THAT(html.str(), HasSubstr("7 grid points have no scored samples"));
  EXPECT_THAT(html.str(), HasSubstr("Critical length"));
  for (const char* stem : {"isoflops_prefill_ruler_niah", "isoflops_decode_qa_squad",
                           "compression_prefill_story_retrieval", "preserved_prefill",
                           "preserved_decode", "fit_prefill", "fit_decode"}) {
    EXPECT_THAT(html.str(), HasSubstr(std::string(stem) + ".png")) << stem;
    std::ifstream png(dir + "/" + stem + ".png", std::ios::binary);
    char magic[4] = {};
    png.read(magic, 4);
    EXPECT_EQ(std::string(magic + 1, 3), "PNG") << stem;
    EXPECT_GT(std::filesystem::file_size(dir + "/" + stem + ".png"), 10000u) << stem;
    EXPECT_GT(std::filesystem::file_size(dir + "/" + stem + ".svg"), 1000u) << stem;
  }
  EXPECT_TRUE(std::filesystem::exists(dir + "/points.csv"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/preserved.csv"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/scaling_law.csv"));
}

// Timed points (seconds from the FLOPs at a model-independent rate, sparse prefill paying a
// fixed overhead): the wall-clock section, its figures and the summary's speed-ups.
TEST(WriteReport, TimedSweep_WritesTheWallClockSection) {
  AnalysisInput in = SyntheticSweep();
  for (ResultPoint& p : in.points) {
    if (p.seq_len != 32768) continue;
    const FlopsBreakdown f = PointFlops(p, {});
    p.prefill_seconds = f.Prefill() / 5e14 + (p.phase == "prefill" ? 0.05 : 0.0);
    p.decode_seconds = f.Decode() / 5e12;
    p.estimation_seconds = p.phase == "prefill" ? 0.01 : 0.0;
    p.device = "NVIDIA H100 80GB HBM3";
  }
  SF_ASSERT_OK_AND_ASSIGN(AnalysisResults r, Analyze(in, {}));
  EXPECT_EQ(r.time_device, "NVIDIA H100 80GB HBM3");
  EXPECT_FALSE(r.time_curves.empty());
  ASSERT_FALSE(r.speedups.empty());
  for (const SpeedupRow& row : r.speedups) {
    EXPECT_EQ(row.seq_len, 32768);
    EXPECT_EQ(row.tasks, 3) << row.model << " " << row.method;
    if (row.phase == "prefill") {
      EXPECT_LT(row.time_speedup, row.flops_speedup) << row.method;
    }
  }
  const std::string text = FormatSummary(r, {});
  EXPECT_THAT(text, HasSubstr("wall clock on NVIDIA H100 80GB HBM3"));
  const std::string dir = TestDir("sf_report_timed");
  std::filesystem::remove_all(dir);
  SF_ASSERT_OK(WriteReport(in, r, {}, dir));
  std::ifstream html_in(dir + "/index.html");
  std::stringstream html;
  html << html_in.rdbuf();
  EXPECT_THAT(html.str(), HasSubstr("Wall clock: iso-time frontier"));
  EXPECT_THAT(html.str(), HasSubstr("time speed-up"));
  EXPECT_THAT(html.str(), HasSubstr("isotime_prefill_ruler_niah.png"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/isotime_prefill_ruler_niah.png"));
}

// What a figure must carry to stand alone on a slide: the caveat, one legend with
// dense in it, labelled compressions, error bars, and censored preserved values.
TEST(WriteReport, Figures_CarryCaveatLegendLabelsErrorBarsAndCensoring) {
  const std::string dir = TestDir("sf_report_figures");
  std::filesystem::remove_all(dir);
  AnalysisInput in = SyntheticSweep();
  ReportOptions options;
  options.render_plots = false;
  SF_ASSERT_OK(WriteReport(in, options, dir));
  auto read = [&](const std::string& name) {
    std::ifstream f(dir + "/" + name);
    std::stringstream text;
    text << f.rdbuf();
    return text.str();
  };
  const std::string iso = read("plots/isoflops_prefill_ruler_niah.gp");
  // The caveat is on every figure.
  EXPECT_THAT(iso, HasSubstr("CAVEAT: synthetic data drawn from a known logistic law"));
  EXPECT_THAT(iso, HasSubstr("title 'dense (reference)'"));
  EXPECT_THAT(iso, HasSubstr("sprintf(\"%gx\", $3)"));
  // One legend for the figure: its entries once per script terminal, not per panel.
  size_t titles = 0;
  for (size_t pos = 0; (pos = iso.find("title 'dense (reference)'", pos)) != std::string::npos;
       ++pos) {
    ++titles;
  }
  EXPECT_EQ(titles, 2u);  // PNG and SVG
  const std::string comp = read("plots/compression_prefill_ruler_niah.gp");
  EXPECT_THAT(comp, HasSubstr("with yerrorlines"));
  EXPECT_THAT(comp, HasSubstr("CAVEAT: synthetic"));
  EXPECT_THAT(read("data/compression_prefill_ruler_niah_block_sparse.dat"),
              HasSubstr("mean stderr"));
  EXPECT_THAT(read("plots/preserved_prefill.gp"), HasSubstr("CAVEAT: synthetic"));
  EXPECT_THAT(read("plots/fit_prefill.gp"), HasSubstr("CAVEAT: synthetic"));
  // The synthetic law keeps 200-sample easy tasks above dense at the largest tested
  // compression somewhere: those cells read ">= 20" in the heatmap, the table and the CSV.
  const std::string csv = read("preserved.csv");
  EXPECT_THAT(csv, HasSubstr(",censored,dense_at_zero\n"));
  const bool any_censored = csv.find(",yes\n") != std::string::npos;
  if (any_censored) {
    EXPECT_THAT(read("data/preserved_prefill.dat") + read("data/preserved_decode.dat"),
                HasSubstr("\"\u2265"));
    EXPECT_THAT(read("index.html"), HasSubstr("&ge;&nbsp;"));
  }
  const std::string html = read("index.html");
  EXPECT_THAT(html, HasSubstr("<th>phase</th><th>preserved</th>"));
  EXPECT_THAT(html, HasSubstr("href=\"explore.html\""));
}

// The interactive page: self-contained (no external script, style or font) with every
// scored point as data.
TEST(WriteReport, Explorer_IsSelfContainedWithEveryScoredPoint) {
  const std::string dir = TestDir("sf_report_explorer");
  std::filesystem::remove_all(dir);
  ReportOptions options;
  options.render_plots = false;
  const AnalysisInput in = PartialSweep();
  SF_ASSERT_OK(WriteReport(in, options, dir));
  std::ifstream f(dir + "/explore.html");
  std::stringstream text;
  text << f.rdbuf();
  const std::string page = text.str();
  EXPECT_THAT(page, ::testing::Not(HasSubstr("src=\"http")));
  EXPECT_THAT(page, ::testing::Not(HasSubstr("href=\"http")));
  EXPECT_THAT(page, ::testing::Not(HasSubstr("@import")));
  const size_t begin = page.find("type=\"application/json\">");
  ASSERT_NE(begin, std::string::npos);
  const size_t from = begin + std::string("type=\"application/json\">").size();
  const auto data = nlohmann::json::parse(page.substr(from, page.find("</script>", from) - from));
  size_t scored = 0;
  for (const ResultPoint& p : in.points) scored += p.samples.empty() ? 0 : 1;
  EXPECT_EQ(data["points"].size(), scored);
  EXPECT_EQ(data["caveat"], in.caveat);
  const auto& first = data["points"][0];
  for (const char* key : {"model", "params", "task", "length", "method", "phase", "compression",
                          "mean", "stderr", "n", "flops"}) {
    EXPECT_TRUE(first.contains(key)) << key;
  }
  EXPECT_EQ(first["n"], 200);
}

// A timed sweep: the page offers measured seconds of the report's timed device as an x
// axis; points not timed there have 0 seconds (and drop out of that view).
TEST(WriteReport, Explorer_TimedSweep_CarriesSecondsOfTheTimedDevice) {
  AnalysisInput in = SyntheticSweep();
  for (ResultPoint& p : in.points) {
    if (p.seq_len != 32768) continue;
    p.prefill_seconds = 0.5;
    p.decode_seconds = 0.25;
    p.device = "NVIDIA H100 80GB HBM3";
  }
  const std::string dir = TestDir("sf_report_explorer_timed");
  std::filesystem::remove_all(dir);
  ReportOptions options;
  options.render_plots = false;
  SF_ASSERT_OK(WriteReport(in, options, dir));
  std::ifstream f(dir + "/explore.html");
  std::stringstream text;
  text << f.rdbuf();
  const std::string page = text.str();
  const size_t from = page.find("type=\"application/json\">") + 24;
  const auto data = nlohmann::json::parse(page.substr(from, page.find("</script>", from) - from));
  EXPECT_EQ(data["time_device"], "NVIDIA H100 80GB HBM3");
  size_t timed = 0;
  for (const auto& p : data["points"]) {
    const bool long_context = p["length"] == 32768;
    EXPECT_EQ(p["seconds"]["prefill"], long_context ? 0.5 : 0.0);
    timed += long_context ? 1 : 0;
  }
  EXPECT_GT(timed, 0u);
}

// The page's script draws every view (phase x task x length x axis) with one marker
// per point, shows a point on hover and hides a toggled model, without errors: run by
// Node against a minimal DOM (analysis/testing/explorer_check.js).
TEST(WriteReport, Explorer_ScriptDrawsEveryView) {
  if (std::system("command -v node > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "node is not installed (Debian: nodejs)";
  }
  const std::string dir = TestDir("sf_report_explorer_js");
  std::filesystem::remove_all(dir);
  ReportOptions options;
  options.render_plots = false;
  SF_ASSERT_OK(WriteReport(PartialSweep(), options, dir));
  const std::string out = dir + "/check.txt";
  const int rc = std::system(
      absl::StrCat("node ", SF_EXPLORER_CHECK_JS, " ", dir, "/explore.html > ", out, " 2>&1")
          .c_str());
  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(rc, 0) << text.str();
  // 2 phases x 3 tasks x 3 lengths x 2 axes.
  EXPECT_THAT(text.str(), HasSubstr("ok: 36 views drawn"));
}

// The headless browser the page checks run in: chromium (Debian), else another name.
std::string HeadlessChromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    if (std::system(absl::StrCat("command -v ", name, " > /dev/null 2>&1").c_str()) == 0) {
      return name;
    }
  }
  return "";
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Loads `page` (an absolute path) in headless Chromium and returns the DOM after its
// scripts ran, or the browser's stderr when it printed no DOM.
std::string DumpDom(const std::string& browser, const std::string& page, const std::string& dir) {
  const std::string out = dir + "/dom.html", err = dir + "/chromium.log";
  const int rc =
      std::system(absl::StrCat("timeout 120 ", browser,
                               " --headless --no-sandbox --disable-gpu "
                               "--disable-dev-shm-usage --no-first-run "
                               "--user-data-dir=",
                               dir, "/profile --dump-dom file://", page, " > ", out, " 2> ", err)
                      .c_str());
  const std::string dom = ReadText(out);
  return rc == 0 && !dom.empty() ? dom : absl::StrCat("chromium exited ", rc, ": ", ReadText(err));
}

// The interactive page in a real browser: it loads with no error or console.error, and
// every view is drawn with one laid-out marker per point; hover and toggles work
// (analysis/testing/explorer_browser_check.js, appended to a copy of the page).
TEST(WriteReport, Explorer_LoadsAndDrawsEveryViewInHeadlessChromium) {
  const std::string browser = HeadlessChromium();
  if (browser.empty()) GTEST_SKIP() << "no headless browser (Debian: chromium)";
  const std::string dir = std::filesystem::absolute(TestDir("sf_report_chromium")).string();
  std::filesystem::remove_all(dir);
  ReportOptions options;
  options.render_plots = false;
  SF_ASSERT_OK(WriteReport(PartialSweep(), options, dir));
  std::string page = ReadText(dir + "/explore.html");
  // Errors are recorded from before the page's own script runs.
  const std::string prelude =
      "<script>window.__explorerErrors = [];"
      "addEventListener('error', (e) => __explorerErrors.push(e.message));"
      "const __consoleError = console.error;"
      "console.error = (...a) => { __explorerErrors.push(a.join(' ')); "
      "__consoleError.apply(console, a); };</script>";
  const size_t head = page.find("<head>");
  const size_t body_end = page.rfind("</body>");
  ASSERT_NE(head, std::string::npos);
  ASSERT_NE(body_end, std::string::npos);
  page.insert(body_end,
              absl::StrCat("<script>", ReadText(SF_EXPLORER_BROWSER_CHECK_JS), "</script>"));
  page.insert(head + 6, prelude);
  {
    std::ofstream check(dir + "/check.html");
    check << page;
  }
  const std::string dom = DumpDom(browser, dir + "/check.html", dir);
  // 2 phases x 3 tasks x 3 lengths x 2 axes.
  const size_t result = dom.rfind("<pre id=\"check-result\">");
  ASSERT_NE(result, std::string::npos) << dom.substr(0, 4000);
  EXPECT_THAT(dom.substr(result), ::testing::StartsWith("<pre id=\"check-result\">check ok: 36 "
                                                        "views drawn</pre>"))
      << dom.substr(result, 4000);
}

// Random-weight models score 0 everywhere: no fit is attempted (the logistic likelihood
// has no maximum there), and the reason is given.
TEST(Analyze, ConstantScores_NoFitWithReason) {
  AnalysisInput in = SyntheticSweep();
  for (ResultPoint& p : in.points) {
    for (SampleScore& s : p.samples) s.score = 0.0;
  }
  SF_ASSERT_OK_AND_ASSIGN(AnalysisResults r, Analyze(in, {}));
  ASSERT_EQ(r.fits.size(), 2u);
  for (const PhaseFit& pf : r.fits) {
    EXPECT_FALSE(pf.fit.has_value()) << pf.phase;
    EXPECT_THAT(pf.error, HasSubstr("every sample scores 0")) << pf.phase;
  }
}

// gnuplot runs inside the report folder; a relative folder must work too.
TEST(WriteReport, RelativeOutDir_RendersPlots) {
  const std::filesystem::path abs = TestDir("sf_report_relative");
  std::filesystem::remove_all(abs);
  const std::string rel = std::filesystem::relative(abs, std::filesystem::current_path()).string();
  ASSERT_FALSE(std::filesystem::path(rel).is_absolute());
  AnalysisInput in;
  for (const ResultPoint& p : SyntheticSweep().points) {
    if (p.seq_len == 32768 && p.task == "ruler_niah") in.points.push_back(p);
  }
  SF_ASSERT_OK(WriteReport(in, {}, rel));
  EXPECT_TRUE(std::filesystem::exists(abs / "preserved_prefill.png"));
}

TEST(WriteReport, MissingGnuplotIsFailedPrecondition) {
  ReportOptions options;
  options.gnuplot = "/nonexistent/gnuplot";
  EXPECT_THAT(WriteReport(PartialSweep(), options, TestDir("sf_report_nognuplot")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("gnuplot")));
}

TEST(WriteReport, EmptyAndDenseOnlyInputsStillWriteAPage) {
  for (bool dense_only : {false, true}) {
    AnalysisInput in;
    if (dense_only) {
      for (const ResultPoint& p : SyntheticSweep().points) {
        if (p.is_dense()) in.points.push_back(p);
      }
    }
    const std::string dir = TestDir("sf_report_sparse_input");
    std::filesystem::remove_all(dir);
    SF_ASSERT_OK(WriteReport(in, {}, dir)) << dense_only;
    std::ifstream html_in(dir + "/index.html");
    std::stringstream html;
    html << html_in.rdbuf();
    EXPECT_THAT(html.str(), HasSubstr(dense_only ? "27 result points" : "0 result points"));
  }
}

// A demo-sized sweep: one model, one length, one method. The law drops ln N and ln L,
// and validation says why it cannot hold out an axis with one value.
TEST(WriteReport, SingleModelSingleLengthFitsWhatItCan) {
  AnalysisInput in;
  for (const ResultPoint& p : SyntheticSweep().points) {
    if (p.model == "qwen2.5-7b" && p.seq_len == 32768 &&
        (p.is_dense() || p.method == "block_sparse")) {
      in.points.push_back(p);
    }
  }
  SF_ASSERT_OK_AND_ASSIGN(AnalysisResults r, Analyze(in, {}));
  ASSERT_EQ(r.fits.size(), 1u);
  ASSERT_TRUE(r.fits[0].fit.has_value()) << r.fits[0].error;
  EXPECT_EQ(r.fits[0].fit->dropped, (std::vector<std::string>{"a_lnN", "b_lnL"}));
  EXPECT_LT(std::fabs(r.fits[0].fit->Coefficient("c_lnC") - kC),
            4.0 * r.fits[0].fit->standard_errors.back());
  ASSERT_EQ(r.fits[0].validation.size(), 3u);
  EXPECT_THAT(r.fits[0].validation[0].error, HasSubstr("nothing to hold out"));
  EXPECT_EQ(r.fits[0].validation[2].error, "");  // C has 5 values
  EXPECT_EQ(r.fits[0].validation[2].n_test, 3);
  EXPECT_TRUE(r.critical.empty());
  SF_EXPECT_OK(WriteReport(in, {}, TestDir("sf_report_single")));
}

TEST(Analyze, PointWithoutArchitectureIsInvalidArgument) {
  AnalysisInput in = SyntheticSweep();
  in.points[5].shape = ModelShape{};
  EXPECT_THAT(Analyze(in, {}), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("result point 5 (model 'qwen2.5-7b') has no "
                                                  "architecture")));
}

TEST(Analyze, PointWithoutLengthIsInvalidArgument) {
  AnalysisInput in = SyntheticSweep();
  in.points[3].seq_len = 0;
  EXPECT_THAT(Analyze(in, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("result point 3")));
}

}  // namespace
}  // namespace sf::analysis
