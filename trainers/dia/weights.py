"""nari-labs/dia checkpoints (Dia-1.6B first release `dia-v0_1.pth`, Dia-1.6B-0626 `model.safetensors`) in this
project's keys.

Both releases store DenseGeneral kernels, input dimensions first: q/k/v (E, H, D), o (H, D, E), the fused MLP
input (E, 2, F) holding gate then up, its output (F, E), the logits (D, C, V). nn.Linear holds (out, in), so each
kernel is flattened to (in, out) and transposed:

    encoder.embedding -> text_embedding              decoder.embeddings.{c} -> audio_embeddings.{c}
    encoder.layers.{i}.pre_sa_norm -> encoder_layers.{i}.attention_norm, post_sa_norm -> mlp_norm
    decoder.layers.{i}.pre_sa_norm / pre_ca_norm / pre_mlp_norm -> self_norm / cross_norm / mlp_norm
    *.self_attention|cross_attention.{q,k,v,o}_proj -> *.{q,k,v,out}     *.mlp.wi_fused -> mlp.gate, mlp.up
    *.mlp.wo -> mlp.down     encoder.norm -> encoder_norm     decoder.norm -> decoder_norm     logits_dense -> head

The releases share the key layout; they differ in cross-attention, which the 0626 code runs without RoPE. A
config.json beside the file tells them apart (0626's has `encoder_config`); without one the file is taken for the
first release.
"""

from __future__ import annotations

import re

import torch

from trainers.formats.weights import Converted, Original

FIRST, LATEST = "nari-labs/dia Dia-1.6B first release", "nari-labs/dia Dia-1.6B-0626"
NORMS = {"encoder": {"pre_sa_norm": "attention_norm", "post_sa_norm": "mlp_norm"},
         "decoder": {"pre_sa_norm": "self_norm", "pre_ca_norm": "cross_norm", "pre_mlp_norm": "mlp_norm"}}
PROJECTIONS = {"q_proj": "q", "k_proj": "k", "v_proj": "v"}
ATTENTIONS = {"encoder": {"self_attention": "attention"},
              "decoder": {"self_attention": "self_attention", "cross_attention": "cross_attention"}}


def linear(kernel: torch.Tensor, inputs: int) -> torch.Tensor:
    """A DenseGeneral kernel whose first `inputs` dimensions are contracted, as an nn.Linear weight (out, in)."""
    width = kernel.shape[:inputs].numel()
    return kernel.reshape(width, -1).T.contiguous()


def layer_key(side: str, index: str, rest: str, value: torch.Tensor) -> dict[str, torch.Tensor] | None:
    """The project's tensors for one original layer tensor `<side>.layers.<index>.<rest>`; None if unknown."""
    prefix = f"{'encoder' if side == 'encoder' else 'decoder'}_layers.{index}"
    module, _, leaf = rest.rpartition(".")
    if leaf != "weight":
        return None
    if module in NORMS[side]:
        return {f"{prefix}.{NORMS[side][module]}.weight": value}
    if module == "mlp.wi_fused":  # (E, 2, F): gate then up
        return {f"{prefix}.mlp.gate.weight": value[:, 0].T.contiguous(), f"{prefix}.mlp.up.weight":
                value[:, 1].T.contiguous()}
    if module == "mlp.wo":
        return {f"{prefix}.mlp.down.weight": linear(value, 1)}
    attention, _, projection = module.partition(".")
    if attention in ATTENTIONS[side] and projection in PROJECTIONS:
        return {f"{prefix}.{ATTENTIONS[side][attention]}.{PROJECTIONS[projection]}.weight": linear(value, 1)}
    if attention in ATTENTIONS[side] and projection == "o_proj":  # (H, D, E)
        return {f"{prefix}.{ATTENTIONS[side][attention]}.out.weight": linear(value, 2)}
    return None


def config_of(tensors: dict[str, torch.Tensor]) -> dict:
    """The model's sizes from the shapes of its tensors."""
    def count(side: str) -> int:
        pattern = re.compile(rf"{side}\.layers\.(\d+)\.")
        return 1 + max(int(match.group(1)) for name in tensors if (match := pattern.match(name)))

    encoder_q = tensors["encoder.layers.0.self_attention.q_proj.weight"]  # (E, H, D)
    decoder_q = tensors["decoder.layers.0.self_attention.q_proj.weight"]  # (D, Hq, Dh)
    decoder_k = tensors["decoder.layers.0.self_attention.k_proj.weight"]  # (D, Hkv, Dh)
    cross_q = tensors["decoder.layers.0.cross_attention.q_proj.weight"]
    logits = tensors["decoder.logits_dense.weight"]  # (D, C, V)
    return {
        "model.enc_layers": count("encoder"), "model.enc_d_model": encoder_q.shape[0],
        "model.enc_ffn": tensors["encoder.layers.0.mlp.wo.weight"].shape[0], "model.enc_heads": encoder_q.shape[1],
        "model.enc_head_dim": encoder_q.shape[2], "model.text_vocab": tensors["encoder.embedding.weight"].shape[0],
        "model.dec_layers": count("decoder"), "model.dec_d_model": decoder_q.shape[0],
        "model.dec_ffn": tensors["decoder.layers.0.mlp.wo.weight"].shape[0], "model.dec_q_heads": decoder_q.shape[1],
        "model.dec_kv_heads": decoder_k.shape[1], "model.dec_head_dim": decoder_q.shape[2],
        "model.cross_heads": cross_q.shape[1], "model.cross_head_dim": cross_q.shape[2],
        "model.channels": logits.shape[1], "model.vocab": logits.shape[2],
    }


def convert(original: Original) -> Converted | None:
    """`original` in Dia keys, or None when it is not a nari-labs/dia DiaModel state dict."""
    tensors = original.tensors
    if not {"encoder.embedding.weight", "decoder.logits_dense.weight",
            "encoder.layers.0.self_attention.q_proj.weight"} <= set(tensors):
        return None
    weights: dict[str, torch.Tensor] = {}
    unknown = []
    for name, value in tensors.items():
        match = re.match(r"(encoder|decoder)\.layers\.(\d+)\.(.+)", name)
        if match:
            converted = layer_key(match.group(1), match.group(2), match.group(3), value)
        elif name == "encoder.embedding.weight":
            converted = {"text_embedding.weight": value}
        elif name.startswith("decoder.embeddings."):
            converted = {name.replace("decoder.embeddings.", "audio_embeddings.", 1): value}
        elif name in ("encoder.norm.weight", "decoder.norm.weight"):
            converted = {name.replace(".norm.", "_norm.", 1): value}
        elif name == "decoder.logits_dense.weight":
            converted = {"head.weight": linear(value, 1)}
        else:
            converted = None
        if converted is None:
            unknown.append(name)
        else:
            weights.update(converted)
    weights.update({name: tensors[name] for name in unknown})  # left for the key report to name
    latest = "encoder_config" in original.sidecar
    config = {**config_of(tensors), "model.attention_scale": 1.0, "model.cross_rope": not latest}
    return Converted(family="dia", format=LATEST if latest else FIRST, weights=weights, config=config,
                     settings={"model.cross_rope": not latest})
