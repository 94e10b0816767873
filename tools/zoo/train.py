#!/usr/bin/env python3
"""Trains the zoo: Llama-architecture models of several sizes on task samples dumped by
`sfctl tasks dump --ids` (or sf-tasks-dump), each for a wall-clock budget, and saves
each in Hugging Face format.

  train.py --data DIR --tokenizer DIR --out DIR [--val DIR] [--sizes zoo-l:300,zoo-s:90]

DIR (data, val) holds <task>-<length>-*.jsonl files with input_ids and completion_ids.
A sample's set is its task, with "/qN" for ruler_niah with N != 4 keys (ruler_niah/q1).

A batch holds about --batch-tokens tokens of one length, and at least --min-rows samples.
Loss: the mean cross-entropy of the completion tokens (the answer and the end-of-turn
token) plus --lm-weight times the mean cross-entropy of a random --lm-sample share of
the prompt tokens (a small language-modelling share of the haystack text). Logits are
computed at those positions only.

Curriculum: the dumps' lengths are levels, shortest first. At level k a batch is of the
level's length with probability --current-share, else of a shorter level. The run moves
up a level when the held-out (--val) teacher-forced exact match of --advance-set at the
level's length reaches --advance-at, or at the latest when the time spent reaches the
level's --level-caps fraction of the budget. Every --val-every steps the --val sets are
scored (answer token accuracy and whole-answer exact match, teacher-forced); a size stops
early once --advance-set at the longest length scores --stop-at twice in a row, and
hands the time it did not use to the next size. The learning rate warms up, then decays
by the fraction of the budget spent (cosine to 10%). Needs torch and numpy only.

Writes OUT/<size>/ (config.json, model.safetensors in bf16, generation_config.json,
tokenizer.json, tokenizer_config.json, train_log.json) and prints one line per size.
"""

import argparse
import glob
import json
import math
import multiprocessing
import os
import random
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zoo_model  # noqa: E402

# Share of draws among the sets a length has; sets not named here weigh 1.
TASK_WEIGHTS = "ruler_niah/q1:6,ruler_niah:2,ruler_vt:1"
LEARNING_RATE = {"zoo-xs": 3e-3, "zoo-s": 2.5e-3, "zoo-m": 2e-3, "zoo-l": 1.5e-3}
SAVE_MARGIN_S = 8  # time kept before --deadline to save a model


def set_name(sample):
    """The set a dumped sample belongs to: its task, plus /qN for NIAH with N != 4 keys."""
    queries = str(sample.get("params", {}).get("num_queries", "4"))
    if sample["task"] == "ruler_niah" and queries != "4":
        return f"ruler_niah/q{queries}"
    return sample["task"]


def parse_file(path):
    """(set, length, [(tokens int32, prompt_len)]) of one dump file."""
    out = []
    name = length = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            s = json.loads(line)
            name, length = set_name(s), s["length"]
            ids = s["input_ids"] + s["completion_ids"]
            out.append((np.asarray(ids, dtype=np.int32), len(s["input_ids"])))
    return name, length, out


def load_data(data_dir, workers):
    """{length: {set: [(tokens, prompt_len)]}} of every .jsonl in data_dir."""
    paths = sorted(glob.glob(os.path.join(data_dir, "*.jsonl")))
    if not paths:
        sys.exit(f"train: no .jsonl files in {data_dir}; dump samples with `sfctl tasks dump --ids`")
    with multiprocessing.Pool(max(1, min(workers, len(paths)))) as pool:
        parsed = pool.map(parse_file, paths)
    by_length = {}
    for name, length, samples in parsed:
        if name is None:
            continue
        by_length.setdefault(length, {}).setdefault(name, []).extend(samples)
    return by_length


def parse_weights(text):
    weights = {}
    for item in filter(None, text.split(",")):
        name, _, w = item.partition(":")
        try:
            weights[name] = float(w)
        except ValueError:
            sys.exit(f"--task-weights: '{item}' is not set:weight (e.g. ruler_niah/q1:6)")
    return weights


