"""IDRnD/ReDimNet torch.hub checkpoints ({"model_config": ReDimNetWrap's arguments, "state_dict": ...}), recognised
by their keys and the config they carry.

This project's ReDimNet follows wespeaker's port, whose blocks differ from IDRnD's (IDRnD's b5 is 9.2M
parameters, wespeaker's 7.66M), so the weights cannot be mapped one to one yet: recognising such a file names
what it is and its stored config, and refuses to import it in one line.
"""

from __future__ import annotations

from lab.errors import ConfigError
from trainers.weights import Converted, Original

FORMAT = "IDRnD/ReDimNet torch.hub checkpoint"
SHOWN = ("F", "C", "block_1d_type", "block_2d_type", "group_divisor", "embed_dim", "pooling_func",
         "global_context_att")


def convert(original: Original) -> Converted | None:
    """None unless `original` is an IDRnD torch.hub checkpoint; ConfigError (naming its config) when it is."""
    config = original.extras.get("model_config")
    if not isinstance(config, dict) or not any(name.startswith("backbone.") for name in original.tensors):
        return None
    parameters = sum(value.numel() for name, value in original.tensors.items() if not name.startswith("spec."))
    stored = " ".join(f"{name}={config[name]}" for name in SHOWN if name in config)
    raise ConfigError(f"{original.path} is an {FORMAT} ({parameters:,} parameters; {stored}): IDRnD's blocks are "
                      "not this project's (wespeaker's port), so it cannot be imported yet")
