#!/usr/bin/env python3
"""Times the peers of attention_prefill_cuda_bench at its shapes, on the same GPU, in the
same run, so the two tables read as ratios:

  python3 attention_peer.py [--lengths 16384,32768,65536,131072] [--shapes 28/4,64/8]
                            [--csv FILE] [--skip-flex] [--flex HQ:L,...]

Shapes: batch 1, Hq 28 / Hkv 4 and Hq 64 / Hkv 8, head dim 128, bf16, causal.
- cuDNN: torch SDPA restricted to SDPBackend.CUDNN_ATTENTION, GQA through enable_gqa=True
  (if this torch's cuDNN path refuses it, K/V are expanded with repeat_interleave and the
  table says so in the 'gqa' column).
- FlexAttention: torch.compile(flex_attention), enable_gqa=True, causal block mask; and the
  block-sparse case with the same block mask as the bench (KeepBlock: the diagonal block
  plus each earlier 128-block whose integer hash falls under 9 in 100, per query head),
  built with BlockMask.from_kv_blocks (kept earlier blocks full, diagonal blocks causal).
FLOPs: 4 * Hq * D * L (L + 1) / 2 for causal; kept pairs the same way for block-sparse.
Timing: triton.testing.do_bench, median.
"""
import argparse
import sys

import torch
import torch._dynamo
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import BlockMask, flex_attention
from triton.testing import do_bench

BLOCK = 128
D = 128


def keep_mask(hq, nb, device):
    """[hq, nb, nb] bool: the bench's KeepBlock, vectorised (uint32 arithmetic)."""
    h = torch.arange(hq, device=device, dtype=torch.int64).view(hq, 1, 1)
    b = torch.arange(nb, device=device, dtype=torch.int64).view(1, nb, 1)
    c = torch.arange(nb, device=device, dtype=torch.int64).view(1, 1, nb)
    m32 = 0xFFFFFFFF
    x = (h * 1000003 + b * 7919 + c * 104729) & m32
    x = (x * 2654435761) & m32
    keep = ((x >> 8) % 100) < 9
    keep = keep & (c < b)
    return keep | (c == b)


