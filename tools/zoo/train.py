#!/usr/bin/env python3
"""Trains the zoo: Llama-architecture models of several sizes on task samples dumped by
`sfctl tasks dump --ids` (or sf-tasks-dump), each for a fixed wall-clock budget, and saves
each in Hugging Face format.

  train.py --data DIR --tokenizer DIR --out DIR [--sizes zoo-xs:60,zoo-l:180] [--seed 1]

DIR (data) holds <task>-<length>-*.jsonl files with input_ids and completion_ids. The
loss is cross-entropy on the completion (the answer and the end-of-turn token) plus
--lm-weight times the cross-entropy on the prompt: a language-modelling share of the
same haystack text. Lengths follow a curriculum: the first --short-fraction of the time
draws only the shorter dumps, then every length. The learning rate warms up, then decays
by the fraction of the time budget spent (cosine to 10%). Needs torch only.

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

# Answer-heavy tasks first; weights are the share of draws among the tasks a length has.
TASK_WEIGHTS = {"ruler_niah": 3.0, "ruler_vt": 1.5, "ruler_cwe": 1.5, "story_retrieval": 1.5,
                "story_multihop": 1.0, "story_filtering": 1.0}
LEARNING_RATE = {"zoo-xs": 3e-3, "zoo-s": 2e-3, "zoo-m": 1.5e-3, "zoo-l": 1e-3}


def parse_file(path):
    """(task, length, [(tokens int32, prompt_len)]) of one dump file."""
    out = []
    task = length = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = json.loads(line)
            task, length = s["task"], s["length"]
            ids = s["input_ids"] + s["completion_ids"]
            out.append((np.asarray(ids, dtype=np.int32), len(s["input_ids"])))
    return task, length, out


def load_data(data_dir, workers):
    paths = sorted(glob.glob(os.path.join(data_dir, "*.jsonl")))
    if not paths:
        sys.exit(f"train: no .jsonl files in {data_dir}; dump samples with `sfctl tasks dump --ids`")
    with multiprocessing.Pool(workers) as pool:
        parsed = pool.map(parse_file, paths)
    by_length = {}
    for task, length, samples in parsed:
        if task is None:
            continue
        by_length.setdefault(length, {}).setdefault(task, []).extend(samples)
    return by_length


class Sampler:
    """Draws batches of about `tokens` tokens from one length at a time."""

    def __init__(self, by_length, tokens, rng):
        self.by_length = by_length
        self.lengths = sorted(by_length)
        self.tokens = tokens
        self.rng = rng

    def batch(self, progress, short_fraction):
        lengths = self.lengths
        if progress < short_fraction and len(lengths) > 1:
            lengths = lengths[:-1]
        else:
            lengths = lengths[-1:] * 2 + lengths[:-1]  # the longest drawn half the time
        length = self.rng.choice(lengths)
        tasks = list(self.by_length[length])
        weights = [TASK_WEIGHTS.get(t, 1.0) for t in tasks]
        count = max(1, self.tokens // length)
        chosen = []
        for _ in range(count):
            task = self.rng.choices(tasks, weights)[0]
            chosen.append(self.rng.choice(self.by_length[length][task]))
        return chosen


def to_tensors(samples, pad_id, lm_weight, device):
    width = max(len(t) for t, _ in samples) - 1
    width = (width + 127) // 128 * 128
    ids = np.full((len(samples), width + 1), pad_id, dtype=np.int64)
    w = np.zeros((len(samples), width), dtype=np.float32)
    for i, (tokens, prompt_len) in enumerate(samples):
        ids[i, : len(tokens)] = tokens
        # weight of predicting token j+1 from position j
        w[i, : prompt_len - 1] = lm_weight
        w[i, prompt_len - 1 : len(tokens) - 1] = 1.0
    ids = torch.from_numpy(ids).to(device, non_blocking=True)
    w = torch.from_numpy(w).to(device, non_blocking=True)
    return ids[:, :-1], ids[:, 1:], w


def train_one(size, seconds, args, by_length, tok_meta, device):
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    config = zoo_model.make_config(size, tok_meta["vocab_size"], tok_meta["eos_id"],
                                   tok_meta["pad_id"], args.max_positions, args.rope_theta)
    model = zoo_model.ZooLlama(config).to(device)
    params = zoo_model.count_parameters(model)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    lr = LEARNING_RATE.get(size, 1e-3) * args.lr_scale
    fused = device.type == "cuda"
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8, **({"fused": True} if fused else {}))
    sampler = Sampler(by_length, args.batch_tokens, rng)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                              enabled=device.type == "cuda")
    start = time.time()
    step, tokens_seen = 0, 0
    log = []
    recent = []
    while True:
        elapsed = time.time() - start
        progress = elapsed / seconds
        if progress >= 1.0 or (args.max_steps and step >= args.max_steps):
            break
        warm = min(1.0, (step + 1) / args.warmup_steps)
        cos = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        for g in opt.param_groups:
            g["lr"] = lr * warm * cos
        x, y, w = to_tensors(sampler.batch(progress, args.short_fraction), tok_meta["pad_id"],
                             args.lm_weight, device)
        with autocast:
            logits = model(x)
        ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1),
                             reduction="none").view_as(w)
        loss = (ce * w).sum() / w.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += int(x.numel())
        if step % 10 == 0 or step == 1:
            answer_mask = (w == 1.0)
            answer_loss = float((ce * answer_mask).sum() / answer_mask.sum().clamp(min=1))
            recent.append(answer_loss)
            recent = recent[-10:]
            log.append({"step": step, "seconds": round(time.time() - start, 1),
                        "length": int(x.shape[1]), "loss": round(float(loss), 4),
                        "answer_loss": round(answer_loss, 4)})
            if step % args.print_every == 0:
                print(f"  {size} step {step} t={time.time() - start:.0f}s len={x.shape[1]} "
                      f"loss={float(loss):.3f} answer_loss={answer_loss:.3f}", flush=True)
    seconds_used = time.time() - start
    out_dir = os.path.join(args.out, size)
    zoo_model.save_pretrained(model, out_dir)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(args.tokenizer, name), os.path.join(out_dir, name))
    summary = {"size": size, "parameters": params, "steps": step, "tokens": tokens_seen,
               "seconds": round(seconds_used, 1), "learning_rate": lr,
               "batch_tokens": args.batch_tokens, "lm_weight": args.lm_weight,
               "short_fraction": args.short_fraction, "seed": args.seed,
               "final_answer_loss": round(sum(recent) / max(1, len(recent)), 4),
               "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
               "torch": torch.__version__, "config": config, "log": log}
    with open(os.path.join(out_dir, "train_log.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"trained {size}: {params / 1e6:.2f}M params, {step} steps, "
          f"{tokens_seen / 1e6:.1f}M tokens in {seconds_used:.0f}s, "
          f"answer loss {summary['final_answer_loss']}", flush=True)
    del model, opt
    if device.type == "cuda":
        torch.cuda.empty_cache()


def tokenizer_meta(tok_dir):
    with open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    ids = {t["content"]: t["id"] for t in tok["added_tokens"]}
    vocab_size = max(max(tok["model"]["vocab"].values()), max(ids.values())) + 1
    return {"vocab_size": vocab_size, "eos_id": ids["<|im_end|>"], "pad_id": ids["<|endoftext|>"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--tokenizer", required=True, help="folder with tokenizer.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--sizes", default="zoo-xs:60,zoo-s:80,zoo-m:110,zoo-l:170",
                    help="size:seconds,... (sizes: " + ", ".join(zoo_model.SIZES) + ")")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch-tokens", type=int, default=65536)
    ap.add_argument("--lm-weight", type=float, default=0.05)
    ap.add_argument("--short-fraction", type=float, default=0.25)
    ap.add_argument("--warmup-steps", type=int, default=50)
    ap.add_argument("--lr-scale", type=float, default=1.0)
    ap.add_argument("--max-positions", type=int, default=32768)
    ap.add_argument("--rope-theta", type=float, default=100000.0)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (tests)")
    ap.add_argument("--print-every", type=int, default=100)
    ap.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    args = ap.parse_args()
    plan = []
    for item in args.sizes.split(","):
        name, _, secs = item.partition(":")
        if name not in zoo_model.SIZES or not secs:
            sys.exit(f"--sizes: '{item}' is not size:seconds with a size in {list(zoo_model.SIZES)}")
        plan.append((name, float(secs)))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    t0 = time.time()
    by_length = load_data(args.data, args.workers)
    counts = {L: {t: len(v) for t, v in d.items()} for L, d in by_length.items()}
    print(f"data: {counts} loaded in {time.time() - t0:.0f}s", flush=True)
    meta = tokenizer_meta(args.tokenizer)
    for name, secs in plan:
        train_one(name, secs, args, by_length, meta, device)


if __name__ == "__main__":
    main()
