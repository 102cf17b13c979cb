"""What `lab generate` and `lab profile` run: a family's model rebuilt from a run's records (imports torch).

    write_generated(store, "sash_001", num=2, seconds=4)   # two samples recorded on the run
    profile_run(store, "sash_001")   # {"backbone forward": MiB, ...}
"""

from __future__ import annotations

import inspect
from pathlib import Path

from lab.errors import ConfigError, LabError
from lab.families import registry
from lab.families.spec import FamilySpec, Lazy
from lab.records import samples
from lab.records.files import atomic_write, read_json
from lab.records.store.names import now_iso
from lab.records.store import Store
from trainers.commands.progress import StepProgress
from trainers.engine.initial_weights import load_initial_weights
from trainers.family.context import Context
from trainers.formats.audio import audio_stats, flac_bytes, wav_bytes


def run_family(store: Store, run_id: str) -> tuple[FamilySpec, object]:
    """The run's family spec and its Config dataclass, from the run's recorded config."""
    run = store.runs.load(run_id)
    if not run.get("family"):
        raise LabError(f"run {run_id} wraps a script of yours, not a built-in family: nothing to rebuild")
    spec = registry.get(run["family"])
    return spec, spec.build_config(store.runs.config(run_id))


def trained_model(store: Store, run_id: str, spec: FamilySpec, config):
    """The run's model with the weights of its best checkpoint (else its last), and that checkpoint's path."""
    try:
        path = store.attempts.latest_checkpoint(run_id, "best")
    except LabError:
        path = store.attempts.latest_checkpoint(run_id, "last")
    model = spec.build_model(config)
    load_initial_weights(model, path, strict=True)
    return model.eval(), path


def checkpoint_record(store: Store, run_id: str, path: str) -> tuple[int, str, int | None]:
    """(Test number, kind, step) of the attempt that recorded the checkpoint at `path`."""
    for record in reversed(store.attempts.of(run_id)):
        for kind, entry in (record.get("checkpoints") or {}).items():
            if entry.get("path") == path:
                return record["number"], kind, entry.get("step")
    raise LabError(f"no attempt of {run_id} recorded the checkpoint {path}")


def trained_data(store: Store, run_id: str) -> dict:
    """The training data's info (`DataBundle.info`) recorded by the run's newest attempt that finished one."""
    for record in reversed(store.attempts.of(run_id)):
        info = read_json(store.attempt_dir(run_id, record["number"]) / "summary.json", {}).get("data")
        if info:
            return info
    return {}


def generate_audio(spec: FamilySpec, model, config, num: int, request: dict) -> tuple[list, int]:
    """`num` samples of the family's `generate` ((channels, frames) arrays, rate): in one batch where the family
    takes `num`, else one after another with seeds seed, seed + 1, ..."""
    function = spec.generate.resolve() if isinstance(spec.generate, Lazy) else spec.generate
    progress = StepProgress("generate")
    try:
        if "num" in inspect.signature(function).parameters:
            batch, rate = function(model, config, progress=progress, num=num, **request)  # (num, C, frames)
            return list(batch), rate
        seed = request.get("seed", 0)
        made = [function(model, config, progress=progress, **{**request, "seed": seed + index})
                for index in range(num)]
        return [audio for audio, _ in made], made[0][1]
    except TypeError as error:
        raise LabError(f"{spec.name} generate: {error}") from None
    finally:
        progress.close()


def write_generated(store: Store, run_id: str, out: str | Path | None = None, num: int = 1,
                    **request) -> tuple[list[dict], float | None, str]:
    """Generate `num` samples with the run's best weights (progress on stderr, `StepProgress`) and record each
    on the attempt whose checkpoint made them (`lab.records.samples.keep`: FLAC, its step, settings, seed and
    statistics); `out`, when given, gets a wav copy (`out` itself for one sample, else `<stem>_<i><suffix>`).
    Returns (the sample lines, seconds asked (the request's, else the family's default), checkpoint)."""
    spec, config = run_family(store, run_id)
    if spec.generate is None:
        raise LabError(f"the {spec.name} family does not generate audio")
    model, source = trained_model(store, run_id, spec, config)
    number, kind, step = checkpoint_record(store, run_id, source)
    function = spec.generate.resolve() if isinstance(spec.generate, Lazy) else spec.generate
    parameters = inspect.signature(function).parameters
    family_request = dict(request)
    if "data_info" in parameters:  # what the model was trained on, for a family that checks its conditioning
        family_request["data_info"] = trained_data(store, run_id)
    audios, rate = generate_audio(spec, model, config, num, family_request)
    lines = record_generated(store, run_id, number, audios, rate,
                             {"step": step, "checkpoint": kind, "settings": settings_of(parameters, request),
                              "seed": request.get("seed", parameter_default(parameters, "seed"))},
                             batched="num" in parameters)
    if out is not None:
        for index, audio in enumerate(audios):
            path = Path(out) if num == 1 else Path(out).with_name(f"{Path(out).stem}_{index + 1}{Path(out).suffix}")
            atomic_write(path, lambda stream, audio=audio: stream.write(wav_bytes(audio, rate)))
            lines[index]["copy"] = str(path)
    return lines, request.get("seconds", parameter_default(parameters, "seconds")), source


def settings_of(parameters, request: dict) -> dict:
    """The settings a sample was made with: the generate function's defaults, updated by the request."""
    defaults = {name: parameter_default(parameters, name) for name in parameters
                if name not in ("model", "config", "progress", "data_info", "num")}
    return {**{name: value for name, value in defaults.items() if value is not None}, **request}


def parameter_default(parameters, name: str):
    """The default of the generate function's parameter `name` (None where it has none)."""
    parameter = parameters.get(name)
    return None if parameter is None or parameter.default is parameter.empty else parameter.default


def record_generated(store: Store, run_id: str, number: int, audios: list, rate: int, entry: dict,
                     batched: bool) -> list[dict]:
    """Keep each generated sample as FLAC in attempt `number`'s records (`samples.keep`), its line `entry` plus
    its name, statistics, seed (seed + index where the family generated them one by one) and time."""
    folder = store.attempt_dir(run_id, number)
    artefacts = store.artefacts_root / run_id / folder.name
    limit, first = samples.max_bytes(store.settings), samples.next_index(folder)
    made = now_iso()
    lines = []
    for index, audio in enumerate(audios):
        seed = entry["seed"] if batched or entry["seed"] is None else entry["seed"] + index
        line = {**entry, "name": "generate", "source": "generate", "seed": seed, "index": index,
                "sample_rate": rate, "time": made, **audio_stats(audio, rate)}
        name = f"generate_{first + index:03d}_step{entry['step']}.flac"
        lines.append(samples.keep(folder, artefacts, store.root, name, flac_bytes(audio, rate), line, limit))
    store.events.add(run_id, "samples", attempt=number, step=entry["step"], count=len(lines))  # on that day's page
    return lines


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