def causal_mod(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def block_mask_from(full, nb, hq, seq_len):
    """BlockMask with `full` ([H, nb, nb] bool, strictly below the diagonal) as full blocks
    and every diagonal block partial (causal)."""
    dev = full.device
    full_num = full.sum(-1).to(torch.int32)  # [H, nb]
    # Indices of kept blocks first (sorted by a stable key), the rest after.
    order = torch.argsort((~full).to(torch.int8), dim=-1, stable=True).to(torch.int32)
    diag = torch.arange(nb, device=dev, dtype=torch.int32).view(1, nb, 1).expand(full.shape[0], nb, 1)
    kv_num = torch.ones(full.shape[0], nb, device=dev, dtype=torch.int32)
    kv_idx = torch.zeros(full.shape[0], nb, nb, device=dev, dtype=torch.int32)
    kv_idx[..., :1] = diag
    return BlockMask.from_kv_blocks(
        kv_num[None], kv_idx[None], full_num[None], order[None], BLOCK_SIZE=BLOCK,
        mask_mod=causal_mod, seq_lengths=(seq_len, seq_len))


def make_inputs(hq, hkv, L, dev):
    torch.manual_seed(0)
    q = (1.5 * torch.randn(1, hq, L, D, device=dev)).to(torch.bfloat16)
    k = torch.randn(1, hkv, L, D, device=dev).to(torch.bfloat16)
    v = torch.randn(1, hkv, L, D, device=dev).to(torch.bfloat16)
    return q, k, v


def time_cudnn(q, k, v, hq, hkv):
    """Median ms of cuDNN SDPA, causal; GQA by enable_gqa, else repeat_interleave."""
    try:
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            fn()
            return do_bench(fn, warmup=25, rep=100, return_mode="median"), "enable"
    except RuntimeError as e:
        print(f"  cuDNN with enable_gqa refused ({str(e).splitlines()[0][:80]}); "
              "using repeat_interleave", flush=True)
    kr = k.repeat_interleave(hq // hkv, dim=1)
    vr = v.repeat_interleave(hq // hkv, dim=1)
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        fn = lambda: F.scaled_dot_product_attention(q, kr, vr, is_causal=True)
        fn()
        return do_bench(fn, warmup=25, rep=100, return_mode="median"), "repeat"


def time_flex(flex, q, k, v, hq, L, dev):
    """Median ms of FlexAttention causal and with the bench's block mask, and its kept
    fraction of causal pairs."""
    nb = (L + BLOCK - 1) // BLOCK
    tri = torch.tril(torch.ones(nb, nb, dtype=torch.bool, device=dev), -1)[None]
    # Per-head like the block-sparse mask, so both calls share one compiled kernel.
    causal_mask = block_mask_from(tri.expand(hq, nb, nb), nb, hq, L)
    fn = lambda: flex(q, k, v, block_mask=causal_mask, enable_gqa=True)
    fn()
    flex_ms = do_bench(fn, warmup=25, rep=100, return_mode="median")
    del causal_mask
    keep = keep_mask(hq, nb, dev) & tri
    bs_mask = block_mask_from(keep, nb, hq, L)
    diag_pairs = BLOCK * (BLOCK + 1) / 2
    kept_pairs = keep.sum().item() * BLOCK * BLOCK + hq * nb * diag_pairs
    causal_pairs = hq * (nb * (nb - 1) / 2 * BLOCK * BLOCK + nb * diag_pairs)
    fn = lambda: flex(q, k, v, block_mask=bs_mask, enable_gqa=True)
    fn()
    bs_ms = do_bench(fn, warmup=25, rep=100, return_mode="median")
    return flex_ms, bs_ms, kept_pairs / causal_pairs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lengths", default="16384,32768,65536,131072")
    ap.add_argument("--shapes", default="28/4,64/8", help="HQ/HKV pairs")
    ap.add_argument("--csv", default="")
    ap.add_argument("--skip-flex", action="store_true")
    ap.add_argument("--flex", default="",
                    help="FlexAttention only at these Hq:L pairs, e.g. 64:16384,64:131072 "
                         "(each shape is one compile); default: every shape")
    args = ap.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]
    dev = torch.device("cuda")
    print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"cudnn {torch.backends.cudnn.version()}", flush=True)
    csv = open(args.csv, "w") if args.csv else None
    if csv:
        csv.write("kernel,hq,hkv,d,L,ms,tflops,gqa,kept_fraction\n")
    heads = [tuple(int(x) for x in p.split("/")) for p in args.shapes.split(",") if p]
    shapes = [(hq, hkv, L) for hq, hkv in heads for L in lengths]
    # cuDNN first for every shape (fast), then FlexAttention (compiles per shape).
    print(f"{'Hq/Hkv':6} {'L':>7} {'cuDNN ms':>9} {'TFLOP/s':>8} {'gqa':>6}", flush=True)
    for hq, hkv, L in shapes:
        q, k, v = make_inputs(hq, hkv, L, dev)
        flops = 4.0 * hq * D * L * (L + 1) / 2
        ms, gqa = time_cudnn(q, k, v, hq, hkv)
        print(f"{hq:2d}/{hkv:<3d} {L:7d} {ms:9.2f} {flops / ms / 1e9:8.0f} {gqa:>6}", flush=True)
        if csv:
            csv.write(f"cudnn,{hq},{hkv},{D},{L},{ms:.4f},{flops / ms / 1e9:.1f},{gqa},1\n")
            csv.flush()
        del q, k, v
        torch.cuda.empty_cache()
    if args.skip_flex:
        return 0
    # One compiled kernel per shape and mask layout: 16 here, over dynamo's default limit of
    # 8, past which it would fall back to an eager path that materialises the scores.
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 64)
    flex = torch.compile(flex_attention, dynamic=False)
    print(f"{'Hq/Hkv':6} {'L':>7} {'flex ms':>9} {'TFLOP/s':>8} | {'flexbs ms':>9} {'kept':>6}",
          flush=True)
    flex_only = {tuple(int(x) for x in p.split(":")) for p in args.flex.split(",") if p}
    for hq, hkv, L in shapes:
        if flex_only and (hq, L) not in flex_only:
            continue
        q, k, v = make_inputs(hq, hkv, L, dev)
        flops = 4.0 * hq * D * L * (L + 1) / 2
        try:
            flex_ms, bs_ms, kept = time_flex(flex, q, k, v, hq, L, dev)
        except Exception as e:  # report and go on with the other shapes
            print(f"  FlexAttention failed at Hq {hq} L {L}: {str(e).splitlines()[0][:120]}",
                  flush=True)
            continue
        print(f"{hq:2d}/{hkv:<3d} {L:7d} {flex_ms:9.2f} {flops / flex_ms / 1e9:8.0f} | "
              f"{bs_ms:9.2f} {100 * kept:5.1f}%", flush=True)
        if csv:
            csv.write(f"flex,{hq},{hkv},{D},{L},{flex_ms:.4f},{flops / flex_ms / 1e9:.1f},enable,1\n")
            csv.write(f"flex_blocks10,{hq},{hkv},{D},{L},{bs_ms:.4f},"
                      f"{kept * flops / bs_ms / 1e9:.1f},enable,{kept:.4f}\n")
            csv.flush()
        del q, k, v
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
