#!/usr/bin/env python3
"""Times Hugging Face transformers on a model folder, as the peer of engine_cuda_bench.

Run on the GPU host right after engine_cuda_bench, on the same model folder,
so that the two tables can be read as ratios:

  python3 hf_engine_peer.py --model DIR --lengths 1024,4096,16384 --decode 32

For each dtype (float32 = what our CUDA backend computes in now, bfloat16 = what a
researcher would run) and length it prints prefill tokens/s (one forward pass of L
random tokens, logits of the last position only) and decode ms/token (greedy steps
with the KV cache after that prefill). Timing: CUDA events around the region, after
one warm-up; the median of --repeats runs.
"""
import argparse
import statistics
import sys

import torch
import transformers


def time_cuda(fn, repeats):
    times = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop) / 1000.0)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="Hugging Face model folder")
    parser.add_argument("--lengths", default="1024,4096,16384")
    parser.add_argument("--decode", type=int, default=32, help="decode steps timed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--attn", default="sdpa", help="attn_implementation")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("hf_engine_peer: no CUDA device")

    print(f"# transformers {transformers.__version__}, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name(0)}, attn={args.attn}")
    print(f"{'peer':<22} {'dtype':<9} {'L':>7} {'prefill tok/s':>14} {'decode ms/tok':>14}")
    for dtype_name in args.dtypes.split(","):
        dtype = getattr(torch, dtype_name)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            args.model, dtype=dtype, attn_implementation=args.attn).cuda().eval()
        vocab = model.config.vocab_size
        for length in (int(x) for x in args.lengths.split(",")):
            gen = torch.Generator().manual_seed(length)
            ids = torch.randint(0, vocab, (1, length), generator=gen).cuda()

            @torch.inference_mode()
            def prefill():
                return model(ids, use_cache=True, logits_to_keep=1)

            prefill()  # warm-up
            prefill_s = time_cuda(prefill, args.repeats)

            @torch.inference_mode()
            def decode():
                out = model(ids, use_cache=True, logits_to_keep=1)
                cache = out.past_key_values
                token = out.logits[:, -1:].argmax(-1)
                torch.cuda.synchronize()
                start = torch.cuda.Event(enable_timing=True)
                stop = torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(args.decode):
                    out = model(token, past_key_values=cache, use_cache=True)
                    cache = out.past_key_values
                    token = out.logits[:, -1:].argmax(-1)
                stop.record()
                torch.cuda.synchronize()
                return start.elapsed_time(stop) / args.decode

            decode()  # warm-up
            decode_ms = statistics.median(decode() for _ in range(args.repeats))
            print(f"{'hf-transformers':<22} {dtype_name:<9} {length:>7} "
                  f"{length / prefill_s:>14.0f} {decode_ms:>14.3f}", flush=True)
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
