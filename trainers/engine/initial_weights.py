"""Weights only, for a run that starts from a file (`train.init_from`, `lab new-run --init-from`) and for the
commands that rebuild a trained run: the file read and recognised (`trainers.formats.weights`), every key checked
by name and shape, and a report of what loaded."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from lab.errors import ConfigError
from trainers.formats import weights as formats


@dataclass
class KeyReport:
    """How a weights file matched a model: its format, what loaded, and every key that did not."""

    source: str
    loaded: int
    total: int
    missing: list[str]  # in the model, not in the file
    unexpected: list[str]  # in the file, not in the model
    mismatched: list[str]  # in both, with different shapes: "name (file shape -> model shape)"
    format: str = "lab"  # what the file was recognised as (trainers.formats.weights): "lab", an original's,
    # "unrecognised"
    settings: dict = field(default_factory=dict)  # settings without weights the file's format set on the model
    dropped: list[str] = field(default_factory=list)  # the original's tensors left out on purpose
    fresh: list[str] = field(default_factory=list)  # training-only tensors kept as initialised: the file has none of
    # them, or has them all at other shapes ("head.weight ((24, 64) -> (30, 64))")

    @property
    def clean(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self) -> str:
        """One line, then a line per kind of problem (first few keys of each)."""
        lines = [f"init_from {self.source} ({self.format}): loaded {self.loaded} of {self.total} model tensors"]
        if self.dropped:
            lines.append(f"  left out ({len(self.dropped)}: constants, unused layers, the original's training head): "
                         + ", ".join(self.dropped[:3]) + (" ..." if len(self.dropped) > 3 else ""))
        if self.fresh:
            where = "of another size in the file" if self.fresh[0].endswith(")") else "not in the file"  # all alike
            lines.append(f"  kept as initialised ({len(self.fresh)}): the training-only "
                         + ", ".join(self.fresh[:3]) + (" ..." if len(self.fresh) > 3 else "") + f", {where}")
        if self.settings:
            lines.append("  the run's own settings kept (they carry no weights); the file's model has: " + ", ".join(
                f"{name}={value}" for name, value in self.settings.items()))
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                            ("shape-mismatched", self.mismatched)):
            if keys:
                shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
                lines.append(f"  {label} ({len(keys)}): {shown}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return asdict(self)


def load_initial_weights(model: torch.nn.Module, source: str, strict: bool = True) -> KeyReport:
    """Load weights only (no optimizer, no progress) from `source` ('PATH' or 'PATH:KEY') into `model`.

    The file is this project's (an engine checkpoint or a state dict) or an original repository's, recognised
    by its keys and converted (`trainers.formats.weights`). Settings its format fixes without weights
    (Dia-1.6B-0626's cross-attention without RoPE) are the run's config's to choose, so that its records say what
    ran: `lab new-run --init-from` writes the file's into the config unless set otherwise, and a model that
    differs keeps its own (`KeyReport.settings` lists the file's). Every key is checked by name and shape;
    nothing mismatched is ever loaded silently. With `strict`, any missing, unexpected or shape-mismatched key is
    a ConfigError naming them; otherwise the matching tensors load and the report lists the rest. The tensors of
    a model's `training_only` submodules (ReDimNet's AAM head over the training speakers) stay as initialised
    when the file holds none of them, as published originals do not, or holds all of them at other shapes (a
    checkpoint trained on another number of speakers).
    """
    path, key = formats.split_source(source)
    try:
        original = formats.read(path, key)
    except ConfigError as error:
        raise ConfigError(f"init_from: {error}") from None
    expected = model.state_dict()
    converted = formats.for_model(original, set(expected))
    weights = converted.weights
    matching = {name: value for name, value in weights.items()
                if name in expected and value.shape == expected[name].shape}
    settings = {name: value for name, value in converted.settings.items()
                if getattr(model.config, name.removeprefix("model."), value) != value}
    training_only = tuple(f"{name}." for name in getattr(model, "training_only", ()))
    fresh = sorted(name for name in expected if name.startswith(training_only))
    held = [name for name in fresh if name in weights]
    resized = bool(held) and len(held) == len(fresh) and all(weights[name].shape != expected[name].shape
                                                             for name in held)
    if converted.format == "unrecognised" or (held and not resized):
        fresh = []
    report = KeyReport(
        source=source,
        loaded=len(matching),
        total=len(expected),
        missing=sorted(name for name in expected if name not in weights and name not in fresh),
        unexpected=sorted(name for name in weights if name not in expected),
        mismatched=sorted(f"{name} ({tuple(value.shape)} -> {tuple(expected[name].shape)})"
                          for name, value in weights.items()
                          if name in expected and value.shape != expected[name].shape and name not in fresh),
        format=converted.format,
        settings=settings,
        dropped=converted.dropped,
        fresh=[f"{name} ({tuple(weights[name].shape)} -> {tuple(expected[name].shape)})" if resized else name
               for name in fresh],
    )
    if strict and not report.clean:
        hint = ""
        if converted.config and (report.missing or report.mismatched):
            hint = f"; the file's model: {formats.overrides(converted)}"
        raise ConfigError(" ".join(report.describe().split()) + hint + "; set train.init_strict=false to load the rest")
    model.load_state_dict(matching, strict=False)
    return report