class Curriculum:
    """Which length to draw from: levels shortest first, moved up by held-out scores or
    by time caps (fractions of the budget)."""

    def __init__(self, lengths, caps, current_share, threshold):
        self.levels = sorted(lengths)
        self.caps = caps
        self.current_share = current_share
        self.threshold = threshold
        self.level = 0

    @property
    def length(self):
        return self.levels[self.level]

    @property
    def last(self):
        return self.level == len(self.levels) - 1

    def maybe_advance(self, progress, exact):
        """Moves up one level if `exact` (the advance set's score at this level's
        length, or None) is high enough or the level's time cap has passed."""
        if self.last:
            return False
        cap = self.caps[self.level] if self.level < len(self.caps) else 1.0
        if (exact is not None and exact >= self.threshold) or progress >= cap:
            self.level += 1
            return True
        return False

    def draw(self, rng):
        if self.level == 0 or rng.random() < self.current_share:
            return self.length
        return rng.choice(self.levels[: self.level])


class Sampler:
    """Draws batches of about `tokens` tokens of one length, sets weighted."""

    def __init__(self, by_length, tokens, min_rows, weights, rng):
        self.by_length = by_length
        self.tokens = tokens
        self.min_rows = min_rows
        self.weights = weights
        self.rng = rng

    def batch(self, length):
        sets = sorted(self.by_length[length])
        weights = [self.weights.get(s, 1.0) for s in sets]
        count = max(self.min_rows, self.tokens // length)
        chosen = []
        for _ in range(count):
            name = self.rng.choices(sets, weights)[0]
            chosen.append(self.rng.choice(self.by_length[length][name]))
        return chosen


def to_batch(samples, pad_id, lm_sample, rng, device):
    """Inputs (B, T), and for the positions the loss uses (every answer position and a
    random `lm_sample` share of the prompt's): their flat indices, targets and whether
    each is an answer position."""
    width = max(len(t) for t, _ in samples) - 1
    width = (width + 127) // 128 * 128
    ids = np.full((len(samples), width + 1), pad_id, dtype=np.int64)
    flat, answer = [], []
    for i, (tokens, prompt_len) in enumerate(samples):
        ids[i, : len(tokens)] = tokens
        # position j predicts token j + 1; the answer starts at prompt_len
        ans = np.arange(prompt_len - 1, len(tokens) - 1)
        if lm_sample > 0:
            keep = rng.random(prompt_len - 1) < lm_sample
            lm = np.nonzero(keep)[0]
            flat.append(i * width + lm)
            answer.append(np.zeros(len(lm), dtype=bool))
        flat.append(i * width + ans)
        answer.append(np.ones(len(ans), dtype=bool))
    flat = np.concatenate(flat)
    targets = ids[:, 1:].reshape(-1)[flat]
    to = lambda a: torch.from_numpy(a).to(device, non_blocking=True)  # noqa: E731
    return to(ids[:, :-1]), to(flat), to(targets), to(np.concatenate(answer))


def selected_logits(model, x, flat):
    h = model.hidden(x)
    return model.logits(h.reshape(-1, h.shape[-1]).index_select(0, flat)).float()


@torch.no_grad()
def validate(model, val, pad_id, device, autocast, batch_tokens=65536):
    """{set@length: (answer token accuracy, whole-answer exact match)}, teacher-forced."""
    model.eval()
    out = {}
    for length in sorted(val):
        for name in sorted(val[length]):
            samples = val[length][name]
            rows = max(1, batch_tokens // (length + 256))
            right = total = exact = 0
            for b in range(0, len(samples), rows):
                chunk = samples[b : b + rows]
                x, flat, targets, answer = to_batch(chunk, pad_id, 0.0, None, device)
                with autocast:
                    pred = selected_logits(model, x, flat).argmax(-1)
                ok = (pred == targets).cpu().numpy()
                right += int(ok.sum())
                total += len(ok)
                start = 0
                for tokens, prompt_len in chunk:
                    n = len(tokens) - prompt_len
                    exact += int(ok[start : start + n].all())
                    start += n
            out[f"{name}@{length}"] = (right / max(1, total), exact / len(samples))
    model.train()
    return out


def make_optimizer(model, lr, device):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    fused = device.type == "cuda"
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8,
                             **({"fused": True} if fused else {}))


def val_line(scores):
    return " ".join(f"{k} {a:.2f}/{e:.2f}" for k, (a, e) in scores.items())


class SizeRun:
    """One size's training loop state: what train_one needs between steps."""

    def __init__(self, size, seconds, args, by_length, val, tok_meta, device):
        self.size, self.seconds, self.args = size, seconds, args
        self.val, self.tok_meta, self.device = val, tok_meta, device
        torch.manual_seed(args.seed)
        self.rng = random.Random(args.seed)
        self.np_rng = np.random.default_rng(args.seed)
        self.config = zoo_model.make_config(size, tok_meta["vocab_size"], tok_meta["eos_id"],
                                            tok_meta["pad_id"], args.max_positions,
                                            args.rope_theta)
        self.model = zoo_model.ZooLlama(self.config).to(device)
        self.init = dict(item.split("=", 1) for item in filter(None, args.init.split(","))).get(size)
        self.init_log = None
        if self.init:
            log_path = os.path.join(self.init, "train_log.json")
            if os.path.exists(log_path):
                with open(log_path) as f:
                    prev = json.load(f)
                self.init_log = {k: prev.get(k) for k in (
                    "steps", "tokens", "seconds", "learning_rate", "batch_tokens", "task_weights",
                    "levels", "final_val", "device", "init", "init_log")}
            start = zoo_model.load_pretrained(self.init)
            if start.config["hidden_size"] != self.config["hidden_size"] or \
                    start.config["num_hidden_layers"] != self.config["num_hidden_layers"]:
                sys.exit(f"--init {size}={self.init}: that model is not a {size}")
            self.model.load_state_dict(start.state_dict())
            del start
        self.lr = LEARNING_RATE.get(size, 1e-3) * lr_scale_for(args.lr_scale, size)
        self.opt = make_optimizer(self.model, self.lr, device)
        self.sampler = Sampler(by_length, args.batch_tokens, args.min_rows,
                               parse_weights(args.task_weights), self.rng)
        caps = [float(c) for c in filter(None, args.level_caps.split(","))]
        self.curriculum = Curriculum(by_length, caps, args.current_share, args.advance_at)
        self.autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                                       enabled=device.type == "cuda")
        self.log, self.val_log, self.levels_log = [], [], [
            {"step": 0, "seconds": 0.0, "length": self.curriculum.length}]
        self.recent = []
        self.stop_hits = 0
        self.stop_reason = "time budget"

    def step(self, step, progress):
        warm = min(1.0, (step + 1) / self.args.warmup_steps)
        cos = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        for g in self.opt.param_groups:
            g["lr"] = self.lr * warm * cos
        length = self.curriculum.draw(self.rng)
        x, flat, targets, answer = to_batch(self.sampler.batch(length), self.tok_meta["pad_id"],
                                            self.args.lm_sample, self.np_rng, self.device)
        with self.autocast:
            logits = selected_logits(self.model, x, flat)
        ce = F.cross_entropy(logits, targets, reduction="none")
        is_answer = answer.float()
        answer_loss = (ce * is_answer).sum() / is_answer.sum().clamp(min=1)
        loss = answer_loss
        if self.args.focal > 0:
            # Focal weighting (1 - p)^gamma of the answer tokens, normalised: the tokens
            # the model still gets wrong (the looked-up value) dominate the gradient.
            w = (1 - torch.exp(-ce.detach())).pow(self.args.focal) * is_answer
            loss = (ce * w).sum() / w.sum().clamp(min=1e-6)
        if self.args.lm_weight > 0 and self.args.lm_sample > 0:
            prompt = 1.0 - is_answer
            loss = loss + self.args.lm_weight * (ce * prompt).sum() / prompt.sum().clamp(min=1)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        return x, answer_loss, logits, targets, answer

    def check(self, step, elapsed, progress):
        """Scores the --val sets, moves the curriculum, decides an early stop."""
        scores = validate(self.model, self.val, self.tok_meta["pad_id"], self.device,
                          self.autocast)
        key = f"{self.args.advance_set}@{self.curriculum.length}"
        exact = scores[key][1] if key in scores else None
        entry = {"step": step, "seconds": round(elapsed, 1), "level": self.curriculum.length,
                 "scores": {k: [round(a, 4), round(e, 4)] for k, (a, e) in scores.items()}}
        self.val_log.append(entry)
        print(f"  {self.size} val step {step} t={elapsed:.0f}s level={self.curriculum.length} "
              f"| {val_line(scores)}", flush=True)
        if self.curriculum.last:
            self.stop_hits = self.stop_hits + 1 if exact is not None and exact >= self.args.stop_at else 0
            if self.stop_hits >= 2:
                self.stop_reason = f"{key} exact >= {self.args.stop_at} twice"
                return True
        elif self.curriculum.maybe_advance(progress, exact):
            self.levels_log.append({"step": step, "seconds": round(elapsed, 1),
                                    "length": self.curriculum.length})
            print(f"  {self.size} level -> {self.curriculum.length} at step {step} "
                  f"t={elapsed:.0f}s", flush=True)
        return False


