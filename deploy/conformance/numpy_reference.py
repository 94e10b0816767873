#!/usr/bin/env python3
"""Independent NumPy reference for the model engine (no torch needed).

Reads a Hugging Face model folder (config.json in the transformers 4.x or 5.x
spelling, generation_config.json, model.safetensors or shards with an index; F32,
F16 or BF16 weights), runs Llama/Qwen2/Mistral in float64 following the
transformers modeling code, and writes reference.json beside the model:

  {"source": "numpy ...", "prompt": [...], "logits": [[vocab] per prompt position],
   "greedy": [up to 32 ids], "max_new_tokens": 32, "inv_freq": [...],
   "attention_scaling": x}

Usage: numpy_reference.py MODEL_DIR [MODEL_DIR ...]
It is a check of the engine's mechanics before the PyTorch run
(make_reference.py), not a substitute for it.
"""
import json
import math
import os
import struct
import sys

import numpy as np

PROMPT = [1, 17, 250, 3, 99, 42, 311, 7, 128, 64, 500, 2, 77, 400, 12, 5]
MAX_NEW_TOKENS = 32


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[base + begin:base + end]
        dtype = info["dtype"]
        if dtype == "F32":
            arr = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif dtype == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif dtype == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32).astype(np.float64)
        else:
            raise ValueError(f"{path}: tensor {name} has dtype {dtype}")
        out[name] = arr.reshape(info["shape"])
    return out


