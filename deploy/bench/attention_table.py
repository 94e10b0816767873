#!/usr/bin/env python3
"""Joins the CSVs of attention_prefill_cuda_bench (--csv) and attention_peer.py (--csv),
measured in the same run, into one table of ratios:

  python3 attention_table.py OWN.csv PEER.csv

Columns per shape and length: own dense TFLOP/s, cuDNN TFLOP/s, own/cuDNN speed (the
issue's target: >= 0.9), FlexAttention TFLOP/s, own block-sparse time over
(kept fraction x own dense time) (target <= 1.25) and FlexAttention's block-sparse time
over ours with the same mask (target >= 1.3).
"""
import csv
import sys


def load(path):
    rows = {}
    try:
        with open(path) as f:
            for r in csv.DictReader(f):
                rows[(r["kernel"], int(r["hq"]), int(r["L"]))] = r
    except OSError as e:
        print(f"attention_table: {e}", file=sys.stderr)
    return rows


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    rows = load(sys.argv[1])
    rows.update(load(sys.argv[2]))
    keys = sorted({(hq, L) for (_, hq, L) in rows})

    def get(kernel, hq, L, field):
        r = rows.get((kernel, hq, L))
        return float(r[field]) if r else float("nan")

    print(f"{'Hq':>3} {'L':>7} {'own TF/s':>8} {'cuDNN':>6} {'own/cuDNN':>9} {'flex':>5} | "
          f"{'bs/kept*dense':>13} {'flexbs/own bs':>13}")
    for hq, L in keys:
        own = get("own_dense", hq, L, "tflops")
        cud = get("cudnn", hq, L, "tflops")
        flex = get("flex", hq, L, "tflops")
        own_ms = get("own_dense", hq, L, "ms")
        bs_ms = get("own_blocks10", hq, L, "ms")
        kept = get("own_blocks10", hq, L, "kept_fraction")
        flex_bs = get("flex_blocks10", hq, L, "ms")
        print(f"{hq:3d} {L:7d} {own:8.0f} {cud:6.0f} {own / cud:9.2f} {flex:5.0f} | "
              f"{bs_ms / (kept * own_ms):13.2f} {flex_bs / bs_ms:13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
