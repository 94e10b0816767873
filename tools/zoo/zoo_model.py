"""The zoo's Llama-architecture model in plain PyTorch, and its Hugging Face files.

Only torch is needed (safetensors are written by hand). The module names and weight
layout are transformers' LlamaForCausalLM, so the saved folder loads unchanged in
transformers and in the project's engine: RMSNorm, rotary embeddings (rotate-half),
grouped-query attention, SwiGLU MLP, tied input/output embeddings.
"""

import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

# name -> architecture. head_dim 64 everywhere; query heads are a multiple of KV heads.
SIZES = {
    "zoo-xs": dict(hidden_size=128, intermediate_size=384, num_hidden_layers=2,
                   num_attention_heads=2, num_key_value_heads=1),
    "zoo-s": dict(hidden_size=128, intermediate_size=384, num_hidden_layers=6,
                  num_attention_heads=2, num_key_value_heads=1),
    "zoo-m": dict(hidden_size=192, intermediate_size=576, num_hidden_layers=5,
                  num_attention_heads=3, num_key_value_heads=1),
    "zoo-l": dict(hidden_size=384, intermediate_size=1152, num_hidden_layers=8,
                  num_attention_heads=6, num_key_value_heads=2),
}
HEAD_DIM = 64


def make_config(size, vocab_size, eos_id, pad_id, max_positions, rope_theta):
    arch = SIZES[size]
    return dict(
        architectures=["LlamaForCausalLM"],
        model_type="llama",
        vocab_size=vocab_size,
        head_dim=HEAD_DIM,
        hidden_act="silu",
        max_position_embeddings=max_positions,
        rms_norm_eps=1e-5,
        rope_theta=rope_theta,
        rope_scaling=None,
        # transformers 5 reads this spelling; 4.x reads the two fields above.
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
        attention_bias=False,
        mlp_bias=False,
        attention_dropout=0.0,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        initializer_range=0.02,
        torch_dtype="bfloat16",
        use_cache=True,
        **arch,
    )


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rope_tables(seq_len, head_dim, theta, device):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim))
    t = torch.arange(seq_len, device=device).float()
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def causal_attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0 (flash attention on GPUs)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    t = q.shape[-2]
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return torch.softmax(s.float(), dim=-1).to(q.dtype) @ v


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h, self.kv = c["num_attention_heads"], c["num_key_value_heads"]
        d = c["hidden_size"]
        self.q_proj = nn.Linear(d, self.h * HEAD_DIM, bias=False)
        self.k_proj = nn.Linear(d, self.kv * HEAD_DIM, bias=False)
        self.v_proj = nn.Linear(d, self.kv * HEAD_DIM, bias=False)
        self.o_proj = nn.Linear(self.h * HEAD_DIM, d, bias=False)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.h, HEAD_DIM).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv, HEAD_DIM).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv, HEAD_DIM).transpose(1, 2)
        cos, sin = cos[:t].to(q.dtype), sin[:t].to(q.dtype)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.h // self.kv
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        o = causal_attention(q, k, v)
        return self.o_proj(o.transpose(1, 2).reshape(b, t, self.h * HEAD_DIM))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, i = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(d, i, bias=False)
        self.up_proj = nn.Linear(d, i, bias=False)
        self.down_proj = nn.Linear(i, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.mlp = MLP(c)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Inner(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class ZooLlama(nn.Module):
    """LlamaForCausalLM's structure: model.embed_tokens, model.layers.N..., model.norm,
    lm_head tied to the embedding."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.model = Inner(config)
        std = config["initializer_range"]
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=std)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=std)
        # Scaled init of the residual projections (GPT-2), which trains deep stacks faster.
        scale = std / math.sqrt(2 * config["num_hidden_layers"])
        for layer in self.model.layers:
            nn.init.normal_(layer.self_attn.o_proj.weight, std=scale)
            nn.init.normal_(layer.mlp.down_proj.weight, std=scale)
        self._rope = None

    def rope(self, t, device):
        if self._rope is None or self._rope[0].shape[0] < t or self._rope[0].device != device:
            self._rope = rope_tables(max(t, 4096), HEAD_DIM, self.config["rope_theta"], device)
        return self._rope

    def hidden(self, ids):
        """The final-norm hidden states, (batch, tokens, hidden_size)."""
        cos, sin = self.rope(ids.shape[1], ids.device)
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        return self.model.norm(x)

    def logits(self, hidden):
        """The tied output head on hidden states of any leading shape."""
        return F.linear(hidden, self.model.embed_tokens.weight)

    def forward(self, ids):
        return self.logits(self.hidden(ids))


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


def save_safetensors_bf16(state, path):
    """Writes tensors as BF16 safetensors (the format: 8-byte header length, JSON
    header of dtype/shape/offsets, raw little-endian data)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(state):
        t = state[name].detach().to("cpu", torch.bfloat16).contiguous()
        raw = t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def load_safetensors(path):
    """{name: tensor} of a safetensors file (the dtypes the zoo writes: BF16, F32)."""
    dtypes = {"BF16": (torch.int16, torch.bfloat16), "F32": (torch.int32, torch.float32)}
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    state = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] not in dtypes:
            raise ValueError(f"{path}: tensor {name} has dtype {meta['dtype']}; "
                             f"only {sorted(dtypes)} are read")
        raw_type, dtype = dtypes[meta["dtype"]]
        begin, end = meta["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=raw_type).view(dtype)
        state[name] = t.reshape(meta["shape"]).clone()
    return state


def load_pretrained(model_dir, device="cpu"):
    """A ZooLlama with the config and weights of a folder save_pretrained wrote."""
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    model = ZooLlama(config)
    state = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    missing, unexpected = model.load_state_dict(
        {k: v.float() for k, v in state.items()}, strict=False)
    if missing or unexpected:
        raise ValueError(f"{model_dir}: weights do not fit the config "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(device)


def save_pretrained(model, out_dir, generation_max_new_tokens=512):
    """config.json, model.safetensors (bf16, no lm_head: it is tied),
    generation_config.json."""
    os.makedirs(out_dir, exist_ok=True)
    c = model.config
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("_")}
    save_safetensors_bf16(state, os.path.join(out_dir, "model.safetensors"))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")
    gen = {"eos_token_id": c["eos_token_id"], "pad_token_id": c["pad_token_id"],
           "do_sample": False, "max_new_tokens": generation_max_new_tokens}
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
        f.write("\n")
