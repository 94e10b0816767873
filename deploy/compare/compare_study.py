#!/usr/bin/env python3
"""Compares our sparse-attention selections with the study's public Python code.

The study (PiotrNawrot/sparse-frontier) is NOT part of this repository: pass the path of
a checkout with --study; nothing of it is copied here. Its modules import vllm,
flash_attn, triton and a compiled CUDA extension at import time; this script installs
minimal stand-ins for those (below) before importing, and calls only the selection
steps, which are plain torch and run on the CPU:

  block_sparse    minference.block._build_block_index
  vertical_slash  minference.vertical_and_slash.vertical_and_slash_kernel (the sparse
                  kernel it ends with is replaced by a function returning the indices)
  flexprefill     efficient_prefilling.FlexPrefill.get_active_blocks
  snapkv          kv_compression.SnapKVCompression.kv_compress (values = positions, so
  ada_snapkv      kv_compression.AdaSnapKVCompression.kv_compress  the kept ones show)
  quest           efficient_decoding.QuestAttention._init_page_reps + _select_pages

Inputs: folders written by `sfctl fidelity --compare-dir DIR` (qkv.bin, cases.json,
out_*.bin; docs/methods.md). For each case the table gives the agreement of the index
sets (Jaccard, mean and worst head), the token-level Jaccard of the attention masks,
the relative error between attention computed over the study's selection and over ours
(float64, here), and for prefill cases the relative error between our C++ output and
the same float64 attention over our selection (checks our executor).

  compare_study.py --study PATH/sparse-frontier DIR [DIR ...]
  compare_study.py --self-test      # the pure logic, without torch or the study
"""

import argparse
import json
import math
import os
import struct
import sys
import types
from array import array

# ---------------------------------------------------------------- pure logic (no torch)


def read_dump_header(blob):
    """(Hq, Hkv, L, D) of an SFQKV001 dump given as bytes."""
    if blob[:8] != b"SFQKV001":
        raise ValueError("not a Q/K/V dump (magic SFQKV001)")
    return struct.unpack("<4q", blob[8:40])


def read_dump(path):
    """(header, q, k, v) with q/k/v as flat float arrays in C order."""
    with open(path, "rb") as f:
        blob = f.read()
    hq, hkv, length, dim = read_dump_header(blob)
    sizes = [hq * length * dim, hkv * length * dim, hkv * length * dim]
    if len(blob) != 40 + 4 * sum(sizes):
        raise ValueError("%s: size does not match its header" % path)
    out, offset = [], 40
    for n in sizes:
        a = array("f")
        a.frombytes(blob[offset:offset + 4 * n])
        if sys.byteorder != "little":
            a.byteswap()
        out.append(a)
        offset += 4 * n
    return (hq, hkv, length, dim), out[0], out[1], out[2]


def jaccard(a, b):
    a, b = set(a), set(b)
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def line_keys(columns, offsets, pos):
    """Keys a row at `pos` attends under a lines pattern (columns + diagonal offsets)."""
    keys = {c for c in columns if c <= pos}
    keys.update(pos - o for o in offsets if o <= pos)
    return keys


def block_pairs(blocks_per_query_block):
    """{(qb, kb)} of a block selection, future key blocks dropped."""
    return {(qb, kb) for qb, kbs in enumerate(blocks_per_query_block) for kb in kbs if kb <= qb}


def summarize(values):
    values = list(values)
    if not values:
        return float("nan"), float("nan")
    return sum(values) / len(values), min(values)


def format_table(rows):
    head = ("case", "method", "jaccard", "worst", "mask_jacc", "out_relerr", "exec_err", "notes")
    lines = ["%-18s %-14s %8s %8s %9s %10s %9s  %s" % head]
    for r in rows:
        def f(x, fmt):
            return fmt % x if isinstance(x, float) and not math.isnan(x) else "-"
        lines.append("%-18s %-14s %8s %8s %9s %10s %9s  %s" % (
            r["case"], r["method"], f(r.get("jaccard"), "%.4f"), f(r.get("worst"), "%.4f"),
            f(r.get("mask_jaccard"), "%.4f"), f(r.get("out_relerr"), "%.2e"),
            f(r.get("exec_err"), "%.2e"), r.get("notes", "")))
    return "\n".join(lines)


