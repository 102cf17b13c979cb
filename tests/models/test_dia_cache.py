"""Dia's cached decoding: one step at a time with the self-attention KV cache and the cross-attention keys and
values computed once gives the teacher-forced (full-sequence) logits."""

import torch
from tolerances import assert_equal_up_to_rounding

from lab.families import registry
from trainers.dia import family

SPEC = registry.get("dia")


def test_cached_decoding_gives_the_full_sequence_logits():
    torch.manual_seed(0)
    config = SPEC.build_config(SPEC.resolve(preset="tiny"))
    model = family.build_model(config).eval()
    steps, channels = 12, config.model.channels
    text = torch.randint(1, 256, (2, 10))
    text_mask = torch.ones_like(text, dtype=torch.bool)
    text_mask[1, 6:] = False  # the second row's text is shorter
    tokens = torch.randint(0, 1024, (2, steps, channels))
    with torch.no_grad():
        full = model(text, tokens, text_mask)  # (B, T, C, V)
        cross = model.cross_sources(model.encode(text, text_mask))
        cache = model.new_cache(2, steps, torch.device("cpu"), torch.float32)
        stepped = torch.stack([model.decode_step(tokens[:, t], t, cross, text_mask, cache) for t in range(steps)],
                              dim=1)
    depth = 4 * config.model.dec_layers + 2  # each layer's two attentions, MLP and norms in sequence, then the head
    assert_equal_up_to_rounding(stepped, full, depth)