def load_weights(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    weights = {}
    for name in files:
        weights.update(read_safetensors(os.path.join(model_dir, name)))
    return weights


def rope_inv_freq(cfg):
    """inv_freq and attention scaling as transformers' ROPE_INIT_FUNCTIONS."""
    heads = cfg["num_attention_heads"]
    dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    if cfg.get("rope_parameters") is not None:
        rp = dict(cfg["rope_parameters"])
        base = rp.get("rope_theta", cfg.get("rope_theta", 10000.0))
    else:
        rp = dict(cfg.get("rope_scaling") or {})
        base = cfg.get("rope_theta", 10000.0)
    rtype = rp.get("rope_type", rp.get("type", "default"))
    exps = np.arange(0, dim, 2).astype(np.float32) / np.float32(dim)
    inv = (1.0 / (np.float32(base) ** exps).astype(np.float32)).astype(np.float64)
    scale = 1.0
    if rtype == "default":
        pass
    elif rtype == "linear":
        inv = inv / rp["factor"]
    elif rtype == "llama3":
        factor = rp["factor"]
        low, high = rp["low_freq_factor"], rp["high_freq_factor"]
        old = rp["original_max_position_embeddings"]
        low_wl, high_wl = old / low, old / high
        wl = 2 * math.pi / inv
        scaled = np.where(wl > low_wl, inv / factor, inv)
        smooth = (old / wl - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wl < high_wl) & ~(wl > low_wl)
        inv = np.where(medium, smoothed, scaled)
    elif rtype == "yarn":
        factor = rp["factor"]
        original = rp.get("original_max_position_embeddings") or cfg["max_position_embeddings"]

        def mscale(s, m=1.0):
            return 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0

        if rp.get("attention_factor") is not None:
            scale = rp["attention_factor"]
        elif rp.get("mscale") and rp.get("mscale_all_dim"):
            scale = mscale(factor, rp["mscale"]) / mscale(factor, rp["mscale_all_dim"])
        else:
            scale = mscale(factor)
        beta_fast = rp.get("beta_fast") or 32
        beta_slow = rp.get("beta_slow") or 1

        def corr_dim(rot):
            return dim * math.log(original / (rot * 2 * math.pi)) / (2 * math.log(base))

        lo, hi = corr_dim(beta_fast), corr_dim(beta_slow)
        if rp.get("truncate", True):
            lo, hi = math.floor(lo), math.ceil(hi)
        lo, hi = max(lo, 0), min(hi, dim - 1)
        if lo == hi:
            hi += 0.001
        ramp = np.clip((np.arange(dim // 2) - lo) / (hi - lo), 0, 1)
        extra_w = 1 - ramp
        inv = (inv / factor) * (1 - extra_w) + inv * extra_w
    else:
        raise ValueError(f"rope type {rtype} not supported")
    return inv, scale, dim


class Model:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = json.load(f)
        cfg = self.cfg
        self.w = load_weights(model_dir)
        self.arch = cfg["architectures"][0]
        self.inv_freq, self.rope_scale, self.dim = rope_inv_freq(cfg)
        self.eos = cfg.get("eos_token_id")
        gen = os.path.join(model_dir, "generation_config.json")
        if os.path.exists(gen):
            with open(gen) as f:
                self.eos = json.load(f).get("eos_token_id", self.eos)
        if isinstance(self.eos, int):
            self.eos = [self.eos]
        self.eos = self.eos or []

    def linear(self, x, name, bias):
        y = x @ self.w[name + ".weight"].T
        if bias:
            y = y + self.w[name + ".bias"]
        return y

    def norm(self, x, name):
        eps = self.cfg.get("rms_norm_eps", 1e-6)
        return self.w[name] * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))

    def rope(self, x, positions):
        # x: [n, heads, dim]; rotate_half convention of transformers.
        ang = np.outer(positions, self.inv_freq)
        cos = np.concatenate([np.cos(ang), np.cos(ang)], -1)[:, None, :] * self.rope_scale
        sin = np.concatenate([np.sin(ang), np.sin(ang)], -1)[:, None, :] * self.rope_scale
        half = x.shape[-1] // 2
        rot = np.concatenate([-x[..., half:], x[..., :half]], -1)
        return x * cos + rot * sin

    def logits(self, tokens):
        cfg, w = self.cfg, self.w
        hq = cfg["num_attention_heads"]
        hkv = cfg.get("num_key_value_heads") or hq
        d = self.dim
        n = len(tokens)
        qkv_bias = self.arch == "Qwen2ForCausalLM" or cfg.get("attention_bias", False)
        o_bias = self.arch != "Qwen2ForCausalLM" and cfg.get("attention_bias", False)
        mlp_bias = cfg.get("mlp_bias", False)
        x = w["model.embed_tokens.weight"][tokens]
        pos = np.arange(n, dtype=np.float64)
        mask = np.triu(np.full((n, n), -np.inf), 1)
        for i in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{i}."
            h = self.norm(x, p + "input_layernorm.weight")
            q = self.rope(self.linear(h, p + "self_attn.q_proj", qkv_bias).reshape(n, hq, d), pos)
            k = self.rope(self.linear(h, p + "self_attn.k_proj", qkv_bias).reshape(n, hkv, d), pos)
            v = self.linear(h, p + "self_attn.v_proj", qkv_bias).reshape(n, hkv, d)
            rep = hq // hkv
            k = np.repeat(k, rep, axis=1)
            v = np.repeat(v, rep, axis=1)
            s = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(d) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s = s / s.sum(-1, keepdims=True)
            a = np.einsum("hqk,khd->qhd", s, v).reshape(n, hq * d)
            x = x + self.linear(a, p + "self_attn.o_proj", o_bias)
            h = self.norm(x, p + "post_attention_layernorm.weight")
            g = self.linear(h, p + "mlp.gate_proj", mlp_bias)
            u = self.linear(h, p + "mlp.up_proj", mlp_bias)
            x = x + self.linear(g / (1 + np.exp(-g)) * u, p + "mlp.down_proj", mlp_bias)
        h = self.norm(x, "model.norm.weight")
        head = w.get("lm_head.weight")
        if cfg.get("tie_word_embeddings", False) or head is None:
            head = w["model.embed_tokens.weight"]
        return h @ head.T

    def greedy(self, prompt, max_new):
        seq = list(prompt)
        out = []
        for _ in range(max_new):
            nxt = int(np.argmax(self.logits(seq)[-1]))
            out.append(nxt)
            if nxt in self.eos:
                break
            seq.append(nxt)
        return out


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    for model_dir in argv[1:]:
        m = Model(model_dir)
        ref = {
            "source": f"numpy {np.__version__} float64 reference (deploy/conformance/numpy_reference.py)",
            "prompt": PROMPT,
            "logits": [[float(v) for v in row] for row in m.logits(PROMPT)],
            "greedy": m.greedy(PROMPT, MAX_NEW_TOKENS),
            "max_new_tokens": MAX_NEW_TOKENS,
            "inv_freq": [float(v) for v in m.inv_freq],
            "attention_scaling": float(m.rope_scale),
        }
        with open(os.path.join(model_dir, "reference.json"), "w") as f:
            json.dump(ref, f)
        print(f"{model_dir}: greedy {ref['greedy']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
