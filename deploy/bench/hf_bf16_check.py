#!/usr/bin/env python3
"""The bf16 engine's logits against transformers on the same checkpoints (GPU host).

cuda_engine_gpu_test, run with SF_BF16_DUMP_DIR=DIR, writes each tiny model of its
Bf16VsF32 suite to DIR/<case>/ with the prompt (prompt.txt) and the engine's logits for
every position in bfloat16 (logits_bf16.f32) and float32 (logits_f32.f32). This script
runs transformers on each checkpoint in float32 and bfloat16 and prints the per-row
relative L2 errors ||x - hf_f32|| / ||hf_f32|| (worst and mean over positions) of:
transformers' own bf16, the engine's bf16 and the engine's float32.

"Within bf16 tolerance" is checked against transformers' own bf16 error: the engine's
bf16 error may be at most 1.5x transformers' bf16 error plus 0.01 (worst and mean), and
its float32 logits within 1e-4. Exit status 1 if a case misses, 0 otherwise.

  SF_BF16_DUMP_DIR=/tmp/bf16 ./cuda_engine_gpu_test --gtest_filter='*PrefillAllPositions*'
  python3 hf_bf16_check.py /tmp/bf16
"""
import os
import sys

import numpy as np
import torch
import transformers

FACTOR, SLACK, F32_BOUND = 1.5, 1e-2, 1e-4


def row_errors(got, want):
    diff = np.linalg.norm(got.astype(np.float64) - want, axis=1)
    err = diff / np.maximum(np.linalg.norm(want, axis=1), 1e-30)
    return float(err.max()), float(err.mean())


@torch.inference_mode()
def hf_logits(folder, dtype, ids):
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).cuda().eval()
    out = model(torch.tensor([ids], device="cuda")).logits[0].float().cpu().numpy()
    del model
    return out.astype(np.float64)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    cases = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "prompt.txt")))
    if not cases:
        sys.exit(f"hf_bf16_check: no case folders with prompt.txt under {root}")
    print(f"# transformers {transformers.__version__}, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name(0)}; row error vs transformers float32 (worst / mean)")
    print(f"{'case':<28} {'hf bf16':>17} {'engine bf16':>17} {'engine f32':>19}  verdict")
    failed = 0
    for case in cases:
        folder = os.path.join(root, case)
        with open(os.path.join(folder, "prompt.txt")) as f:
            ids = [int(line) for line in f if line.strip()]
        want = hf_logits(folder, torch.float32, ids)
        hf_bf16 = hf_logits(folder, torch.bfloat16, ids)
        shape = want.shape
        ours_bf16 = np.fromfile(os.path.join(folder, "logits_bf16.f32"), dtype="<f4").reshape(shape)
        ours_f32 = np.fromfile(os.path.join(folder, "logits_f32.f32"), dtype="<f4").reshape(shape)
        h, o, o32 = row_errors(hf_bf16, want), row_errors(ours_bf16, want), row_errors(ours_f32, want)
        ok = (o[0] <= FACTOR * h[0] + SLACK and o[1] <= FACTOR * h[1] + SLACK
              and o32[0] <= F32_BOUND)
        failed += not ok
        print(f"{case:<28} {h[0]:8.4f} {h[1]:8.4f} {o[0]:8.4f} {o[1]:8.4f} {o32[0]:9.2e} "
              f"{o32[1]:9.2e}  {'ok' if ok else 'MISS'}")
    print(f"{len(cases) - failed} of {len(cases)} within {FACTOR}x transformers' bf16 error + {SLACK}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