def self_test():
    assert jaccard([1, 2, 3], [2, 3, 4]) == 0.5
    assert jaccard([], []) == 1.0
    assert line_keys([0, 5, 9], [0, 2], 6) == {0, 5, 6, 4}
    assert block_pairs([[0], [0, 1, 3]]) == {(0, 0), (1, 0), (1, 1)}
    assert summarize([1.0, 0.5]) == (0.75, 0.5)
    blob = b"SFQKV001" + struct.pack("<4q", 2, 1, 3, 4) + b"\0" * 4 * (24 + 12 + 12)
    assert read_dump_header(blob) == (2, 1, 3, 4)
    table = format_table([{"case": "x", "method": "y", "jaccard": 1.0, "notes": "n"}])
    assert "x" in table and "1.0000" in table
    print("self-test ok")


# ------------------------------------------------------------ stand-ins for the imports


def install_stubs():
    """Minimal fakes for what the study imports but this comparison never runs."""

    def module(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m
        return m

    def unavailable(what):
        def f(*args, **kwargs):
            raise RuntimeError(what + " is not available in the comparison harness")
        return f

    module("vllm")
    module("vllm.distributed",
           get_tensor_model_parallel_world_size=lambda: 1,
           tensor_model_parallel_all_gather=lambda x: x)
    module("vllm.attention")
    module("vllm.attention.backends")
    module("vllm.attention.backends.flash_attn",
           flash_attn_with_kvcache=unavailable("flash_attn_with_kvcache"))
    module("flash_attn", flash_attn_func=unavailable("flash_attn_func"))
    try:
        import triton  # noqa: F401  (comes with torch on most GPU hosts)
        import triton.language  # noqa: F401
    except Exception:
        class _Any:
            def __getattr__(self, name):
                return _Any()

            def __call__(self, *args, **kwargs):
                return _Any()

        tl = module("triton.language", constexpr=object, float16="fp16", bfloat16="bf16")
        tl.__getattr__ = lambda name: _Any()
        module("triton", jit=lambda f=None, **kw: f if f is not None else (lambda g: g),
               cdiv=lambda a, b: (a + b - 1) // b, language=tl)
    # The compiled MInference extension (csrc/); only the sparse kernel would call it.
    module("sparse_frontier.modelling.attention.minference.minference",
           convert_vertical_slash_indexes=unavailable("convert_vertical_slash_indexes"))


def torch_compat(torch):
    """Torch before 2.0 (Debian's 1.13, used to try this script on the CPU) lacks
    Tensor.where with a scalar, which the study's block index uses."""
    try:
        torch.zeros(1).where(torch.ones(1, dtype=torch.bool), 0.0)
    except TypeError:
        where = torch.Tensor.where

        def where_scalar(self, cond, other):
            if not torch.is_tensor(other):
                other = torch.tensor(other, dtype=self.dtype, device=self.device)
            return where(self, cond, other)

        torch.Tensor.where = where_scalar


def import_study(study):
    import importlib
    import torch
    if not os.path.isdir(os.path.join(study, "sparse_frontier", "modelling", "attention")):
        sys.exit("--study %s: not a checkout of PiotrNawrot/sparse-frontier" % study)
    sys.path.insert(0, os.path.abspath(study))
    install_stubs()
    torch_compat(torch)
    base = "sparse_frontier.modelling.attention."
    mods = {}
    compile_, script_ = getattr(torch, "compile", None), torch.jit.script
    # efficient_decoding wraps _select_pages / _update_last_page at import; plain Python
    # is enough here (and needs no compiler on the host).
    torch.compile = lambda f=None, **kw: f
    torch.jit.script = lambda f, *a, **kw: f
    try:
        for name in ("minference.block", "minference.vertical_and_slash", "efficient_prefilling",
                     "kv_compression", "efficient_decoding"):
            mods[name] = importlib.import_module(base + name)
    finally:
        torch.compile, torch.jit.script = compile_, script_
    return mods


# ------------------------------------------------------------------- the comparison


def masked_attention(torch, q, k, v, mask):
    """softmax(q k^T / sqrt(D)) v over mask (rows x keys, bool), float64."""
    s = (q.double() @ k.double().T) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~mask, float("-inf"))
    p = torch.softmax(s, dim=-1)
    p = torch.nan_to_num(p, nan=0.0)
    return p @ v.double()


def rel(torch, a, b):
    n = torch.linalg.norm(b)
    return float(torch.linalg.norm(a - b) / n) if n > 0 else float(torch.linalg.norm(a))


def lines_mask(torch, columns, offsets, length):
    m = torch.zeros(length, length, dtype=torch.bool)
    if len(columns):
        m[:, torch.tensor(sorted(columns))] = True
    for o in offsets:
        idx = torch.arange(o, length)
        m[idx, idx - o] = True
    return m & torch.ones(length, length, dtype=torch.bool).tril()


def blocks_mask(torch, blocks, block, length):
    m = torch.zeros(length, length, dtype=torch.bool)
    for qb, kbs in enumerate(blocks):
        r0, r1 = qb * block, min(length, (qb + 1) * block)
        if r0 >= length:
            break
        for kb in kbs:
            m[r0:r1, kb * block:min(length, (kb + 1) * block)] = True
    return m & torch.ones(length, length, dtype=torch.bool).tril()


def compare_dir(path, mods, torch):
    with open(os.path.join(path, "cases.json")) as f:
        doc = json.load(f)
    (hq, hkv, length, dim), qa, ka, va = read_dump(os.path.join(path, doc["qkv"]))
    q = torch.tensor(qa, dtype=torch.float32).reshape(hq, length, dim)
    k = torch.tensor(ka, dtype=torch.float32).reshape(hkv, length, dim)
    v = torch.tensor(va, dtype=torch.float32).reshape(hkv, length, dim)
    group = hq // hkv
    rows = []
    for case in doc["cases"]:
        p, method, name = case["params"], case["method"], case["name"]
        row = {"case": "%s/%s" % (doc.get("source", "?"), name), "method": method, "notes": ""}
        ours_out = None
        if "output" in case:
            o = array("f")
            with open(os.path.join(path, case["output"]), "rb") as f:
                o.frombytes(f.read())
            ours_out = torch.tensor(o, dtype=torch.float32).reshape(hq, length, dim)
        jac, mjac, errs, execs = [], [], [], []
        if case["kind"] in ("lines", "blocks"):
            for h in range(hq):
                qh, kh, vh = q[h][None, None], k[h // group][None, None], v[h // group][None, None]
                if method == "block_sparse":
                    bs, top = p["block"], p["block_budget"]
                    pad = bs - (length & (bs - 1))  # as block_sparse_attention pads
                    qp = torch.nn.functional.pad(qh, [0, 0, 0, pad])
                    kp = torch.nn.functional.pad(kh, [0, 0, 0, pad])
                    idx = mods["minference.block"]._build_block_index(qp, kp, top, bs, bs)
                    # The padding adds query blocks past the sequence: drop them.
                    nqb = (length + bs - 1) // bs
                    theirs = [sorted(int(x) for x in r) for r in idx[0, 0].tolist()][:nqb]
                    ours = case["blocks"][h]
                    jac.append(jaccard(block_pairs(theirs), block_pairs(ours)))
                    m_t = blocks_mask(torch, theirs, bs, length)
                    m_o = blocks_mask(torch, ours, case["block"], length)
                else:
                    if method == "vertical_slash":
                        vs = mods["minference.vertical_and_slash"]
                        vs.vertical_slash_sparse_attention = lambda q_, k_, v_, vi, si: (vi, si)
                        vi, si = vs.vertical_and_slash_kernel(
                            qh, kh, vh, vertical_size=min(p["verticals"], length),
                            slash_size=min(p["slashes"], length), last_q=min(p["last_q"], length))
                    else:  # flexprefill, the study's class
                        fp = mods["efficient_prefilling"].FlexPrefill(
                            alpha=p["gamma"], approximation_size=p["last_q"],
                            min_budget=p["min_budget"])
                        vi, si = fp.get_active_blocks(qh, kh, vh)
                    cols = sorted(set(int(x) for x in vi.flatten().tolist()))
                    offs = sorted(set(int(x) for x in si.flatten().tolist()))
                    jac.append(jaccard([("c", c) for c in cols] + [("o", o) for o in offs],
                                       [("c", c) for c in case["columns"][h]] +
                                       [("o", o) for o in case["offsets"][h]]))
                    m_t = lines_mask(torch, cols, offs, length)
                    m_o = lines_mask(torch, case["columns"][h], case["offsets"][h], length)
                inter = (m_t & m_o).sum().item()
                union = (m_t | m_o).sum().item()
                mjac.append(inter / union if union else 1.0)
                o_t = masked_attention(torch, q[h], k[h // group], v[h // group], m_t)
                o_o = masked_attention(torch, q[h], k[h // group], v[h // group], m_o)
                errs.append(rel(torch, o_t, o_o))
                if ours_out is not None:
                    execs.append(rel(torch, ours_out[h].double(), o_o))
        elif case["kind"] == "kept":
            # Values carry positions, so the compressed values name the kept tokens.
            pos = torch.arange(length, dtype=torch.float32)[:, None, None].expand(length, hkv, dim)
            cls = (mods["kv_compression"].AdaSnapKVCompression if method == "ada_snapkv"
                   else mods["kv_compression"].SnapKVCompression)
            kwargs = dict(token_capacity=p["token_capacity"],
                          approximation_window=p.get("window", 256), kernel_size=p.get("pool", 21),
                          local_window=p.get("keep_last", 128), prefix_tokens=p.get("keep_first", 4))
            if method == "ada_snapkv":
                kwargs["min_head_capacity_ratio"] = p.get("floor", 0.2)
            comp = cls(**kwargs)
            _, cv, lens = comp.kv_compress(q.transpose(0, 1).contiguous(),
                                           k.transpose(0, 1).contiguous(), pos.contiguous())
            for g in range(hkv):
                theirs = sorted(int(x) for x in cv[g, :int(lens[g]), 0].tolist())
                ours = case["kept"][g]
                jac.append(jaccard(theirs, ours))
                for h in range(g * group, (g + 1) * group):  # the last query over the kept
                    qh = q[h, length - 1:length]
                    for sel, out in ((theirs, "t"), (ours, "o")):
                        m = torch.zeros(1, length, dtype=torch.bool)
                        m[0, torch.tensor(sel)] = True
                        if out == "t":
                            o_t = masked_attention(torch, qh, k[g], v[g], m)
                        else:
                            o_o = masked_attention(torch, qh, k[g], v[g], m)
                    errs.append(rel(torch, o_t, o_o))
            row["notes"] = "kept sets per KV head; output = last query over the kept tokens"
        elif case["kind"] == "pages":
            ed = mods["efficient_decoding"]
            page, budget = p.get("page", 16), p["token_budget"]
            quest = ed.QuestAttention(token_budget=budget, page_size=page, max_input_tokens=length,
                                      max_output_tokens=page, num_layers=1,
                                      share_pages=bool(p.get("gqa_shared", True)))
            quest._init_page_reps(k[None], 0)
            pages, _ = ed._select_pages(
                page_reps=quest.page_reps_per_layer[0], query=q[None, :, length - 1, :],
                cache_seqlens=length, page_size=page, page_budget=budget // page,
                offsets=torch.zeros(hq, 1, dtype=torch.int32), share_pages=quest.share_pages)
            for h in range(hq):
                theirs = sorted(int(x) for x in pages[h].tolist())
                ours = case["pages"][h]
                jac.append(jaccard(theirs, ours))
                g = h // group
                qh = q[h, length - 1:length]
                outs = []
                for sel in (theirs, ours):
                    m = torch.zeros(1, length, dtype=torch.bool)
                    for pg in sel:
                        m[0, pg * page:min(length, (pg + 1) * page)] = True
                    outs.append(masked_attention(torch, qh, k[g], v[g], m))
                errs.append(rel(torch, outs[0], outs[1]))
            row["notes"] = "pages of the decode step at position L-1"
        row["jaccard"], row["worst"] = summarize(jac)
        row["mask_jaccard"] = summarize(mjac)[0]
        row["out_relerr"] = max(errs) if errs else float("nan")
        row["exec_err"] = max(execs) if execs else float("nan")
        rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", help="path of a checkout of PiotrNawrot/sparse-frontier")
    ap.add_argument("--self-test", action="store_true", help="check the pure logic and exit")
    ap.add_argument("--json", help="also write the rows as JSON to this file")
    ap.add_argument("dirs", nargs="*", help="folders from sfctl fidelity --compare-dir")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return
    if not args.study or not args.dirs:
        ap.error("--study and at least one folder are required")
    import torch
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    mods = import_study(args.study)
    rows = []
    for d in args.dirs:
        rows += compare_dir(d, mods, torch)
    print("jaccard = index-set agreement (mean over heads; worst = min); mask_jacc = token-level"
          " mask agreement; out_relerr = worst head ||O_study - O_ours|| / ||O_ours|| (both"
          " float64 here); exec_err = our C++ output vs float64 here on our selection")
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
