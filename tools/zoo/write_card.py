#!/usr/bin/env python3
"""Writes a zoo model's card (README.md in its folder) from the figures the recipe
recorded: train_log.json (written by train.py), and optionally eval.json (eval_hf.py,
transformers on the GPU host) and a dense-score table from the project's own engine
(`sfctl results --format json` of a dense sweep over the zoo).

  write_card.py MODEL_DIR [--hf-eval eval.json] [--scores results.json] [--notes TEXT]

Every number in the card comes from those files; a section without its file says so.
"""

import argparse
import json
import os
import sys

TEMPLATE = """# {name}

A small Llama-architecture model of the Sparse Frontier model zoo, trained from scratch
on samples of the project's own task generators (`sfctl tasks dump`) so that the
sparse-attention study shows real effects on a laptop. Not a general language model: it
knows the prompts of the generated tasks it was trained on (below) and nothing else; it
has never seen the QA tasks.

## Architecture

| field | value |
|---|---|
| parameters | {params} ({params_m:.2f}M, embeddings tied) |
| layers | {layers} |
| hidden / intermediate | {hidden} / {inter} |
| query heads / KV heads / head_dim | {heads} / {kv_heads} / {head_dim} (GQA) |
| vocabulary | {vocab} (byte-level BPE, tools/zoo/train_tokenizer.py; ChatML) |
| positions | RoPE, theta {theta:g}; trained on sequences up to {trained_len} tokens |
| files | config.json, model.safetensors (bf16), generation_config.json, tokenizer.json, tokenizer_config.json |

## Training

Recipe: tools/zoo/ (docs/zoo.md). Data: `sf-tasks-dump` samples (= `sfctl tasks dump
--ids`), sample seeds 2^32 and up (evaluation uses seeds below 2^32: docs/tasks.md), of
the sets {sets} at the lengths {lengths} (a curriculum, shortest first; the run moved
up at {levels}). Loss: the {loss_kind} cross-entropy of the completion
(`<answer>...</answer><|im_end|>`) plus {lm_weight} x that of a random {lm_sample} share
of the prompt tokens.

| field | value |
|---|---|
| device | {device} (torch {torch}) |
| wall-clock time used | {seconds} s of a {budget} s budget ({stop_reason}) |
| steps x batch | {steps} x ~{batch_tokens} tokens ({tokens_m:.1f}M tokens) |
| learning rate | {lr:g} (AdamW, betas 0.9/0.95, weight decay 0.1, warm-up then cosine to 10% over the time budget) |
| seed | {seed} |
| final answer loss | {answer_loss} (mean of the last logged steps) |
| started from | {init} |
| held-out validation | {final_val} |

## Dense scores, the project's engine

{scores}

## Dense scores, transformers on the training host

{hf_eval}

{notes}
"""


def scores_table(path):
    if not path:
        return "Not measured for this card."
    with open(path) as f:
        rows = json.load(f)
    if isinstance(rows, dict):
        rows = rows.get("results", rows.get("rows", []))
    table = {}
    seed = None
    for r in rows:
        if r.get("prefill", "dense") != "dense" or r.get("decode", "dense") != "dense":
            continue
        params = ", ".join(f"{k}={v}" for k, v in sorted(r.get("params", {}).items()))
        label = r["task"] + (f" ({params})" if params else "")
        table.setdefault(label, {})[int(r["length"])] = (r["mean"], r.get("n"), r.get("stderr"))
        seed = r.get("seed", seed)
    if not table:
        return f"No dense rows in {os.path.basename(path)}."
    lengths = sorted({L for t in table.values() for L in t})
    out = ["| task | " + " | ".join(f"{L}" for L in lengths) + " |",
           "|---|" + "---|" * len(lengths)]
    for task in sorted(table):
        cells = []
        for L in lengths:
            v = table[task].get(L)
            se = "" if v is None or v[2] is None else f" ± {v[2]:.3f}"
            cells.append("" if v is None else f"{v[0]:.3f} (n={v[1]}){se}")
        out.append(f"| {task} | " + " | ".join(cells) + " |")
    out.append("")
    out.append(f"Mean task score (samples) ± one standard error, greedy decoding, evaluation seed {seed} "
               "(tools/zoo/dense.yaml; the tasks' own scoring, docs/tasks.md).")
    return "\n".join(out)


