#!/usr/bin/env python3
"""PyTorch SDPA decode at the shapes of attention_decode_cuda_bench, with its columns.

Run on the GPU host in the same session as attention_decode_cuda_bench:

  python3 decode_peer.py [--shapes 28/4,64/8] [--lengths 32768,65536,131072]
                         [--batches 1,16] [--reps 20]

For each SDPA backend (cuDNN, flash, memory-efficient; GQA through enable_gqa, so K/V
are not copied per query head), and flash_attn_with_kvcache when the flash_attn package
is installed (its split-KV decode, layout [batch, L, Hkv, D]), it times one decode query per sequence and head against
a full bf16 cache [batch, Hkv, L, 128], and prints time, bytes read (K, V, q, out),
TB/s, the floor (those bytes at the device-to-device copy bandwidth measured in this
run, read + write counted) and the fraction. A backend that refuses the shape prints
the reason. Timing: CUDA events around 10 back-to-back calls (rotating over copies of
the cache when one copy would fit in 4x the L2), median of --reps, after a warm-up.
"""
import argparse
import math
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

DIM = 128
INNER = 10
BACKENDS = [
    ("cudnn", SDPBackend.CUDNN_ATTENTION),
    ("flash", SDPBackend.FLASH_ATTENTION),
    ("efficient", SDPBackend.EFFICIENT_ATTENTION),
]
try:
    from flash_attn import flash_attn_with_kvcache  # optional
    BACKENDS.append(("fa_kvcache", None))
except ImportError:
    flash_attn_with_kvcache = None


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def median_seconds(fn, reps):
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) * 1e-3)
    return statistics.median(times)


def copy_bandwidth():
    n = 1 << 29  # bf16 elements: 1 GiB
    a = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    b = torch.empty_like(a)
    b.copy_(a)
    t = median_seconds(lambda: b.copy_(a), 10)
    return 2.0 * a.numel() * 2 / t


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="28/4,64/8")
    parser.add_argument("--lengths", default="32768,65536,131072")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    shapes = [tuple(int(x) for x in s.split("/")) for s in args.shapes.split(",")]
    lengths = [int(x) for x in args.lengths.split(",")]
    batches = [int(x) for x in args.batches.split(",")]

    props = torch.cuda.get_device_properties(0)
    l2 = getattr(props, "L2_cache_size", 50 << 20)
    bw = copy_bandwidth()
    print(f"device {props.name}, torch {torch.__version__}, cuDNN "
          f"{torch.backends.cudnn.version()}; D2D copy {bw * 1e-12:.3f} TB/s (read+write)")
    print(f"{'shape':<6} {'batch':>5} {'L':>7} {'backend':>9} {'time_us':>9} {'KV_MB':>9} "
          f"{'TB/s':>7} {'floor_us':>9} {'frac':>6}")
    gen = torch.Generator(device="cuda").manual_seed(0)
    for hq, hkv in shapes:
        for batch in batches:
            for length in lengths:
                kv_bytes = 2 * batch * hkv * length * DIM * 2 + 2 * batch * hq * DIM * 2
                copies = max(1, math.ceil(4 * l2 / kv_bytes))
                sets = []
                for _ in range(copies):
                    k = torch.randn(batch, hkv, length, DIM, device="cuda", dtype=torch.bfloat16,
                                    generator=gen)
                    v = torch.randn_like(k)
                    q = torch.randn(batch, hq, 1, DIM, device="cuda", dtype=torch.bfloat16,
                                    generator=gen)
                    sets.append((q, k, v))
                for name, backend in BACKENDS:
                    state = {"i": 0}

                    def call():
                        q, k, v = sets[state["i"] % len(sets)]
                        state["i"] += 1
                        return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)

                    try:
                        if backend is None:
                            sets_fa = [(q.transpose(1, 2).contiguous(), k.transpose(1, 2).contiguous(),
                                        v.transpose(1, 2).contiguous()) for q, k, v in sets[:1]]
                            call = lambda: flash_attn_with_kvcache(*sets_fa[0])  # noqa: E731
                        with sdpa_kernel(backend) if backend is not None else _nothing():
                            call()
                            torch.cuda.synchronize()

                            def body():
                                for _ in range(INNER):
                                    call()

                            t = median_seconds(body, args.reps) / INNER
                    except RuntimeError as e:
                        reason = str(e).strip().splitlines()[0][:70]
                        print(f"{hq:>2}/{hkv:<3} {batch:>5} {length:>7} {name:>9}   "
                              f"unsupported: {reason}")
                        continue
                    floor = kv_bytes / bw
                    print(f"{hq:>2}/{hkv:<3} {batch:>5} {length:>7} {name:>9} {t * 1e6:9.1f} "
                          f"{kv_bytes / 1e6:9.1f} {kv_bytes / t * 1e-12:7.3f} "
                          f"{floor * 1e6:9.1f} {floor / t:6.3f}", flush=True)
                del sets
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
