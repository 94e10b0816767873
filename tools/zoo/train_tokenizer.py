#!/usr/bin/env python3
"""Trains a small byte-level BPE tokenizer and writes it as a Hugging Face tokenizer.json.

The file has the shape of Qwen2's (a Split pre-tokenizer with Qwen2's regex, then
ByteLevel; a BPE model over the GPT-2 byte alphabet; ChatML's special tokens), so the
project's HfTokenizer, Hugging Face `tokenizers` and transformers all read it. Plain
Python only (no `tokenizers` package): the corpus is a few megabytes of JSON Lines from
`sfctl tasks dump`, whose `prompt` and `completion` texts are the training text.

  train_tokenizer.py --vocab-size 4096 --out DIR corpus1.jsonl [corpus2.jsonl ...]

Writes DIR/tokenizer.json and DIR/tokenizer_config.json (ChatML chat template, EOS
<|im_end|>). Deterministic: the same corpus gives the same file.
"""

import argparse
import collections
import heapq
import json
import os
import re
import sys

# Qwen2's pre-tokenizer regex, written for tokenizer.json (PCRE / Oniguruma syntax).
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# The same split in Python's `re` (str patterns are Unicode-aware): a letter is
# [^\W\d_], a number \d. Used only to count words for training; encoding always
# applies QWEN2_PATTERN itself, so a difference here can only make merges less apt.
_LETTER = r"[^\W\d_]"
PY_PATTERN = re.compile(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)"
    rf"|(?:(?!{_LETTER})[^\r\n\d])?{_LETTER}+"
    r"|\d"
    rf"| ?(?:(?!{_LETTER})[^\s\d])+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def bytes_to_unicode():
    """GPT-2's map from bytes to printable characters (the byte-level alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def read_texts(paths):
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    sample = json.loads(line)
                except json.JSONDecodeError as e:
                    sys.exit(f"{path}:{line_no}: not JSON ({e}); expected `sfctl tasks dump` output")
                for key in ("prompt", "completion"):
                    if key not in sample:
                        sys.exit(f"{path}:{line_no}: no `{key}` field; expected `sfctl tasks dump` output")
                    yield sample[key]


def count_words(texts):
    """Pre-tokenized words (as byte tuples) with their counts."""
    counts = collections.Counter()
    for text in texts:
        for word in PY_PATTERN.findall(text):
            counts[word.encode("utf-8")] += 1
    return counts


def train_merges(word_counts, num_merges):
    """Classic BPE: repeatedly merge the most frequent adjacent pair (ties: the pair that
    sorts first). Returns the merges as (left, right) byte strings, in rank order."""
    words = [[bytes([b]) for b in w] for w in word_counts]
    freqs = list(word_counts.values())
    pair_counts = collections.Counter()
    where = collections.defaultdict(set)
    for i, symbols in enumerate(words):
        for a, b in zip(symbols, symbols[1:]):
            pair_counts[(a, b)] += freqs[i]
            where[(a, b)].add(i)
    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)
    merges = []
    while len(merges) < num_merges and heap:
        neg, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -neg:
            continue  # stale entry
        if -neg < 2:
            break
        merges.append(pair)
        merged = pair[0] + pair[1]
        changed = collections.Counter()
        for i in list(where[pair]):
            symbols = words[i]
            f = freqs[i]
            j = 0
            out = []
            while j < len(symbols):
                if j + 1 < len(symbols) and symbols[j] == pair[0] and symbols[j + 1] == pair[1]:
                    out.append(merged)
                    j += 2
                else:
                    out.append(symbols[j])
                    j += 1
            if len(out) == len(symbols):
                continue
            for a, b in zip(symbols, symbols[1:]):
                changed[(a, b)] -= f
            for a, b in zip(out, out[1:]):
                changed[(a, b)] += f
                where[(a, b)].add(i)
            words[i] = out
        for p, delta in changed.items():
            if delta == 0:
                continue
            pair_counts[p] += delta
            if pair_counts[p] <= 0:
                del pair_counts[p]
            else:
                heapq.heappush(heap, (-pair_counts[p], p))
        pair_counts.pop(pair, None)
        where.pop(pair, None)
    return merges


def build_tokenizer_json(merges):
    byte_char = bytes_to_unicode()

    def to_text(b):
        return "".join(byte_char[x] for x in b)

    vocab = {}
    for b in range(256):
        vocab[to_text(bytes([b]))] = len(vocab)
    for a, b in merges:
        vocab.setdefault(to_text(a + b), len(vocab))
    added = []
    for content in SPECIAL_TOKENS:
        added.append({"id": len(vocab) + len(added), "content": content, "single_word": False,
                      "lstrip": False, "rstrip": False, "normalized": False, "special": True})
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                  "use_regex": False}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated",
             "invert": False},
            byte_level]},
        "post_processor": dict(byte_level),
        "decoder": dict(byte_level),
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": False,
                  "byte_fallback": False, "ignore_merges": False, "vocab": vocab,
                  "merges": [[to_text(a), to_text(b)] for a, b in merges]},
    }


def tokenizer_config():
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "chat_template": CHATML_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 131072,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "errors": "replace",
        "split_special_tokens": False,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", nargs="+", help="JSON Lines from `sfctl tasks dump`")
    ap.add_argument("--vocab-size", type=int, default=4096,
                    help="entries including the 256 bytes and the 3 special tokens")
    ap.add_argument("--out", required=True, help="folder for tokenizer.json")
    args = ap.parse_args()
    num_merges = args.vocab_size - 256 - len(SPECIAL_TOKENS)
    if num_merges < 1:
        sys.exit(f"--vocab-size {args.vocab_size} leaves no room for merges (minimum 260)")
    counts = count_words(read_texts(args.corpus))
    merges = train_merges(counts, num_merges)
    tok = build_tokenizer_json(merges)
    size = len(tok["model"]["vocab"]) + len(tok["added_tokens"])
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(args.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_config(), f, indent=2)
        f.write("\n")
    print(f"train_tokenizer: {len(counts)} distinct words, {len(merges)} merges, "
          f"{size} entries -> {args.out}/tokenizer.json")


if __name__ == "__main__":
    main()
