#!/usr/bin/env python3
"""Splits the results of a dense sweep over the zoo (`sfctl run SPEC --format json`,
saved to a file) into models/zoo/<model>/scores.json, the figures the model cards and
the CI test (tests/zoo_score_test.cc) read.

  collect_scores.py RESULTS.json --spec SPEC --zoo models/zoo [--ci zoo-l:ruler_niah:4096]
                    [--source "how the sweep ran"]

The results rows carry no task parameters, sample counts or generation limits; they are
read from SPEC (every task may appear once). --ci marks the row the CI test reruns: it
expands SPEC (a path relative to the repository root, as given here) and runs the job
whose key the row records.
"""

import argparse
import json
import os
import sys


def spec_tasks(path):
    """task name -> (samples, params) and max_new_tokens, from a sweep spec. A small YAML
    reader for the flow-mapping task lines this project's examples use."""
    tasks, max_new = {}, None
    with open(path) as f:
        for line in f:
            s = line.strip()
            if s.startswith("- {name:") and "samples" in s:
                body = s[s.index("{") + 1: s.rindex("}")]
                fields = dict(part.split(":", 1) for part in body.split(","))
                fields = {k.strip(): v.strip() for k, v in fields.items()}
                name = fields.pop("name")
                samples = int(fields.pop("samples"))
                params = {k: int(v) if v.lstrip("-").isdigit() else v for k, v in fields.items()}
                if name in tasks:
                    sys.exit(f"collect_scores: task {name} appears twice in {path}; "
                             "results rows could not tell them apart")
                tasks[name] = (samples, params)
            if s.startswith("generation:") and "max_new_tokens" in s:
                max_new = int(s.split("max_new_tokens:")[1].split(",")[0].split("}")[0])
    return tasks, max_new


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results")
    ap.add_argument("--spec", required=True)
    ap.add_argument("--zoo", required=True)
    ap.add_argument("--ci", default="", help="model:task:length of the row the CI test reruns")
    ap.add_argument("--source", default="")
    args = ap.parse_args()
    with open(args.results) as f:
        text = f.read()
    # sfctl run prints status and progress lines (with '[###...]' bars) before the array.
    start = next((i for i, line in enumerate(text.splitlines(keepends=True))
                  if line.rstrip() == "["), None)
    if start is None:
        sys.exit(f"collect_scores: no JSON array in {args.results} "
                 "(save the output of `sfctl run SPEC --format json`)")
    rows = json.loads("".join(text.splitlines(keepends=True)[start:]))
    tasks, max_new = spec_tasks(args.spec)
    per_model = {}
    for r in rows:
        if r["prefill"] != "dense" or r["decode"] != "dense":
            continue
        samples, params = tasks.get(r["task"], (r["n"], {}))
        row = {"key": r["key"], "task": r["task"], "params": params, "length": r["length"], "seed": r["seed"],
               "samples": samples, "n": r["n"], "max_new_tokens": max_new,
               "mean": r["mean"], "stderr": r["stderr"], "metric": r["metric"],
               "wall_seconds": round(r["wall_seconds"], 1), "worker": r["worker"]}
        if args.ci == f"{r['model']}:{r['task']}:{r['length']}":
            row["ci"] = True
        per_model.setdefault(r["model"], []).append(row)
    for model, model_rows in per_model.items():
        folder = os.path.join(args.zoo, model)
        if not os.path.isdir(folder):
            sys.exit(f"collect_scores: {folder} does not exist")
        model_rows.sort(key=lambda x: (x["task"], x["length"]))
        with open(os.path.join(folder, "scores.json"), "w") as f:
            json.dump({"source": args.source, "spec": args.spec,
                       "rows": model_rows}, f, indent=1)
            f.write("\n")
        print(f"collect_scores: {folder}/scores.json ({len(model_rows)} rows)")


if __name__ == "__main__":
    main()
