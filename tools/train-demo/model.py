"""The GLM-2/3 decoder in plain PyTorch, with the Hugging Face ChatGLM tensor names.

Same computation as THUDM's modeling_chatglm.py (no dropout, no KV cache): RMSNorm, fused QKV
with bias split contiguously as Q|K|V, RoPE on the first half of each head's channels as adjacent
pairs (base 10000), multi-query attention where head h uses KV group h // (heads / groups),
softmax(q.k / sqrt(head_dim)) with a causal mask, dense without bias, SwiGLU with the first half
as the gate, final RMSNorm, untied output layer.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Config:
    def __init__(self, **kw):
        self.hidden_size = 256
        self.num_layers = 4
        self.num_attention_heads = 8
        self.kv_channels = 32
        self.multi_query_group_num = 2
        self.ffn_hidden_size = 512
        self.padded_vocab_size = 4096
        self.layernorm_epsilon = 1e-5
        self.seq_length = 2048  # the context written to config.json; RoPE is computed for any length
        self.rope_base = 10000.0
        self.__dict__.update(kw)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        var = x.float().pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rope_cache(cfg, T, device=None):
    rot = cfg.kv_channels // 2
    theta = 1.0 / (cfg.rope_base ** (torch.arange(0, rot, 2, dtype=torch.float32, device=device) / rot))
    ang = torch.outer(torch.arange(T, dtype=torch.float32, device=device), theta)  # [T, rot/2]
    return torch.cos(ang), torch.sin(ang)


def apply_rope(x, cos, sin):
    """x: [B, H, T, D]; rotates channels [0, D/2) as pairs (2i, 2i+1)."""
    rot = cos.shape[-1] * 2
    xr, xp = x[..., :rot], x[..., rot:]
    xr = xr.reshape(*xr.shape[:-1], rot // 2, 2)
    x0, x1 = xr[..., 0], xr[..., 1]
    o0 = x0 * cos - x1 * sin
    o1 = x1 * cos + x0 * sin
    return torch.cat([torch.stack([o0, o1], -1).flatten(-2), xp], -1)


class SelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        nh, d, g = cfg.num_attention_heads, cfg.kv_channels, cfg.multi_query_group_num
        self.query_key_value = nn.Linear(cfg.hidden_size, nh * d + 2 * g * d, bias=True)
        self.dense = nn.Linear(nh * d, cfg.hidden_size, bias=False)

    def forward(self, x, cos, sin):
        cfg = self.cfg
        B, T, _ = x.shape
        nh, d, g = cfg.num_attention_heads, cfg.kv_channels, cfg.multi_query_group_num
        qkv = self.query_key_value(x)
        q, k, v = qkv.split([nh * d, g * d, g * d], dim=-1)
        q = q.view(B, T, nh, d).transpose(1, 2)
        k = k.view(B, T, g, d).transpose(1, 2)
        v = v.view(B, T, g, d).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        rep = nh // g  # head h -> group h // rep
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        s = s.masked_fill(mask, float("-inf"))
        p = torch.softmax(s.float(), dim=-1).to(v.dtype)
        o = torch.matmul(p, v).transpose(1, 2).reshape(B, T, nh * d)
        return self.dense(o)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(cfg.hidden_size, 2 * cfg.ffn_hidden_size, bias=False)
        self.dense_4h_to_h = nn.Linear(cfg.ffn_hidden_size, cfg.hidden_size, bias=False)

    def forward(self, x):
        a, b = self.dense_h_to_4h(x).chunk(2, dim=-1)
        return self.dense_4h_to_h(F.silu(a) * b)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.layernorm_epsilon)
        self.self_attention = SelfAttention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.layernorm_epsilon)
        self.mlp = MLP(cfg)

    def forward(self, h, cos, sin):
        h = h + self.self_attention(self.input_layernorm(h), cos, sin)
        return h + self.mlp(self.post_attention_layernorm(h))


class Embedding(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.padded_vocab_size, cfg.hidden_size)


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg.num_layers)])
        self.final_layernorm = RMSNorm(cfg.hidden_size, cfg.layernorm_epsilon)


class Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embedding = Embedding(cfg)
        self.encoder = Encoder(cfg)
        self.output_layer = nn.Linear(cfg.hidden_size, cfg.padded_vocab_size, bias=False)


class ChatGLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.transformer = Transformer(cfg)

    def init_weights(self, seed):
        g = torch.Generator().manual_seed(seed)
        std = 0.02
        for name, p in self.named_parameters():
            if name.endswith("layernorm.weight"):
                nn.init.ones_(p)
            elif name.endswith(".bias"):
                nn.init.zeros_(p)
            else:
                s = std / math.sqrt(2 * self.cfg.num_layers) if name.endswith(("dense.weight", "dense_4h_to_h.weight")) else std
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=g) * s)

    def hidden(self, ids):
        """Final-norm hidden states [B, T, hidden] for ids [B, T] at positions 0..T-1."""
        t = self.transformer
        h = t.embedding.word_embeddings(ids)
        cos, sin = rope_cache(self.cfg, ids.shape[1], ids.device)
        for layer in t.encoder.layers:
            h = layer(h, cos, sin)
        return t.encoder.final_layernorm(h)

    def forward(self, ids):
        return self.transformer.output_layer(self.hidden(ids))
