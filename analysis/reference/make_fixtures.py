#!/usr/bin/python3
"""Writes the fixed data sets of tests/data/analysis/ (deterministic: numpy seed 7).

Run once; the outputs are committed so CI needs no Python:
  /usr/bin/python3 analysis/reference/make_fixtures.py tests/data/analysis
then compute the reference outputs with reference_outputs.py.
"""
import json
import math
import sys

import numpy as np


def paired_cases(rng):
    cases = []
    # Continuous, small, untied: Wilcoxon exact.
    b = rng.uniform(0.3, 0.9, 12)
    cases.append({"name": "continuous_n12", "baseline": b.tolist(),
                  "treatment": (b - 0.05 + rng.normal(0, 0.08, 12)).tolist()})
    b = rng.uniform(0.2, 0.9, 40)
    cases.append({"name": "continuous_n40_no_effect", "baseline": b.tolist(),
                  "treatment": (b + rng.normal(0, 0.1, 40)).tolist()})
    # Large continuous: normal approximation.
    b = rng.uniform(0.0, 1.0, 80)
    cases.append({"name": "continuous_n80", "baseline": b.tolist(),
                  "treatment": (b - 0.03 + rng.normal(0, 0.1, 80)).tolist()})
    # Accuracy scores (0/1): many zeros and ties.
    b = (rng.uniform(size=100) < 0.7).astype(float)
    t = b.copy()
    flip = rng.uniform(size=100)
    t[(b == 1) & (flip < 0.15)] = 0.0
    t[(b == 0) & (flip < 0.05)] = 1.0
    cases.append({"name": "binary_n100", "baseline": b.tolist(), "treatment": t.tolist()})
    # F1-like scores with zeros and ties, n = 30.
    b = np.round(rng.uniform(0, 1, 30) * 4) / 4
    t = np.clip(b - np.round(rng.normal(0.05, 0.2, 30) * 4) / 4, 0, 1)
    cases.append({"name": "quarter_scores_n30", "baseline": b.tolist(), "treatment": t.tolist()})
    return cases


def dist_points():
    pts = []
    for dof in [1.0, 2.5, 7.0, 29.0, 99.0, 1000.0]:
        for t in [-8.0, -3.1, -1.7, -0.4, 0.0, 0.9, 2.2, 5.0]:
            pts.append({"t": t, "dof": dof})
    return pts


def glm_grid(rng, path, n_samples_fn, fractional):
    tasks = ["qa_squad", "ruler_niah", "story_retrieval"]
    delta = {"qa_squad": 0.0, "ruler_niah": 0.8, "story_retrieval": -0.5}
    models = [7.6e9, 14.8e9, 32.8e9, 72.7e9]
    lengths = [16384, 32768, 65536, 131072]
    comps = [1, 2, 5, 10, 20]
    eps, a, b, c = 2.0, 0.35, -0.6, -0.45
    lines = ["task,N,L,C,score,n"]
    for task in tasks:
        for n_params in models:
            for length in lengths:
                for comp in comps:
                    eta = (eps + delta[task] + a * math.log(n_params / 1e9) - a * 0
                           + b * math.log(length / 16384) + c * math.log(comp))
                    p = 1 / (1 + math.exp(-eta))
                    n = n_samples_fn()
                    if fractional:
                        score = float(np.clip(p + rng.normal(0, 0.08), 0, 1))
                    else:
                        score = rng.binomial(n, p) / n
                    lines.append(f"{task},{n_params:.6g},{length},{comp},{score:.10g},{n}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(7)
    with open(f"{out}/paired_cases.json", "w") as f:
        json.dump({"cases": paired_cases(rng), "t_cdf_points": dist_points()}, f, indent=1)
    glm_grid(rng, f"{out}/glm_binomial.csv", lambda: 100, False)
    glm_grid(rng, f"{out}/glm_fractional.csv", lambda: int(rng.integers(20, 120)), True)


if __name__ == "__main__":
    main()
