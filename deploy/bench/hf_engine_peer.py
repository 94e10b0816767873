#!/usr/bin/env python3
"""Times Hugging Face transformers on a model folder, as the peer of engine_cuda_bench.

Run on the GPU host right after engine_cuda_bench, on the same model folder,
so that the two tables can be read as ratios:

  python3 hf_engine_peer.py --model DIR --lengths 1024,4096,16384 --decode 32
  python3 hf_engine_peer.py --shape qwen2.5-7b --dtypes bfloat16 --lengths 32768,131072

With --shape qwen2.5-7b or qwen2.5-32b the model is that shape (as engine_cuda_bench --shape)
with random weights initialised on the GPU (no checkpoint); --layers cuts it.

For each dtype (float32, bfloat16) and length it prints prefill seconds and tokens/s (one
forward pass of L random tokens, logits of the last position only), decode ms/token
(greedy steps with the KV cache after that prefill) and the peak GPU memory PyTorch
allocated for that length. Timing: CUDA events around the region, after one warm-up;
the median of --repeats runs.
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


# The shapes of bench/qwen25_shapes.h: hidden, intermediate, layers, query heads, KV heads.
SHAPES = {
    "qwen2.5-7b": (3584, 18944, 28, 28, 4),
    "qwen2.5-32b": (5120, 27648, 64, 40, 8),
}


def random_qwen25(shape, dtype, layers, attn):
    """A Qwen2.5 shape with random weights, built on the GPU in `dtype`."""
    hidden, intermediate, all_layers, heads, kv_heads = SHAPES[shape]
    config = transformers.Qwen2Config(
        vocab_size=152064, hidden_size=hidden, intermediate_size=intermediate,
        num_hidden_layers=layers or all_layers, num_attention_heads=heads,
        num_key_value_heads=kv_heads, max_position_embeddings=131072 + 1024, rms_norm_eps=1e-6,
        rope_theta=1000000.0, tie_word_embeddings=False)
    config._attn_implementation = attn
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device("cuda"):
            torch.manual_seed(1)
            model = transformers.Qwen2ForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return model.to(dtype).eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Hugging Face model folder")
    parser.add_argument("--shape", choices=sorted(SHAPES), help="random weights of this shape")
    parser.add_argument("--layers", type=int, default=0, help="with --shape: layers (0: all)")
    parser.add_argument("--lengths", default="1024,4096,16384")
    parser.add_argument("--decode", type=int, default=32, help="decode steps timed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--attn", default="sdpa", help="attn_implementation")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("hf_engine_peer: no CUDA device")
    if bool(args.model) == bool(args.shape):
        sys.exit("hf_engine_peer: give exactly one of --model and --shape")

    print(f"# transformers {transformers.__version__}, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name(0)}, attn={args.attn}")
    print(f"{'peer':<18} {'dtype':<9} {'L':>7} {'prefill s':>10} {'prefill tok/s':>14} "
          f"{'decode ms/tok':>14} {'peak GiB':>9}")
    for dtype_name in args.dtypes.split(","):
        dtype = getattr(torch, dtype_name)
        if args.shape:
            model = random_qwen25(args.shape, dtype, args.layers, args.attn)
        else:
            model = transformers.AutoModelForCausalLM.from_pretrained(
                args.model, dtype=dtype, attn_implementation=args.attn).cuda().eval()
        vocab = model.config.vocab_size
        first = True
        for length in (int(x) for x in args.lengths.split(",")):
            gen = torch.Generator().manual_seed(length)
            ids = torch.randint(0, vocab, (1, length), generator=gen).cuda()

            @torch.inference_mode()
            def prefill():
                return model(ids, use_cache=True, logits_to_keep=1)

            torch.cuda.reset_peak_memory_stats()
            if first:
                prefill()  # warm-up (once per model: kernels and allocator)
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

            if first:
                decode()  # warm-up
            first = False
            decode_ms = statistics.median(decode() for _ in range(args.repeats))
            peak = torch.cuda.max_memory_allocated() / 2**30
            print(f"{'hf-transformers':<18} {dtype_name:<9} {length:>7} {prefill_s:>10.3f} "
                  f"{length / prefill_s:>14.0f} {decode_ms:>14.3f} {peak:>9.2f}", flush=True)
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
