#include "analysis/explorer.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "analysis/isoflops.h"
#include "nlohmann/json.hpp"

namespace sf::analysis {
namespace {

// The page: controls, one SVG, a tooltip; the script draws from the embedded data.
constexpr char kPage[] = R"html(<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>@TITLE@: explore</title>
<style>
body{font-family:sans-serif;margin:16px;color:#222}
.warn{background:#fff3cd;border:1px solid #e0c060;padding:6px 10px}
#controls{display:flex;flex-wrap:wrap;gap:14px;align-items:center;margin:10px 0}
#controls label{white-space:nowrap}
#toggles{display:flex;flex-wrap:wrap;gap:10px;margin:6px 0}
#tip{position:fixed;pointer-events:none;background:#fff;border:1px solid #888;padding:4px 8px;
 font-size:12px;display:none;box-shadow:2px 2px 4px rgba(0,0,0,.2)}
svg text{font-size:11px}
</style></head><body>
<h1>@TITLE@: explore the points</h1>
<p id="caveat" class="warn" style="display:none"></p>
<p>Every scored point of the sweep. Hover a point to read it; click a method or model to
hide or show it. <a href="index.html">Back to the report</a>.</p>
<div id="controls">
<label>phase <select id="phase"></select></label>
<label>task <select id="task"></select></label>
<label>length <select id="length"></select></label>
<label>x axis <select id="xaxis"><option value="compression">compression</option>
<option value="flops">FLOPs per sample</option></select></label>
</div>
<div id="toggles"></div>
<svg id="plot" width="900" height="520" role="img"></svg>
<div id="tip"></div>
<script id="points" type="application/json">@DATA@</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("points").textContent);
const COLORS = ["#1b9e77","#d95f02","#7570b3","#e7298a","#66a61e","#e6ab02","#a6761d",
  "#666666","#1f78b4","#b15928","#6a3d9a","#fb9a99"];
const hidden = new Set();
const $ = (id) => document.getElementById(id);
const uniq = (xs) => [...new Set(xs)];
const byNumber = (a, b) => a - b;
function fill(select, values, label) {
  select.innerHTML = "";
  for (const v of values) {
    const o = document.createElement("option");
    o.value = String(v); o.textContent = label ? label(v) : String(v);
    select.appendChild(o);
  }
}
function lengthLabel(l) { return l % 1024 === 0 ? (l / 1024) + "K" : String(l); }
function svg(tag, attrs, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
// The x value of `p` on `axis` in `phase`: its nominal compression, FLOPs or seconds.
function xValue(p, axis, phase) { return axis === "compression" ? p.compression : p[axis][phase]; }
const AXIS_LABEL = {compression: "compression (nominal, log scale; 1 = dense)",
  flops: "FLOPs per sample (PHASE, log scale)",
  seconds: `seconds per sample (PHASE, on ${DATA.time_device}, log scale)`};
function fmt(x) { return x >= 1e4 ? x.toExponential(2) : String(+x.toPrecision(4)); }
const models = uniq(DATA.points.map((p) => p.model))
  .sort((a, b) => DATA.points.find((p) => p.model === a).params -
                  DATA.points.find((p) => p.model === b).params);
const methods = uniq(DATA.points.filter((p) => p.method !== "dense").map((p) => p.method)).sort();
const phases = uniq(DATA.points.filter((p) => p.phase).map((p) => p.phase)).sort();
function color(model) { return COLORS[models.indexOf(model) % COLORS.length]; }
function marker(method, x, y, c) {
  if (method === "dense") {
    return svg("path", {d: `M${x},${y-7}L${x+2},${y-2}L${x+7},${y-2}L${x+3},${y+1}L${x+5},${y+6}` +
      `L${x},${y+3}L${x-5},${y+6}L${x-3},${y+1}L${x-7},${y-2}L${x-2},${y-2}Z`, fill: c});
  }
  const i = methods.indexOf(method) % 4;
  if (i === 0) return svg("circle", {cx: x, cy: y, r: 4.5, fill: "white", stroke: c, "stroke-width": 2});
  if (i === 1) return svg("rect", {x: x-4, y: y-4, width: 8, height: 8, fill: "white", stroke: c, "stroke-width": 2});
  if (i === 2) return svg("path", {d: `M${x},${y-5}L${x+5},${y+4}L${x-5},${y+4}Z`, fill: "white", stroke: c, "stroke-width": 2});
  return svg("path", {d: `M${x},${y-5}L${x+5},${y}L${x},${y+5}L${x-5},${y}Z`, fill: "white", stroke: c, "stroke-width": 2});
}
function toggles() {
  const box = $("toggles");
  box.innerHTML = "";
  for (const name of models.concat(["dense"], methods)) {
    const l = document.createElement("label");
    const c = document.createElement("input");
    c.type = "checkbox"; c.checked = !hidden.has(name);
    c.addEventListener("change", () => { if (c.checked) hidden.delete(name); else hidden.add(name); draw(); });
    l.appendChild(c);
    l.appendChild(document.createTextNode(" " + name));
    if (models.includes(name)) l.style.color = color(name);
    box.appendChild(l);
  }
}
function selected() {
  const phase = $("phase").value, task = $("task").value, len = Number($("length").value);
  return DATA.points.filter((p) => p.task === task && p.length === len &&
    (p.method === "dense" || p.phase === phase) && !hidden.has(p.model) && !hidden.has(p.method));
}
function draw() {
  const plot = $("plot");
  plot.innerHTML = "";
  const W = 900, H = 520, L = 70, R = 20, T = 20, B = 50;
  const axis = $("xaxis").value;
  const phase = $("phase").value;
  const pts = selected().map((p) => ({p, x: xValue(p, axis, phase)})).filter((q) => q.x > 0);
  if (pts.length === 0) {
    plot.appendChild(svg("text", {x: W / 2, y: H / 2, "text-anchor": "middle"}, "no points for this choice"));
    return;
  }
  const xs = pts.map((q) => Math.log(q.x));
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (x1 - x0 < 1e-9) { x0 -= 0.5; x1 += 0.5; }
  const pad = (x1 - x0) * 0.06; x0 -= pad; x1 += pad;
  const X = (v) => L + (Math.log(v) - x0) / (x1 - x0) * (W - L - R);
  const Y = (s) => T + (1 - s) * (H - T - B);
  plot.appendChild(svg("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#444"}));
  plot.appendChild(svg("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#444"}));
  for (let s = 0; s <= 1.0001; s += 0.25) {
    plot.appendChild(svg("line", {x1: L, y1: Y(s), x2: W - R, y2: Y(s), stroke: "#eee"}));
    plot.appendChild(svg("text", {x: L - 6, y: Y(s) + 4, "text-anchor": "end"}, s.toFixed(2)));
  }
  const ticks = uniq(pts.map((q) => q.x)).sort(byNumber);
  const step = Math.max(1, Math.ceil(ticks.length / 8));
  ticks.filter((_, i) => i % step === 0).forEach((v) =>
    plot.appendChild(svg("text", {x: X(v), y: H - B + 16, "text-anchor": "middle"}, fmt(v))));
  plot.appendChild(svg("text", {x: (L + W - R) / 2, y: H - 10, "text-anchor": "middle"},
    AXIS_LABEL[axis].replace("PHASE", phase)));
  plot.appendChild(svg("text", {x: 16, y: (T + H - B) / 2, transform: `rotate(-90 16 ${(T + H - B) / 2})`,
    "text-anchor": "middle"}, "mean score"));
  for (const model of models) {
    const dense = pts.filter((q) => q.p.model === model && q.p.method === "dense");
    for (const method of methods) {
      const line = dense.concat(pts.filter((q) => q.p.model === model && q.p.method === method))
        .sort((a, b) => a.p.compression - b.p.compression);
      if (line.length < 2) continue;
      plot.appendChild(svg("polyline", {points: line.map((q) => `${X(q.x)},${Y(q.p.mean)}`).join(" "),
        fill: "none", stroke: color(model), "stroke-width": 1.2, opacity: 0.7}));
    }
  }
  const tip = $("tip");
  for (const q of pts) {
    const x = X(q.x), y = Y(q.p.mean), c = color(q.p.model);
    if (q.p.stderr > 0) {
      plot.appendChild(svg("line", {x1: x, y1: Y(Math.min(1, q.p.mean + q.p.stderr)), x2: x,
        y2: Y(Math.max(0, q.p.mean - q.p.stderr)), stroke: c, "stroke-width": 1}));
    }
    const m = marker(q.p.method, x, y, c);
    m.setAttribute("class", "point");
    m.addEventListener("mousemove", (e) => {
      const p = q.p;
      tip.innerHTML = `<b>${p.model}</b> (${fmt(p.params)} parameters)<br>${p.method}` +
        (p.phase ? ` (${p.phase})` : "") + `<br>compression ${fmt(p.compression)}` +
        (p.measured_compression > 0 ? ` (measured ${fmt(p.measured_compression)})` : "") +
        `<br>score ${p.mean.toFixed(3)} &plusmn; ${p.stderr.toFixed(3)} (n ${p.n})` +
        `<br>FLOPs per sample ${fmt(p.flops[phase] || 0)}` +
        (p.seconds[phase] > 0 ? `<br>${fmt(p.seconds[phase])} s per sample` : "");
      tip.style.left = (e.clientX + 12) + "px"; tip.style.top = (e.clientY + 12) + "px";
      tip.style.display = "block";
    });
    m.addEventListener("mouseleave", () => { tip.style.display = "none"; });
    plot.appendChild(m);
  }
  plot.setAttribute("data-points", String(pts.length));
}
function init() {
  if (DATA.caveat) { $("caveat").textContent = "Caveat: " + DATA.caveat; $("caveat").style.display = ""; }
  fill($("phase"), phases.length ? phases : ["prefill"]);
  fill($("task"), uniq(DATA.points.map((p) => p.task)).sort());
  fill($("length"), uniq(DATA.points.map((p) => p.length)).sort(byNumber), lengthLabel);
  if (DATA.points.some((p) => p.seconds.prefill > 0 || p.seconds.decode > 0)) {
    const o = document.createElement("option");
    o.value = "seconds"; o.textContent = `seconds per sample (${DATA.time_device})`;
    $("xaxis").appendChild(o);
  }
  for (const id of ["phase", "task", "length", "xaxis"]) $(id).addEventListener("change", draw);
  toggles();
  draw();
}
init();
</script></body></html>
)html";