def train_one(size, seconds, args, by_length, val, tok_meta, device):
    """Trains one size for `seconds` (or until the early stop); returns seconds used."""
    run = SizeRun(size, seconds, args, by_length, val, tok_meta, device)
    params = zoo_model.count_parameters(run.model)
    start = time.time()
    step, tokens_seen = 0, 0
    while True:
        elapsed = time.time() - start
        progress = elapsed / seconds
        if progress >= 1.0 or (args.max_steps and step >= args.max_steps):
            break
        if val and step > 0 and step % args.val_every == 0:
            if run.check(step, elapsed, progress):
                break
        elif not val and run.curriculum.maybe_advance(progress, None):
            run.levels_log.append({"step": step, "seconds": round(elapsed, 1),
                                   "length": run.curriculum.length})
        x, answer_loss, logits, targets, answer = run.step(step, progress)
        step += 1
        tokens_seen += int(x.numel())
        if step % args.log_every == 0 or step == 1:
            al = float(answer_loss.detach())
            acc = float((logits.detach().argmax(-1) == targets)[answer].float().mean())
            run.recent = (run.recent + [al])[-10:]
            run.log.append({"step": step, "seconds": round(time.time() - start, 1),
                            "length": int(x.shape[1]), "answer_loss": round(al, 4),
                            "answer_accuracy": round(acc, 4)})
            if step % args.print_every == 0:
                print(f"  {size} step {step} t={time.time() - start:.0f}s len={x.shape[1]} "
                      f"answer_loss={al:.3f} answer_acc={acc:.3f}", flush=True)
    seconds_used = time.time() - start
    # The model and its log first: the final validation may not fit before --deadline.
    out_dir = os.path.join(args.out, size)
    zoo_model.save_pretrained(run.model, out_dir)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(args.tokenizer, name), os.path.join(out_dir, name))
    summary = {"size": size, "parameters": params, "steps": step, "tokens": tokens_seen,
               "seconds": round(seconds_used, 1), "budget_seconds": round(seconds, 1),
               "stop_reason": run.stop_reason, "learning_rate": run.lr,
               "init": run.init, "init_log": run.init_log, "focal": args.focal,
               "batch_tokens": args.batch_tokens, "min_rows": args.min_rows,
               "lm_weight": args.lm_weight, "lm_sample": args.lm_sample,
               "task_weights": args.task_weights, "lengths": sorted(by_length),
               "levels": run.levels_log, "seed": args.seed,
               "final_answer_loss": round(sum(run.recent) / max(1, len(run.recent)), 4),
               "final_val": {},
               "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
               "torch": torch.__version__, "config": run.config, "log": run.log,
               "val": run.val_log}
    log_path = os.path.join(out_dir, "train_log.json")
    with open(log_path, "w") as f:
        json.dump(summary, f, indent=1)
    final = {}
    if val and (not args.deadline or args.deadline - time.time() > SAVE_MARGIN_S):
        final = validate(run.model, val, tok_meta["pad_id"], device, run.autocast)
        scores = {k: [round(a, 4), round(e, 4)] for k, (a, e) in final.items()}
        run.val_log.append({"step": step, "seconds": round(seconds_used, 1), "final": True,
                            "level": run.curriculum.length, "scores": scores})
        summary["final_val"] = scores
        with open(log_path, "w") as f:
            json.dump(summary, f, indent=1)
    print(f"trained {size}: {params / 1e6:.2f}M params, {step} steps, "
          f"{tokens_seen / 1e6:.1f}M tokens in {seconds_used:.0f}s ({run.stop_reason}), "
          f"answer loss {summary['final_answer_loss']}", flush=True)
    if final:
        print(f"final {size}: {val_line(final)}", flush=True)
    del run
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return seconds_used


