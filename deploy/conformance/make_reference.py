#!/usr/bin/env python3
"""Reference vectors for the model engine from PyTorch + Hugging Face transformers.

Run on a host with torch and transformers (the GPU host has them; the CPU is enough):

    python3 deploy/conformance/make_reference.py --out tests/data/model

For each tiny configuration below it builds a random-initialised model (biases and
norm weights randomised too, so they are exercised), saves it with save_pretrained
(float32 safetensors, a few hundred KB) into OUT/<name>/, and writes
OUT/<name>/reference.json:

  {"source": "transformers X / torch Y", "prompt": [...],
   "logits": [[vocab] per prompt position] (float32, eager attention),
   "greedy": [32-token greedy continuation from generate()],
   "max_new_tokens": 32,
   "inv_freq": [the model's rotary inv_freq], "attention_scaling": x}

Commit the folders; worker/model/conformance_test.cc loads the same files with the
C++ engine and requires logits within 1e-4 relative error and identical tokens.
"""
import argparse
import json
import os
import sys

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

PROMPT = [1, 17, 250, 3, 99, 42, 311, 7, 128, 64, 500, 2, 77, 400, 12, 5]
MAX_NEW_TOKENS = 32
COMMON = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
              rms_norm_eps=1e-5, initializer_range=0.1, bos_token_id=1, eos_token_id=511)

# name -> (model_type, extra config fields, rope_theta, rope scaling or None, seed)
MODELS = {
    "hf_llama": ("llama", dict(tie_word_embeddings=False), 10000.0, None, 1),
    "hf_qwen2_bias": ("qwen2", dict(tie_word_embeddings=True, use_sliding_window=False),
                      1000000.0, None, 2),
    "hf_mistral": ("mistral", dict(tie_word_embeddings=False, sliding_window=None,
                                   num_key_value_heads=1), 10000.0, None, 3),
    # max_position_embeddings = factor * original, so transformers versions that derive
    # the factor from their ratio agree with those that read "factor".
    "hf_qwen2_yarn": ("qwen2", dict(tie_word_embeddings=False, use_sliding_window=False),
                      10000.0, {"rope_type": "yarn", "factor": 4.0,
                                "original_max_position_embeddings": 64}, 4),
    "hf_llama3_rope": ("llama", dict(tie_word_embeddings=False), 500000.0,
                       {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                        "high_freq_factor": 4.0, "original_max_position_embeddings": 64}, 5),
}


def make_config(model_type, extra, theta, scaling):
    fields = dict(COMMON)
    fields.update(extra)
    if int(transformers.__version__.split(".")[0]) >= 5:
        rope = {"rope_type": "default", "rope_theta": theta}
        if scaling:
            rope.update(scaling)
        fields["rope_parameters"] = rope
    else:
        fields["rope_theta"] = theta
        fields["rope_scaling"] = scaling
    return AutoConfig.for_model(model_type, **fields)


def rotary(model):
    emb = getattr(model.model, "rotary_emb", None)
    if emb is None:  # older versions keep one per layer
        emb = model.model.layers[0].self_attn.rotary_emb
    return emb.inv_freq.float().tolist(), float(getattr(emb, "attention_scaling", 1.0))


def build(name, out_dir):
    model_type, extra, theta, scaling, seed = MODELS[name]
    torch.manual_seed(seed)
    config = make_config(model_type, extra, theta, scaling)
    dtype_arg = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager",
                                             **{dtype_arg: torch.float32})
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith(".bias"):
                p.normal_(0.0, 0.1)
            elif "norm" in pname:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    model.eval()
    model.generation_config.eos_token_id = COMMON["eos_token_id"]
    model.generation_config.bos_token_id = COMMON["bos_token_id"]
    path = os.path.join(out_dir, name)
    os.makedirs(path, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)

    ids = torch.tensor([PROMPT])
    with torch.no_grad():
        logits = model(ids).logits[0].float()
        gen = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=MAX_NEW_TOKENS, eos_token_id=COMMON["eos_token_id"],
                             pad_token_id=COMMON["eos_token_id"])
    greedy = gen[0, len(PROMPT):].tolist()
    inv_freq, scaling_factor = rotary(model)
    ref = {
        "source": f"transformers {transformers.__version__} / torch {torch.__version__}",
        "prompt": PROMPT,
        "logits": logits.tolist(),
        "greedy": greedy,
        "max_new_tokens": MAX_NEW_TOKENS,
        "inv_freq": inv_freq,
        "attention_scaling": scaling_factor,
    }
    with open(os.path.join(path, "reference.json"), "w") as f:
        json.dump(ref, f)
    print(f"{name}: {sum(p.numel() for p in model.parameters())} params, greedy {greedy}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="tests/data/model", help="folder for <name>/ outputs")
    parser.add_argument("--only", nargs="*", choices=sorted(MODELS), help="subset of models")
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True)
    for name in args.only or MODELS:
        build(name, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
