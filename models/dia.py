"""A Dia-style encoder-decoder over multi-codebook audio tokens (nari-labs/dia), in one file.

    model = Dia(config)                                  # config: trainers.dia.config.ModelConfig
    logits = model(text, tokens)                         # text (B, S) bytes, tokens (B, T, C) -> (B, T, C, V)
    memory = model.encode(text); cache = model.new_cache(batch, steps)
    logits, cache = model.decode_step(tokens_t, memory, text_mask, cache)   # one step with a KV cache

Encoder: byte embeddings, pre-RMSNorm bidirectional self-attention with RoPE and gated-SiLU MLPs. Decoder: the
sum of one embedding per codebook channel, causal grouped-query self-attention, cross-attention to the encoder,
gated-SiLU MLPs, all pre-RMSNorm; the head maps d_model to (channels, vocab). No biases anywhere; attention
uses `attention_scale` (Dia: 1.0, no 1/sqrt(head_dim)). Cross-attention rotates its queries and keys as the first
Dia-1.6B release does, or not at all (`cross_rope=False`, as Dia-1.6B-0626).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def unconditional(text: torch.Tensor, text_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The unconditional input of classifier-free guidance as nari-labs/dia builds it: zero bytes (B, S) under
    the conditional text's mask (B, S), so the encoder sees as many positions as the condition has."""
    return torch.zeros_like(text), text_mask


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * self.weight.float()).to(x.dtype)


def rotary(x: torch.Tensor, positions: torch.Tensor, min_timescale: float, max_timescale: float) -> torch.Tensor:
    """Rotary position embedding of x (B, H, T, D) at positions (B, T) or (T,), half-split layout."""
    half = x.shape[-1] // 2
    fraction = 2 * torch.arange(half, device=x.device, dtype=torch.float32) / x.shape[-1]
    timescale = min_timescale * (max_timescale / min_timescale) ** fraction  # (D/2,)
    angles = positions.float().unsqueeze(-1) / timescale  # (..., T, D/2)
    if angles.dim() == 3:
        angles = angles.unsqueeze(1)  # (B, 1, T, D/2)
    sin, cos = torch.sin(angles), torch.cos(angles)
    first, second = x.float()[..., :half], x.float()[..., half:]
    return torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1).to(x.dtype)