def tokenizer_meta(tok_dir):
    with open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    ids = {t["content"]: t["id"] for t in tok["added_tokens"]}
    vocab_size = max(max(tok["model"]["vocab"].values()), max(ids.values())) + 1
    return {"vocab_size": vocab_size, "eos_id": ids["<|im_end|>"], "pad_id": ids["<|endoftext|>"]}


def lr_scale_for(spec, size):
    """The --lr-scale factor of a size: spec is a number, or size=factor,... (default 1)."""
    try:
        if "=" not in spec:
            return float(spec)
        table = {k: float(v) for k, v in (item.split("=", 1) for item in spec.split(",") if item)}
    except ValueError:
        sys.exit(f"--lr-scale: '{spec}' is neither a number nor size=factor,... (e.g. zoo-l=0.5)")
    return table.get(size, 1.0)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--val", help="held-out dumps scored during training (seeds disjoint)")
    ap.add_argument("--tokenizer", required=True, help="folder with tokenizer.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--sizes", default="zoo-l:300,zoo-s:90",
                    help="size:seconds,... in training order (sizes: " +
                    ", ".join(zoo_model.SIZES) + ")")
    ap.add_argument("--deadline", type=float, default=0,
                    help="Unix time by which every size must be saved (0: none)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch-tokens", type=int, default=16384)
    ap.add_argument("--lengths", default="",
                    help="train on these dump lengths only, e.g. 1024,2048,4096 (default: all)")
    ap.add_argument("--min-rows", type=int, default=8,
                    help="samples per batch at least (long lengths get more tokens)")
    ap.add_argument("--task-weights", default=TASK_WEIGHTS)
    ap.add_argument("--lm-weight", type=float, default=0.02)
    ap.add_argument("--lm-sample", type=float, default=0.0625)
    ap.add_argument("--level-caps", default="0.2,0.35,0.5",
                    help="budget fractions by which each level but the last is left")
    ap.add_argument("--current-share", type=float, default=0.6)
    ap.add_argument("--advance-set", default="ruler_niah/q1")
    ap.add_argument("--advance-at", type=float, default=0.8)
    ap.add_argument("--stop-at", type=float, default=0.96)
    ap.add_argument("--val-every", type=int, default=250)
    ap.add_argument("--focal", type=float, default=0.0,
                    help="focal exponent gamma of the answer loss (0: plain mean)")
    ap.add_argument("--init", default="",
                    help="size=MODEL_DIR,...: start that size from a saved model")
    ap.add_argument("--warmup-steps", type=int, default=100)
    ap.add_argument("--lr-scale", default="1.0",
                    help="factor on each size's learning rate: one number for all, or "
                         "size=factor,... (sizes not named: 1.0), e.g. zoo-l=0.5")
    ap.add_argument("--log-every", type=int, default=50,
                    help="steps between the training-loss entries of train_log.json")
    ap.add_argument("--max-positions", type=int, default=32768)
    ap.add_argument("--rope-theta", type=float, default=100000.0)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (tests)")
    ap.add_argument("--print-every", type=int, default=500)
    ap.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    return ap.parse_args()


