// Runs explore.html's script against a minimal DOM in Node and checks that it draws every
// (phase, task, length, x axis) view with one marker per selected point, that hovering
// a point shows its model, compression, score and n, that toggling a model hides its
// points, and that nothing is logged to console.error. Prints "ok" and exits 0, or
// prints what failed and exits 1.
//   usage: node explorer_check.js explore.html
"use strict";
const fs = require("fs");

const html = fs.readFileSync(process.argv[2], "utf8");
const dataMatch = html.match(/<script id="points" type="application\/json">([\s\S]*?)<\/script>/);
const codeMatch = html.match(/<script>([\s\S]*?)<\/script>/);
if (!dataMatch || !codeMatch) { console.log("page lacks its data or its script"); process.exit(1); }

class Element {
  constructor(tag) {
    this.tagName = tag; this.children = []; this.attrs = {}; this.style = {};
    this.listeners = {}; this.textContent = ""; this.checked = false; this._value = "";
  }
  set innerHTML(v) { this.children = []; this._html = v; }
  get innerHTML() { return this._html || ""; }
  get value() {
    if (this.tagName === "select" && this._value === "" && this.children.length) return this.children[0].value;
    return this._value;
  }
  set value(v) { this._value = v; }
  appendChild(c) { this.children.push(c); return c; }
  setAttribute(k, v) { this.attrs[k] = String(v); }
  getAttribute(k) { return this.attrs[k]; }
  addEventListener(kind, f) { (this.listeners[kind] = this.listeners[kind] || []).push(f); }
  fire(kind, event) { for (const f of this.listeners[kind] || []) f(event || {clientX: 1, clientY: 1}); }
}
const byId = {};
for (const id of ["caveat", "phase", "task", "length", "xaxis", "toggles", "plot", "tip"]) {
  byId[id] = new Element(id === "plot" ? "svg" : ["phase", "task", "length", "xaxis"].includes(id) ? "select" : "div");
}
byId.points = new Element("script");
byId.points.textContent = dataMatch[1];
for (const v of ["compression", "flops"]) {
  const o = new Element("option"); o.value = v; byId.xaxis.appendChild(o);
}
const document = {
  getElementById: (id) => byId[id],
  createElement: (tag) => new Element(tag),
  createElementNS: (ns, tag) => new Element(tag),
  createTextNode: (t) => ({textContent: t}),
};
const errors = [];
const consoleShim = {error: (...a) => errors.push(a.join(" ")), log: () => {}, warn: () => {}};
try {
  new Function("document", "console", codeMatch[1])(document, consoleShim);
} catch (e) {
  console.log("the script threw: " + e.stack);
  process.exit(1);
}
const DATA = JSON.parse(dataMatch[1]);
const failures = [];
const markers = () => byId.plot.children.filter((c) => c.attrs.class === "point");
const options = (id) => byId[id].children.map((o) => o.value);
let views = 0;
for (const phase of options("phase")) {
  for (const task of options("task")) {
    for (const length of options("length")) {
      for (const xaxis of options("xaxis")) {
        for (const [id, v] of [["phase", phase], ["task", task], ["length", length], ["xaxis", xaxis]]) {
          byId[id].value = v;
        }
        byId.xaxis.fire("change");
        const expected = DATA.points.filter((p) => p.task === task && String(p.length) === length &&
          (p.method === "dense" || p.phase === phase) &&
          (xaxis === "compression" ? p.compression : p[xaxis][phase]) > 0).length;
        const drawn = markers().length;
        if (drawn !== expected) failures.push(`${phase}/${task}/${length}/${xaxis}: ${drawn} markers, expected ${expected}`);
        views++;
      }
    }
  }
}
byId.xaxis.value = "compression";
byId.phase.value = options("phase")[0];
byId.task.value = options("task")[0];
byId.length.value = options("length")[0];
byId.xaxis.fire("change");
const first = markers()[0];
if (!first) {
  failures.push("no marker to hover");
} else {
  first.fire("mousemove");
  const tip = byId.tip.innerHTML;
  for (const part of ["<b>", "compression", "score", "(n "]) {
    if (!tip.includes(part)) failures.push(`the tooltip lacks '${part}': ${tip}`);
  }
  if (byId.tip.style.display !== "block") failures.push("the tooltip is not shown");
}
const before = markers().length;
const box = byId.toggles.children[0];
box.children[0].checked = false;
box.children[0].fire("change");
if (!(markers().length < before)) failures.push("hiding the first model hid no point");
if (errors.length) failures.push("console.error: " + errors.join("; "));
if (views === 0) failures.push("no view to draw");
if (failures.length) { console.log(failures.join("\n")); process.exit(1); }
console.log(`ok: ${views} views drawn`);