class GatedMLP(nn.Module):
    """down(silu(gate(x)) * up(x)), no biases."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.gate = nn.Linear(width, hidden, bias=False)
        self.up = nn.Linear(width, hidden, bias=False)
        self.down = nn.Linear(hidden, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


@dataclass
class Rope:
    min_timescale: float
    max_timescale: float
    enabled: bool = True  # False: positions are ignored (cross-attention of Dia-1.6B-0626)

    def __call__(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        return rotary(x, positions, self.min_timescale, self.max_timescale)


class Attention(nn.Module):
    """Multi-head attention with grouped key/value heads (kv_heads divides q_heads) and RoPE on q and k."""

    def __init__(self, width: int, source_width: int, q_heads: int, kv_heads: int, head_dim: int, scale: float,
                 rope: Rope):
        super().__init__()
        self.q_heads, self.kv_heads, self.head_dim, self.scale, self.rope = q_heads, kv_heads, head_dim, scale, rope
        self.q = nn.Linear(width, q_heads * head_dim, bias=False)
        self.k = nn.Linear(source_width, kv_heads * head_dim, bias=False)
        self.v = nn.Linear(source_width, kv_heads * head_dim, bias=False)
        self.out = nn.Linear(q_heads * head_dim, width, bias=False)

    def heads(self, x: torch.Tensor, count: int) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], count, self.head_dim).transpose(1, 2)  # (B, H, T, Dh)

    def keys_values(self, source: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotated keys and values of `source` (B, S, W): each (B, Hkv, S, Dh)."""
        keys = self.rope(self.heads(self.k(source), self.kv_heads), positions)
        return keys, self.heads(self.v(source), self.kv_heads)

    def attend(self, x: torch.Tensor, positions: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
               mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, W) attending to keys/values (B, Hkv, S, Dh); mask (B or 1, 1, T, S) True where allowed."""
        queries = self.rope(self.heads(self.q(x), self.q_heads), positions)  # (B, Hq, T, Dh)
        repeat = self.q_heads // self.kv_heads
        if repeat > 1:
            keys, values = keys.repeat_interleave(repeat, dim=1), values.repeat_interleave(repeat, dim=1)
        attended = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask, scale=self.scale)
        return self.out(attended.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))


class EncoderLayer(nn.Module):
    def __init__(self, config, rope: Rope):
        super().__init__()
        width = config.enc_d_model
        self.attention_norm = RMSNorm(width, config.norm_eps)
        self.attention = Attention(width, width, config.enc_heads, config.enc_heads, config.enc_head_dim,
                                   config.attention_scale, rope)
        self.mlp_norm = RMSNorm(width, config.norm_eps)
        self.mlp = GatedMLP(width, config.enc_ffn)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        normed = self.attention_norm(x)
        keys, values = self.attention.keys_values(normed, positions)
        x = x + self.attention.attend(normed, positions, keys, values, mask)
        return x + self.mlp(self.mlp_norm(x))


class DecoderLayer(nn.Module):
    def __init__(self, config, rope: Rope, cross_rope: Rope):
        super().__init__()
        width = config.dec_d_model
        self.self_norm = RMSNorm(width, config.norm_eps)
        self.self_attention = Attention(width, width, config.dec_q_heads, config.dec_kv_heads, config.dec_head_dim,
                                        config.attention_scale, rope)
        self.cross_norm = RMSNorm(width, config.norm_eps)
        self.cross_attention = Attention(width, config.enc_d_model, config.cross_heads, config.cross_heads,
                                         config.cross_head_dim, config.attention_scale, cross_rope)
        self.mlp_norm = RMSNorm(width, config.norm_eps)
        self.mlp = GatedMLP(width, config.dec_ffn)

    def cross_keys_values(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention keys and values of the encoder output memory (B, S, enc_d_model): each (B, H, S, Dh)."""
        return self.cross_attention.keys_values(memory, torch.arange(memory.shape[1], device=memory.device))

    def forward(self, x, positions, self_mask, cross, cross_mask, cache=None, cache_at=None):
        """`cross` is the encoder output (B, S, enc_d_model), or its `cross_keys_values` computed once for
        decoding. With `cache` ((B, Hkv, steps, Dh) keys and values), writes this step's keys at `cache_at` and
        attends over the cache; otherwise attends over x itself."""
        if isinstance(cross, torch.Tensor):
            cross = self.cross_attention.keys_values(cross, torch.arange(cross.shape[1], device=cross.device))
        cross_keys, cross_values = cross
        normed = self.self_norm(x)
        keys, values = self.self_attention.keys_values(normed, positions)
        if cache is not None:
            cache[0][:, :, cache_at:cache_at + x.shape[1]] = keys
            cache[1][:, :, cache_at:cache_at + x.shape[1]] = values
            keys, values = cache
        x = x + self.self_attention.attend(normed, positions, keys, values, self_mask)
        x = x + self.cross_attention.attend(self.cross_norm(x), positions, cross_keys, cross_values, cross_mask)
        return x + self.mlp(self.mlp_norm(x))


