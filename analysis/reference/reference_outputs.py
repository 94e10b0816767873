#!/usr/bin/python3
"""Computes reference outputs for the fixed data sets with scipy and statsmodels.

  /usr/bin/python3 analysis/reference/reference_outputs.py tests/data/analysis

Writes paired_reference.json (scipy.stats.ttest_rel / wilcoxon, one-sided "less";
scipy.stats.t.cdf; scipy.special.betainc) and glm_<name>_reference.json
(statsmodels GLM, Binomial family, var_weights = samples), which analysis_test reads.
The design matrix is built the way analysis/scaling_law.cc builds it: an intercept,
one dummy per task but the first in sorted order, ln N, ln L, ln C.
"""
import json
import sys

import numpy as np
import pandas as pd
import scipy
import scipy.special
import scipy.stats
import statsmodels
import statsmodels.api as sm


def wilcoxon_method(t, b):
    # The rule analysis/stats.cc documents: exact when n <= 50 with no zero and no
    # tied absolute differences, else the normal approximation.
    d = np.asarray(t) - np.asarray(b)
    nz = d[d != 0]
    tied = len(np.unique(np.abs(nz))) < len(nz)
    return "exact" if len(d) <= 50 and len(nz) == len(d) and not tied else "approx"


def paired(path):
    data = json.load(open(f"{path}/paired_cases.json"))
    out = {"scipy": scipy.__version__, "cases": [], "t_cdf": [], "betainc": []}
    for case in data["cases"]:
        t, b = np.array(case["treatment"]), np.array(case["baseline"])
        tt = scipy.stats.ttest_rel(t, b, alternative="less")
        method = wilcoxon_method(t, b)
        w = scipy.stats.wilcoxon(t, b, zero_method="wilcox", correction=False,
                                 alternative="less", method=method)
        out["cases"].append({"name": case["name"], "t_statistic": float(tt.statistic),
                             "t_p": float(tt.pvalue), "wilcoxon_statistic": float(w.statistic),
                             "wilcoxon_p": float(w.pvalue), "wilcoxon_method": method})
    for p in data["t_cdf_points"]:
        out["t_cdf"].append({"t": p["t"], "dof": p["dof"],
                             "cdf": float(scipy.stats.t.cdf(p["t"], p["dof"]))})
    for a, b_, x in [(0.5, 0.5, 0.3), (2.0, 3.0, 0.4), (10.0, 0.5, 0.95), (50.0, 40.0, 0.55),
                     (0.1, 8.0, 0.01), (3.5, 0.5, 0.999)]:
        out["betainc"].append({"a": a, "b": b_, "x": x,
                               "value": float(scipy.special.betainc(a, b_, x))})
    json.dump(out, open(f"{path}/paired_reference.json", "w"), indent=1)


def glm(path, name):
    df = pd.read_csv(f"{path}/glm_{name}.csv")
    tasks = sorted(df.task.unique())
    x = pd.DataFrame({"eps": 1.0}, index=df.index)
    for t in tasks[1:]:
        x[f"delta[{t}]"] = (df.task == t).astype(float)
    x["a_lnN"] = np.log(df.N)
    x["b_lnL"] = np.log(df.L)
    x["c_lnC"] = np.log(df.C)
    res = sm.GLM(df.score, x, family=sm.families.Binomial(), var_weights=df.n).fit(tol=1e-12)
    out = {"statsmodels": statsmodels.__version__, "names": list(x.columns),
           "coefficients": res.params.tolist(), "standard_errors": res.bse.tolist(),
           "deviance": float(res.deviance)}
    json.dump(out, open(f"{path}/glm_{name}_reference.json", "w"), indent=1)


def main():
    path = sys.argv[1]
    paired(path)
    glm(path, "binomial")
    glm(path, "fractional")


if __name__ == "__main__":
    main()
