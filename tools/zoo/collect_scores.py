#!/usr/bin/env python3
"""Splits the results of a dense sweep over the zoo (`sfctl run SPEC --format json`,
saved to a file) into models/zoo/<model>/scores.json, the figures the model cards and
the CI test (tests/zoo_score_test.cc) read.

  collect_scores.py RESULTS.json --spec SPEC --zoo models/zoo
                    [--ci zoo-l:ruler_niah/q1:4096] [--sfctl build/cli/sfctl]
                    [--source "how the sweep ran"]

The results rows carry no task parameters, sample counts or generation limits; they are
read from SPEC, whose task lines are one flow mapping each. A task may appear on several
lines with different parameters (ruler_niah with num_queries 1 and 4): each line is
expanded on its own (`sfctl validate --list --format json`) and a row belongs to the
line whose jobs hold its key. --ci marks the row the CI test reruns (model:label:length,
the label being the task plus /qN for ruler_niah with num_queries N != 4): it expands
SPEC (a path relative to the repository root, as given here) and runs the job whose key
the row records.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile


def spec_tasks(path):
    """The task lines of a sweep spec, as (line, name, samples, params), and its
    max_new_tokens. A small YAML reader for the flow-mapping task lines this project's
    examples use."""
    tasks, max_new = [], None
    with open(path) as f:
        for line in f:
            s = line.strip()
            if s.startswith("- {name:") and "samples" in s:
                body = s[s.index("{") + 1: s.rindex("}")]
                if "[" in body:
                    sys.exit(f"collect_scores: {path}: '{s}' has a list; give each variant "
                             "its own task line")
                fields = dict(part.split(":", 1) for part in body.split(","))
                fields = {k.strip(): v.strip() for k, v in fields.items()}
                name = fields.pop("name")
                samples = int(fields.pop("samples"))
                params = {k: int(v) if v.lstrip("-").isdigit() else v for k, v in fields.items()}
                tasks.append((line, name, samples, params))
            if s.startswith("generation:") and "max_new_tokens" in s:
                max_new = int(s.split("max_new_tokens:")[1].split(",")[0].split("}")[0])
    return tasks, max_new


def task_label(name, params):
    """ruler_niah with N != 4 keys is ruler_niah/qN (as train.py names its sets)."""
    queries = params.get("num_queries", 4)
    return f"{name}/q{queries}" if name == "ruler_niah" and queries != 4 else name


def keys_of_lines(spec_path, tasks, sfctl):
    """job key -> index into tasks: each task line expanded alone by `sfctl validate`."""
    with open(spec_path) as f:
        text = f.read()
    task_lines = [t[0] for t in tasks]
    owner = {}
    for i, keep in enumerate(task_lines):
        lines = [l for l in text.splitlines(keepends=True) if l not in task_lines or l == keep]
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as tmp:
            tmp.write("".join(lines))
        try:
            out = subprocess.run([sfctl, "validate", tmp.name, "--list", "--format", "json"],
                                 capture_output=True, text=True, check=False)
        except OSError as e:
            sys.exit(f"collect_scores: cannot run {sfctl} ({e}); pass --sfctl")
        finally:
            os.unlink(tmp.name)
        if out.returncode != 0:
            sys.exit(f"collect_scores: {sfctl} validate failed on {spec_path} with only "
                     f"task line {i + 1}:\n{out.stdout}{out.stderr}")
        for job in json.loads(out.stdout)["job_list"]:
            owner[job["key"]] = i
    return owner


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results")
    ap.add_argument("--spec", required=True)
    ap.add_argument("--zoo", required=True)
    ap.add_argument("--ci", default="",
                    help="model:label:length of the row the CI test reruns (e.g. zoo-l:ruler_niah/q1:2048)")
    ap.add_argument("--sfctl", default="build/cli/sfctl", help="sfctl, to expand SPEC")
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
    owner = keys_of_lines(args.spec, tasks, args.sfctl)
    per_model = {}
    for r in rows:
        if r["prefill"] != "dense" or r["decode"] != "dense":
            continue
        line = next((i for key, i in owner.items() if key.startswith(r["key"])), None)
        if line is None:
            sys.exit(f"collect_scores: row {r['key']} ({r['model']} {r['task']} {r['length']}) "
                     f"is no job of {args.spec}; was RESULTS made from it?")
        _, name, samples, params = tasks[line]
        label = task_label(name, params)
        row = {"key": r["key"], "task": r["task"], "label": label, "params": params,
               "length": r["length"], "seed": r["seed"],
               "samples": samples, "n": r["n"], "max_new_tokens": max_new,
               "mean": r["mean"], "stderr": r["stderr"], "metric": r["metric"],
               "wall_seconds": round(r["wall_seconds"], 1), "worker": r["worker"]}
        if args.ci == f"{r['model']}:{label}:{r['length']}":
            row["ci"] = True
        per_model.setdefault(r["model"], []).append(row)
    for model, model_rows in per_model.items():
        folder = os.path.join(args.zoo, model)
        if not os.path.isdir(folder):
            sys.exit(f"collect_scores: {folder} does not exist")
        model_rows.sort(key=lambda x: (x["label"], x["length"]))
        with open(os.path.join(folder, "scores.json"), "w") as f:
            json.dump({"source": args.source, "spec": args.spec,
                       "rows": model_rows}, f, indent=1)
            f.write("\n")
        print(f"collect_scores: {folder}/scores.json ({len(model_rows)} rows)")


if __name__ == "__main__":
    main()