class Dia(nn.Module):
    """Text (bytes) or tags in, (channels, vocab) logits per audio step out."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        rope = Rope(config.rope_min_timescale, config.rope_max_timescale)
        self.cross_rope = Rope(config.rope_min_timescale, config.rope_max_timescale, config.cross_rope)
        self.text_embedding = nn.Embedding(config.text_vocab, config.enc_d_model)
        self.encoder_layers = nn.ModuleList(EncoderLayer(config, rope) for _ in range(config.enc_layers))
        self.encoder_norm = RMSNorm(config.enc_d_model, config.norm_eps)
        self.audio_embeddings = nn.ModuleList(nn.Embedding(config.vocab, config.dec_d_model)
                                              for _ in range(config.channels))
        self.decoder_layers = nn.ModuleList(DecoderLayer(config, rope, self.cross_rope)
                                            for _ in range(config.dec_layers))
        self.decoder_norm = RMSNorm(config.dec_d_model, config.norm_eps)
        self.head = nn.Linear(config.dec_d_model, config.channels * config.vocab, bias=False)
        self.apply(self._initialise)

    def _initialise(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def encode(self, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """text (B, S) byte ids, text_mask (B, S) True for real bytes -> (B, S, enc_d_model)."""
        return self._encode(text, text_mask)

    def _encode(self, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """`encode`'s body, which `forward` calls too: `encode` is an entry point of its own (a sharded model
        gathers the root's parameters around it), `forward` already is one."""
        positions = torch.arange(text.shape[1], device=text.device)
        mask = (text_mask.unsqueeze(1) & text_mask.unsqueeze(2)).unsqueeze(1)  # (B, 1, S, S)
        # every position may attend itself, so an all-padding row (unconditional text) has a finite softmax
        mask = mask | torch.eye(text.shape[1], dtype=torch.bool, device=text.device)
        x = self.text_embedding(text)
        for layer in self.encoder_layers:
            x = layer(x, positions, mask)
        return self.encoder_norm(x)

    def embed_audio(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, C) token ids -> (B, T, dec_d_model): the sum of the channels' embeddings."""
        return sum(embedding(tokens[..., c]) for c, embedding in enumerate(self.audio_embeddings))

    def cross_sources(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each decoder layer's cross-attention keys and values of the encoder output (computed once)."""
        return [layer.cross_keys_values(memory) for layer in self.decoder_layers]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, d) -> (B, T, C, V) in float32."""
        return self.head(self.decoder_norm(x)).float().view(*x.shape[:2], self.config.channels, self.config.vocab)

    def forward(self, text: torch.Tensor, tokens: torch.Tensor, text_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, T, C, V) for decoder input tokens (B, T, C)."""
        text_mask = text_mask if text_mask is not None else torch.ones_like(text, dtype=torch.bool)
        memory = self._encode(text, text_mask)
        steps = tokens.shape[1]
        positions = torch.arange(steps, device=tokens.device)
        causal = torch.ones(steps, steps, dtype=torch.bool, device=tokens.device).tril()[None, None]
        cross_mask = text_mask[:, None, None, :]  # (B, 1, 1, S)
        x = self.embed_audio(tokens)
        for layer in self.decoder_layers:
            x = layer(x, positions, causal, memory, cross_mask)
        return self.logits(x)

    def new_cache(self, batch: int, steps: int, device: torch.device, dtype: torch.dtype) -> list:
        """Empty self-attention caches for `steps` decoder steps: per layer (keys, values) (B, Hkv, steps, Dh)."""
        shape = (batch, self.config.dec_kv_heads, steps, self.config.dec_head_dim)
        return [(torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype))
                for _ in self.decoder_layers]

    def decode_step(self, tokens: torch.Tensor, step: int, cross: list, text_mask: torch.Tensor,
                    cache: list) -> torch.Tensor:
        """Logits (B, C, V) of the next step after feeding tokens (B, C) at position `step`, using the cache."""
        x = self.embed_audio(tokens.unsqueeze(1))  # (B, 1, d)
        positions = torch.tensor([step], device=tokens.device)
        allowed = (torch.arange(cache[0][0].shape[2], device=tokens.device) <= step)[None, None, None, :]
        cross_mask = text_mask[:, None, None, :]
        for layer, keys_values, layer_cache in zip(self.decoder_layers, cross, cache):
            x = layer(x, positions, allowed, keys_values, cross_mask, cache=layer_cache, cache_at=step)
        return self.logits(x)[:, 0]
