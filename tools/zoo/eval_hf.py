#!/usr/bin/env python3
"""Quick dense evaluation of trained zoo models with Hugging Face transformers, on
held-out samples dumped with `--ids` (sample seeds disjoint from training's).

  eval_hf.py --holdout DIR --generate 8 MODEL_DIR [MODEL_DIR ...]

For each model folder and each holdout file (<task>-<length>-*.jsonl):
- teacher-forced: the fraction of samples whose whole completion is the argmax at
  every position (what greedy decoding would write, token for token), and the
  fraction of completion tokens that are;
- generated: greedy `generate()` on the first --generate samples, and the fraction of
  expected answers (the dump's `answers`) found inside <answer>...</answer> of the
  output. An approximation of the task metrics for a quick look; the project's scores
  come from `sfctl run` with its own scoring.
Also writes MODEL_DIR/reference.json (float32 logits of a fixed prompt and a 32-token
greedy continuation, the format of deploy/conformance) so the project's engine can be
checked against transformers, and, where transformers can load the tokenizer, checks
that it encodes the held-out prompts to the dump's input_ids.
Prints a table; writes --json with everything.
"""

import argparse
import glob
import json
import os
import re
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM

from train_tokenizer import bytes_to_unicode

REFERENCE_PROMPT = [1, 17, 250, 3, 99, 42]
REFERENCE_NEW_TOKENS = 32


def byte_decoder(tok_json):
    """id -> bytes for a byte-level BPE tokenizer.json (added tokens as their text)."""
    char_byte = {c: b for b, c in bytes_to_unicode().items()}
    table = {i: bytes(char_byte[ch] for ch in tok) for tok, i in tok_json["model"]["vocab"].items()}
    special = set()
    for t in tok_json["added_tokens"]:
        table[t["id"]] = t["content"].encode()
        if t.get("special"):
            special.add(t["id"])
    return lambda ids: b"".join(table.get(i, b"") for i in ids if i not in special).decode(
        "utf-8", "replace")


def read_holdout(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def answer_section(text):
    m = re.search(r"<answer>(.*?)(</answer>|$)", text, re.S)
    return m.group(1) if m else text


def answers_found(text, answers):
    section = answer_section(text).lower()
    return sum(a.lower() in section for a in answers) / max(1, len(answers))


def load_model(path, dtype, device):
    dtype_arg = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa",
                                                 **{dtype_arg: dtype})
    return model.to(device).eval()


@torch.no_grad()
def teacher_forced(model, samples, device):
    exact = tokens_right = tokens_total = 0
    for s in samples:
        ids = torch.tensor([s["input_ids"] + s["completion_ids"]], device=device)
        logits = model(ids).logits[0]
        n_in = len(s["input_ids"])
        pred = logits[n_in - 1 : -1].argmax(-1)
        want = ids[0, n_in:]
        right = int((pred == want).sum())
        tokens_right += right
        tokens_total += len(want)
        exact += int(right == len(want))
    return exact / len(samples), tokens_right / max(1, tokens_total)


@torch.no_grad()
def generated(model, samples, decode, eos_id, pad_id, device):
    """Left-padded batch greedy generation; mean fraction of answers found."""
    width = max(len(s["input_ids"]) for s in samples)
    ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(samples), width), dtype=torch.long)
    for i, s in enumerate(samples):
        n = len(s["input_ids"])
        ids[i, width - n :] = torch.tensor(s["input_ids"])
        mask[i, width - n :] = 1
    new = max(len(s["completion_ids"]) for s in samples) + 16
    out = model.generate(ids.to(device), attention_mask=mask.to(device), do_sample=False,
                         max_new_tokens=new, eos_token_id=eos_id, pad_token_id=pad_id)
    scores, texts = [], []
    for i, s in enumerate(samples):
        text = decode(out[i, width:].tolist())
        texts.append(text)
        scores.append(answers_found(text, s["answers"]))
    return sum(scores) / len(scores), texts


@torch.no_grad()
def write_reference(path, device):
    model = load_model(path, torch.float32, device)
    ids = torch.tensor([REFERENCE_PROMPT], device=device)
    logits = model(ids).logits[0].float().cpu()
    eos = model.config.eos_token_id
    gen = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                         max_new_tokens=REFERENCE_NEW_TOKENS, eos_token_id=eos, pad_token_id=eos)
    emb = model.model.rotary_emb
    ref = {"source": f"transformers {transformers.__version__} / torch {torch.__version__} "
                     f"on {device}",
           "prompt": REFERENCE_PROMPT,
           # 6 significant digits: the engine is held to 1e-4 of each row's largest logit.
           "logits": [[float(f"{v:.6g}") for v in row] for row in logits.tolist()],
           "greedy": gen[0, len(REFERENCE_PROMPT):].tolist(),
           "max_new_tokens": REFERENCE_NEW_TOKENS,
           "inv_freq": emb.inv_freq.float().tolist(),
           "attention_scaling": float(getattr(emb, "attention_scaling", 1.0))}
    with open(os.path.join(path, "reference.json"), "w") as f:
        json.dump(ref, f)
    del model