// JSON safe inside a <script> element: "</" cannot end it early.
std::string ScriptSafe(const std::string& json) {
  return absl::StrReplaceAll(json, {{"</", "<\\/"}});
}

std::string HtmlText(const std::string& s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}});
}

}  // namespace

std::string ExplorerDataJson(const AnalysisInput& input, const ReportOptions& options,
                             const std::string& time_device) {
  nlohmann::ordered_json points = nlohmann::ordered_json::array();
  for (const ResultPoint& p : input.points) {
    if (p.samples.empty()) continue;
    const bool timed = !time_device.empty() && p.device == time_device;
    points.push_back({{"model", p.model},
                      {"params", p.Params()},
                      {"task", p.task},
                      {"length", p.seq_len},
                      {"method", p.method},
                      {"phase", p.is_dense() ? "" : p.phase},
                      {"compression", p.nominal_compression},
                      {"measured_compression", p.measured_compression},
                      {"mean", p.MeanScore()},
                      {"stderr", p.StandardErrorOfMean()},
                      {"n", p.samples.size()},
                      {"flops",
                       {{"prefill", IsoFlopsCost(p, "prefill", options.flops)},
                        {"decode", IsoFlopsCost(p, "decode", options.flops)}}},
                      {"seconds",
                       {{"prefill", timed ? p.prefill_seconds : 0.0},
                        {"decode", timed ? p.decode_seconds : 0.0}}}});
  }
  nlohmann::ordered_json data = {
      {"caveat", input.caveat}, {"time_device", time_device}, {"points", std::move(points)}};
  return data.dump();
}

absl::Status WriteExplorer(const AnalysisInput& input, const ReportOptions& options,
                           const std::string& time_device, const std::string& out_dir) {
  const std::string page = absl::StrReplaceAll(
      kPage, {{"@TITLE@", HtmlText(options.title)},
              {"@DATA@", ScriptSafe(ExplorerDataJson(input, options, time_device))}});
  const std::filesystem::path path = std::filesystem::path(out_dir) / "explore.html";
  std::ofstream out(path);
  out << page;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

}  // namespace sf::analysis
