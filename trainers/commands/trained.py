"""What `lab generate` and `lab profile` run: a family's model rebuilt from a run's records (imports torch).

    write_generated(store, "sash_001", "sample.wav", seconds=4)
    profile_run(store, "sash_001")   # {"backbone forward": MiB, ...}
"""

from __future__ import annotations

import inspect
from pathlib import Path

from lab.errors import ConfigError, LabError
from lab.families import registry
from lab.families.spec import FamilySpec, Lazy
from lab.records.files import atomic_write, read_json
from lab.records.store import Store
from trainers.commands.progress import StepProgress
from trainers.engine.initial_weights import load_initial_weights
from trainers.family.context import Context
from trainers.formats.audio import wav_bytes


def run_family(store: Store, run_id: str) -> tuple[FamilySpec, object]:
    """The run's family spec and its Config dataclass, from the run's recorded config."""
    run = store.runs.load(run_id)
    if not run.get("family"):
        raise LabError(f"run {run_id} wraps a script of yours, not a built-in family: nothing to rebuild")
    spec = registry.get(run["family"])
    return spec, spec.build_config(store.runs.config(run_id))


def trained_model(store: Store, run_id: str, spec: FamilySpec, config):
    """The run's model with the weights of its best checkpoint (else its last)."""
    try:
        path = store.attempts.latest_checkpoint(run_id, "best")
    except LabError:
        path = store.attempts.latest_checkpoint(run_id, "last")
    model = spec.build_model(config)
    load_initial_weights(model, path, strict=True)
    return model.eval(), path


def trained_data(store: Store, run_id: str) -> dict:
    """The training data's info (`DataBundle.info`) recorded by the run's newest attempt that finished one."""
    for record in reversed(store.attempts.of(run_id)):
        info = read_json(store.attempt_dir(run_id, record["number"]) / "summary.json", {}).get("data")
        if info:
            return info
    return {}


def write_generated(store: Store, run_id: str, out: str | Path, **request) -> tuple[Path, float, float | None, str]:
    """Generate with the run's best weights and write a wav, showing progress on stderr (`StepProgress`);
    returns (path, seconds written, seconds asked (the request's, else the family's default), checkpoint)."""
    spec, config = run_family(store, run_id)
    if spec.generate is None:
        raise LabError(f"the {spec.name} family does not generate audio")
    model, source = trained_model(store, run_id, spec, config)
    function = spec.generate.resolve() if isinstance(spec.generate, Lazy) else spec.generate
    parameters = inspect.signature(function).parameters
    if "data_info" in parameters:  # what the model was trained on, for a family that checks its conditioning
        request = {**request, "data_info": trained_data(store, run_id)}
    progress = StepProgress("generate")
    try:
        audio, rate = spec.generate(model, config, progress=progress, **request)
    except TypeError as error:
        raise LabError(f"{spec.name} generate: {error}") from None
    finally:
        progress.close()
    path = Path(out)
    atomic_write(path, lambda stream: stream.write(wav_bytes(audio, rate)))
    default = parameters.get("seconds")
    asked = request.get("seconds", None if default is None or default.default is default.empty else default.default)
    return path, audio.shape[-1] / rate, asked, source


def embed_files(store: Store, run_id: str, paths: list[str],
                dim: int | None = None) -> tuple[list[list[float]], list[list[float]], str]:
    """Embeddings of audio files with the run's best weights (their first `dim` dims, a Matryoshka prefix, when
    given), and their pairwise cosine scores."""
    import torch.nn.functional as F

    spec, config = run_family(store, run_id)
    if spec.embed is None:
        raise LabError(f"the {spec.name} family makes no embeddings")
    width = getattr(config.model, "embed_dim", None)
    if dim is not None and not (width and 0 < dim <= width):
        raise LabError(f"--dim {dim}: the {spec.name} model's embeddings have {width} dims"
                       + (f" (trained Matryoshka dims: {', '.join(map(str, config.model.mrl_dims))})"
                          if getattr(config.model, "mrl_dims", None) else ""))
    model, source = trained_model(store, run_id, spec, config)
    try:
        embeddings = spec.embed(model, config, paths)  # (N, embed_dim)
    except ValueError as error:  # AudioError names the file
        raise LabError(str(error)) from None
    embeddings = embeddings[:, :dim] if dim else embeddings  # (N, dim)
    normed = F.normalize(embeddings, dim=1)
    return embeddings.tolist(), (normed @ normed.T).tolist(), source


def profile_run(store: Store, run_id: str) -> dict[str, float]:
    """Peak tensor memory of one training step of the run's config, by component (MiB)."""
    spec, config = run_family(store, run_id)
    if spec.profile is None:
        raise LabError(f"the {spec.name} family has no memory profile")
    try:
        data = spec.build_data(config)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{spec.name}: {' '.join(str(error).split())}") from None
    model = spec.build_model(config).train()
    batch = data.collate([data.train[index] for index in range(min(config.train.batch_size, len(data.train)))])
    context = Context(config=config, max_steps=config.train.max_steps, artefacts=store.artefacts_root / run_id)
    return spec.profile(model, batch, context)