def tokenizer_check(path, samples):
    """Does transformers' tokenizer (if it loads) give the dump's input_ids?"""
    try:
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(path)
    except Exception as e:  # no `tokenizers` package, or a load error: report it
        return f"not checked ({type(e).__name__}: {str(e)[:80]})"
    same = 0
    for s in samples:
        ids = tok.apply_chat_template([{"role": "user", "content": s["prompt"]}],
                                      add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        same += int(list(ids) == s["input_ids"])
    return f"{same}/{len(samples)} prompts encode identically"


def evaluate_model(path, name, holdout, args, device, results, save):
    with open(os.path.join(path, "tokenizer.json"), encoding="utf-8") as f:
        decode = byte_decoder(json.load(f))
    t0 = time.time()
    model = load_model(path, torch.bfloat16, device)
    eos = model.config.eos_token_id
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else eos
    results[name] = {}
    for key, samples in holdout.items():
        if args.deadline and time.time() > args.deadline:
            results[name][key] = {"skipped": "past --deadline"}
            print(f"{name:8} {key:22} skipped (past --deadline)", flush=True)
            continue
        tf_exact, tf_tok = teacher_forced(model, samples[: args.max_samples], device)
        gen_score, texts = (None, [])
        if args.generate > 0:
            gen_score, texts = generated(model, samples[: args.generate], decode, eos, pad, device)
        results[name][key] = {"samples": len(samples[: args.max_samples]),
                              "tf_exact": tf_exact, "tf_token_accuracy": tf_tok,
                              "generated_answers_found": gen_score,
                              "generated_examples": texts[:2]}
        gs = "-" if gen_score is None else f"{gen_score:.3f}"
        print(f"{name:8} {key:22} {tf_exact:8.3f} {tf_tok:7.3f} {gs:>9}", flush=True)
        save()
    del model
    first = next(iter(holdout.values()))[:4]
    results[name]["tokenizer_check"] = (
        "not checked (past --deadline)" if args.deadline and time.time() > args.deadline
        else tokenizer_check(path, first))
    results[name]["eval_seconds"] = round(time.time() - t0, 1)
    print(f"{name}: tokenizer {results[name]['tokenizer_check']}; "
          f"{results[name]['eval_seconds']}s", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--holdout", required=True)
    ap.add_argument("--generate", type=int, default=8, help="samples per file to generate")
    ap.add_argument("--max-samples", type=int, default=32, help="samples per file, teacher-forced")
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--deadline", type=float, default=0,
                    help="Unix time after which no further task is started (0: none)")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    files = sorted(glob.glob(os.path.join(args.holdout, "*.jsonl")))
    if not files:
        sys.exit(f"eval_hf: no .jsonl in {args.holdout}")
    holdout = {}
    for path in files:
        samples = read_holdout(path)
        if samples:
            first = samples[0]
            queries = first["params"].get("num_queries", "4")
            one_key = first["task"] == "ruler_niah" and queries != "4"
            key = f"{first['task']}@{first['length']}" + (f"/q{queries}" if one_key else "")
            holdout.setdefault(key, []).extend(samples)
    results = {}

    def save():  # after each task, so that a run cut short keeps what it measured
        if not args.json:
            return
        with open(args.json, "w") as f:
            json.dump({"transformers": transformers.__version__, "torch": torch.__version__,
                       "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
                       "results": results}, f, indent=1)

    # Every model's reference logits first: they are what the project's engine is checked
    # against, and a run cut short by its time limit should still leave them.
    for path in args.models:
        write_reference(path, device)
    print(f"{'model':8} {'task@length':22} {'tf_exact':>8} {'tf_tok':>7} {'gen_found':>9}")
    for path in args.models:
        name = os.path.basename(os.path.normpath(path))
        if args.deadline and time.time() > args.deadline:
            print(f"{name}: not evaluated (past --deadline)", flush=True)
            results[name] = {"error": "not evaluated: past --deadline"}
            continue
        try:
            evaluate_model(path, name, holdout, args, device, results, save)
        except Exception as e:  # one model's failure should not hide the others' results
            print(f"{name}: evaluation failed: {type(e).__name__}: {e}", flush=True)
            results[name] = {"error": f"{type(e).__name__}: {e}"}
        save()


if __name__ == "__main__":
    main()