def main():
    args = parse_args()
    plan = []
    for item in args.sizes.split(","):
        name, _, secs = item.partition(":")
        if name not in zoo_model.SIZES or not secs:
            sys.exit(f"--sizes: '{item}' is not size:seconds with a size in {list(zoo_model.SIZES)}")
        plan.append((name, float(secs)))
    parse_weights(args.task_weights)  # fail early on a malformed list
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    t0 = time.time()
    by_length = load_data(args.data, args.workers)
    if args.lengths:
        keep = {int(L) for L in args.lengths.split(",")}
        if not keep & set(by_length):
            sys.exit(f"--lengths {args.lengths}: the data has lengths {sorted(by_length)}")
        by_length = {L: d for L, d in by_length.items() if L in keep}
    val = load_data(args.val, args.workers) if args.val else {}
    counts = {L: {t: len(v) for t, v in d.items()} for L, d in sorted(by_length.items())}
    print(f"data: {counts} loaded in {time.time() - t0:.0f}s", flush=True)
    if val:
        print(f"val: {[f'{t}@{L}:{len(v)}' for L, d in sorted(val.items()) for t, v in d.items()]}",
              flush=True)
    meta = tokenizer_meta(args.tokenizer)
    carry = 0.0
    for name, secs in plan:
        budget = secs + carry
        if args.deadline:
            budget = min(budget, args.deadline - time.time() - SAVE_MARGIN_S)
        if budget < 5:
            print(f"skipped {name}: {budget:.0f}s left before the deadline", flush=True)
            continue
        used = train_one(name, budget, args, by_length, val, meta, device)
        carry = max(0.0, budget - used)


if __name__ == "__main__":
    main()