def hf_table(path, name):
    if not path:
        return "Not measured for this card."
    with open(path) as f:
        data = json.load(f)
    res = data["results"].get(name)
    if not res or "error" in res:
        return f"Evaluation failed: {res.get('error') if res else 'no entry'}."
    out = [f"transformers {data['transformers']}, torch {data['torch']}, {data['device']}; "
           "held-out samples (seeds disjoint from training's). tf_exact: the whole completion "
           "is the argmax at every position (teacher-forced); found: fraction of expected "
           "answers inside the greedy output's <answer> section (an approximation of the "
           "task metrics).", "",
           "| task@length | samples | tf_exact | token accuracy | found (greedy) |",
           "|---|---|---|---|---|"]
    for key in sorted(k for k in res if isinstance(res[k], dict)):
        r = res[key]
        if "skipped" in r:
            out.append(f"| {key} | not run ({r['skipped']}) | | | |")
            continue
        found = "" if r["generated_answers_found"] is None else f"{r['generated_answers_found']:.3f}"
        out.append(f"| {key} | {r['samples']} | {r['tf_exact']:.3f} | "
                   f"{r['tf_token_accuracy']:.3f} | {found} |")
    out.append("")
    out.append(f"Tokenizer check (transformers' encoding of held-out prompts): "
               f"{res.get('tokenizer_check', 'not run')}.")
    return "\n".join(out)


def init_text(log):
    """Where training started: random weights, or a saved model and how it was trained."""
    prev = log.get("init_log")
    if not log.get("init"):
        return "random initialisation"
    if not prev:
        return "a saved model (its train_log.json was not found)"
    return (f"an earlier run of this recipe: {prev['steps']} steps, {prev['tokens'] / 1e6:.1f}M "
            f"tokens, {prev['seconds']:g} s on {prev['device']}, learning rate "
            f"{prev['learning_rate']:g}, sets {prev['task_weights']}"
            + (f"; it in turn from {init_text(prev)}" if prev.get("init") else ""))


def final_val_text(log):
    """The validation after training, or else the last check during it."""
    final, when = log.get("final_val"), "after training"
    if not final and log.get("val"):
        final, when = log["val"][-1]["scores"], f"at step {log['val'][-1]['step']} (the last check)"
    if not final:
        return "not run"
    return "; ".join(f"{k} {a:.3f} / {e:.3f}" for k, (a, e) in sorted(final.items())) + \
        f" (answer token accuracy / whole-answer exact match, teacher-forced, {when})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--hf-eval")
    ap.add_argument("--scores")
    ap.add_argument("--notes", default="")
    args = ap.parse_args()
    log_path = os.path.join(args.model_dir, "train_log.json")
    if not os.path.exists(log_path):
        sys.exit(f"write_card: {log_path} is missing (train.py writes it)")
    with open(log_path) as f:
        log = json.load(f)
    c = log["config"]
    name = os.path.basename(os.path.normpath(args.model_dir))
    trained_len = max((e["length"] for e in log.get("log", [])), default=0)
    text = TEMPLATE.format(
        name=name, params=log["parameters"], params_m=log["parameters"] / 1e6,
        layers=c["num_hidden_layers"], hidden=c["hidden_size"], inter=c["intermediate_size"],
        heads=c["num_attention_heads"], kv_heads=c["num_key_value_heads"],
        head_dim=c["head_dim"], vocab=c["vocab_size"], theta=c["rope_theta"],
        trained_len=trained_len, lm_weight=log["lm_weight"], device=log["device"],
        torch=log["torch"], seconds=log["seconds"], steps=log["steps"],
        batch_tokens=log["batch_tokens"], tokens_m=log["tokens"] / 1e6,
        lr=log["learning_rate"], seed=log["seed"],
        sets=log.get("task_weights", "(not recorded)"),
        lengths=", ".join(str(L) for L in sorted({e["length"] for e in log.get("levels", [])}))
        or "(not recorded)",
        levels=", ".join(f"{e['length']} from {e['seconds']:g} s" for e in log.get("levels", [])),
        lm_sample=log.get("lm_sample", 1.0), budget=log.get("budget_seconds", log["seconds"]),
        stop_reason=log.get("stop_reason", "time budget"),
        init=init_text(log), final_val=final_val_text(log),
        loss_kind=(f"focal-weighted ((1 - p)^{log['focal']:g}, normalised) mean"
                   if log.get("focal") else "mean"), answer_loss=log["final_answer_loss"],
        scores=scores_table(args.scores), hf_eval=hf_table(args.hf_eval, name),
        notes=args.notes)
    with open(os.path.join(args.model_dir, "README.md"), "w") as f:
        f.write(text.rstrip() + "\n")
    print(f"write_card: {args.model_dir}/README.md")


if __name__ == "__main__":
    main()
