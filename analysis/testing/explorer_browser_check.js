// Checks explore.html in a real browser (headless Chromium): appended by the test to a
// copy of the page, after the page's own script, it draws every (phase, task, length,
// x axis) view and counts one laid-out marker per selected point, hovers a point and
// reads the tooltip, hides a model, and collects every error and console.error (the
// test's prelude records those from the page's load on, in window.__explorerErrors).
// It writes one line into <pre id="check-result">: "check ok: N views drawn" or
// "check failed: ..." with what went wrong; `chromium --dump-dom` shows it.
"use strict";
(function () {
  const failures = [];
  const $ = (id) => document.getElementById(id);
  const result = document.createElement("pre");
  result.id = "check-result";
  try {
    const DATA = JSON.parse($("points").textContent);
    const markers = () => [...$("plot").querySelectorAll(".point")];
    const values = (id) => [...$(id).options].map((o) => o.value);
    const set = (id, v) => { $(id).value = v; };
    let views = 0;
    for (const phase of values("phase")) {
      for (const task of values("task")) {
        for (const length of values("length")) {
          for (const xaxis of values("xaxis")) {
            set("phase", phase); set("task", task); set("length", length); set("xaxis", xaxis);
            $("xaxis").dispatchEvent(new Event("change"));
            const expected = DATA.points.filter((p) => p.task === task &&
              String(p.length) === length && (p.method === "dense" || p.phase === phase) &&
              (xaxis === "compression" ? p.compression : p[xaxis][phase]) > 0).length;
            const drawn = markers();
            const view = `${phase}/${task}/${length}/${xaxis}`;
            if (drawn.length !== expected) {
              failures.push(`${view}: ${drawn.length} markers, expected ${expected}`);
            }
            // Laid out inside the plot: a real size and a position within the SVG.
            const box = $("plot").getBoundingClientRect();
            for (const m of drawn) {
              const r = m.getBoundingClientRect();
              if (!(r.width > 0 && r.height > 0 && r.left >= box.left - 8 &&
                    r.right <= box.right + 8 && r.top >= box.top - 8 &&
                    r.bottom <= box.bottom + 8)) {
                failures.push(`${view}: a marker is not laid out inside the plot`);
                break;
              }
            }
            views++;
          }
        }
      }
    }
    set("xaxis", "compression");
    $("xaxis").dispatchEvent(new Event("change"));
    const first = markers()[0];
    if (!first) {
      failures.push("no marker to hover");
    } else {
      const r = first.getBoundingClientRect();
      first.dispatchEvent(new MouseEvent("mousemove",
        {bubbles: true, clientX: r.left + r.width / 2, clientY: r.top + r.height / 2}));
      const tip = $("tip");
      for (const part of ["parameters", "compression", "score", "(n "]) {
        if (!tip.textContent.includes(part)) failures.push(`the tooltip lacks '${part}': ${tip.textContent}`);
      }
      if (getComputedStyle(tip).display === "none") failures.push("the tooltip is not shown");
    }
    const before = markers().length;
    const toggle = $("toggles").querySelector("input[type=checkbox]");
    if (!toggle) {
      failures.push("no toggle");
    } else {
      toggle.click();
      if (!(markers().length < before)) failures.push("hiding the first model hid no point");
      toggle.click();
      if (markers().length !== before) failures.push("showing the model again did not restore its points");
    }
    if (views === 0) failures.push("no view to draw");
    const errors = window.__explorerErrors || ["the error-recording prelude is missing"];
    for (const e of errors) failures.push("error: " + e);
    result.textContent = failures.length ? "check failed: " + failures.join("\n") :
      `check ok: ${views} views drawn`;
  } catch (e) {
    result.textContent = "check failed: the check threw: " + e;
  }
  document.body.appendChild(result);
})();
