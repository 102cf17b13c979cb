"""The patches: each wraps a library's own method, calls it first with what the script passed, returns what it
returned, and records after (through `rows.guarded`, so a failure of the lab's part never reaches the script).

- argparse: the parsed namespace, defaults included, as the attempt's config (not a launcher's own options);
  the run's `--set` values are the values of the options they name, and Hydra's overrides (lab.tracking.autolog.handed).
- wandb: `Run.log` rows (explicit and implicit steps, `commit=False` merged, each metric on the step axis
  `define_metric` declared), config at init and on updates, summary updates, and the W&B runs the script really
  opened: the first as the attempt's link, every further one listed beside it, its rows under its name.
- TensorBoard (torch.utils.tensorboard and tensorboardX): `add_scalar`, `add_scalars`, `add_hparams`.
- Lightning's TensorBoardLogger: `log_hyperparams` (what `save_hyperparameters()` saved) as config, without the
  `hp_metric = -1` placeholder it logs when given no metrics.
- transformers: a `Trainer`'s `TrainingArguments` as config.
- Hydra: the composed config a `@hydra.main` task function receives (resolved to plain values) as config.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from lab.tracking import tracker, wandb_server
from lab.tracking.autolog import handed, rows
from lab.tracking.autolog.rows import Stream, guarded

# Packages whose argparse options are a launcher's, a kernel's or a tool's own (torchrun's, Hydra's overrides, a
# kernel's connection file), never the script's config
TOOL_PARSERS = ("torch.distributed.run", "torch.distributed.launch", "accelerate.commands", "deepspeed.launcher",
                "lightning.fabric.cli", "hydra", "traitlets", "ipykernel", "IPython", "jupyter_client",
                "jupyter_core", "nbclient", "pytest", "_pytest")
PLACEHOLDER = threading.local()  # `value` True while a library logs a placeholder of its own (Lightning's hp_metric)
MIRROR_THREAD = "lab-wandb"  # the tracker's W&B worker: its calls are the lab's own, not the script's
OPENED_RUNS: list = []  # the W&B runs this process opened (wandb.init), the attempt's link first


def caller_module(frame: Any) -> str:
    """The module (as `python -m` names it, else `__name__`) of the first frame outside argparse and the lab."""
    while frame is not None:
        spec = frame.f_globals.get("__spec__")
        name = getattr(spec, "name", None) or frame.f_globals.get("__name__", "")
        if name != "argparse" and not name.startswith("lab.tracking.autolog"):
            return name
        frame = frame.f_back
    return ""


def is_tool_module(name: str) -> bool:
    """Whether module `name` belongs to one of TOOL_PARSERS (the package itself or a module inside it)."""
    return any(name == tool or name.startswith(tool + ".") for tool in TOOL_PARSERS)


def patch_argparse(module: ModuleType) -> None:
    parse_known_args = module.ArgumentParser.parse_known_args
    depth = threading.local()

    @functools.wraps(parse_known_args)
    def patched(self, args=None, namespace=None):
        outer = getattr(depth, "value", 0) == 0  # a subparser's parse runs inside its parent's
        caller = caller_module(sys._getframe(1)) if outer else ""
        script = outer and not is_tool_module(caller)
        changed = (guarded(handed.prepared_defaults, self, args) or []) if script else []
        depth.value = getattr(depth, "value", 0) + 1
        try:
            result = parse_known_args(self, args, namespace)
        finally:
            depth.value -= 1
            handed.restore_defaults(self, changed)
        if script:
            guarded(handed.check_parsed, self, result[0], args, changed)
            guarded(rows.report_config, vars(result[0]), "argparse")
        elif outer and caller.startswith("hydra"):
            guarded(handed.hydra_overrides, result[0])
        return result

    module.ArgumentParser.parse_known_args = patched


def patch_wandb(module: ModuleType) -> None:
    from wandb.sdk import wandb_config, wandb_run, wandb_summary

    stream = AxisStream("wandb.log")
    run_class = wandb_run.Run
    log, finish, define_metric = run_class.log, run_class.finish, run_class.define_metric

    @functools.wraps(log)
    def patched_log(self, data, step=None, commit=None, *args, **kwargs):
        at = step if step is not None else getattr(self, "_step", None)
        result = log(self, data, step, commit, *args, **kwargs)
        if threading.current_thread().name != MIRROR_THREAD:
            guarded(stream.add_row, self, at, data, bool(commit) or step is None and commit is None)
        return result

    def disabled_log(run: Any) -> Any:
        """`run.log` of a run W&B disabled (WANDB_MODE=disabled, a per-run no-op): recorded all the same, its
        steps kept as W&B keeps them."""
        log_nothing = run.log

        def log_disabled(data, step=None, commit=None, *args, **kwargs):
            at = step if step is not None else run._step
            result = log_nothing(data, step, commit, *args, **kwargs)
            if step is not None and step > run._step:
                run._step = step
            committed = bool(commit) or step is None and commit is None
            run._step += committed
            guarded(stream.add_row, run, at, data, committed)
            return result

        return log_disabled

    @functools.wraps(finish)
    def patched_finish(self, *args, **kwargs):
        guarded(stream.flush)
        online = getattr(getattr(self, "settings", None), "mode", None) == "online"
        result = finish(self, *args, **kwargs)
        if threading.current_thread().name != MIRROR_THREAD and OPENED_RUNS and OPENED_RUNS[0] is self:
            guarded(tracker.current().mark_wandb_finished, online)  # the attempt's own W&B run: its copy is whole
        return result

    @functools.wraps(define_metric)
    def patched_define_metric(self, name, step_metric=None, *args, **kwargs):
        result = define_metric(self, name, step_metric, *args, **kwargs)
        if step_metric is not None:
            guarded(stream.declare, self, str(name), str(getattr(step_metric, "name", step_metric)))
            guarded(record_axis, name, getattr(step_metric, "name", step_metric))
        return result

    run_class.log, run_class.finish, run_class.define_metric = patched_log, patched_finish, patched_define_metric
    patch_wandb_config(wandb_config.Config)
    patch_wandb_summary(wandb_summary.SummaryDict, wandb_summary.Summary)
    patch_wandb_init(module, disabled_log, stream)


def patch_wandb_init(module: ModuleType, disabled_log: Callable[[Any], Any], stream: AxisStream) -> None:
    """`wandb.init`: the first W&B run of the attempt, in whichever of its processes it opens (the script's or
    the tracker's; `claim_order`), takes the lab's run id and is the attempt's link; the lab's WANDB_RUN_ID and
    WANDB_NAME are then dropped, so that every further run (a fold, a `reinit="create_new"` run, a fold run as a
    child process) is its own run on W&B, as without the lab, listed on the attempt."""
    init = module.init

    @functools.wraps(init)
    def patched_init(*args, **kwargs):
        mirror = tracker.current().wandb
        lab_run = mirror is not None and mirror.starting
        if mirror is not None and not lab_run and not mirror.started:
            tracker.current().wandb = None  # the script opened its own W&B run: the lab does not open a second
        order, claim = claim_order(len(OPENED_RUNS))
        if order > 1 and not OPENED_RUNS:
            guarded(forget_lab_identity)  # another process of the attempt holds the lab's id
        run = init(*args, **kwargs)
        if any(run is known for known in OPENED_RUNS):  # W&B handed back a run already open
            if claim is not None:
                claim.unlink(missing_ok=True)
            return run
        OPENED_RUNS.append(run)
        if order == 1:
            guarded(forget_lab_identity)
        further = order > 1
        if further:
            guarded(stream.name_apart, run, kwargs.get("name"), order)
        if getattr(getattr(run, "settings", None), "mode", None) == "disabled" and not lab_run:
            run.log = module.log = disabled_log(run)
            guarded(rows.report_config, dict(run.config.as_dict()), "wandb.config")
        elif further:
            guarded(record_further_run, run, stream)
        else:
            guarded(record_wandb_run, run, lab_run)
        return run

    module.init = patched_init


def claim_order(opened: int) -> tuple[int, Path | None]:
    """(the order of the W&B run about to open among all the attempt's processes, its claim file): 1 takes the
    lab's id. Claimed as an O_EXCL file `.wandb-runs/N` in the attempt's artefacts folder (git-ignored), so that
    folds run as child processes take the lab's id once; counted in this process alone (`opened` + 1, no file)
    outside a launch or where that folder cannot be written."""
    folder = tracker.artefacts_dir()
    if folder is None:
        return opened + 1, None
    claims, order = Path(folder) / ".wandb-runs", 1
    try:
        claims.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                os.close(os.open(claims / str(order), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return order, claims / str(order)
            except FileExistsError:
                order += 1
    except OSError:
        return opened + 1, None


def forget_lab_identity() -> None:
    """Drop the lab's WANDB_RUN_ID and WANDB_NAME from the environment and from W&B's process-wide settings,
    which read them once (wandb 0.25: `wandb_setup.singleton().settings`), so the next `wandb.init` picks its own.
    With a wandb that keeps them elsewhere, one warning says that further runs may take the lab's id; capture
    goes on."""
    for name in ("WANDB_RUN_ID", "WANDB_NAME"):
        os.environ.pop(name, None)
    try:
        from wandb.sdk import wandb_setup

        settings = wandb_setup.singleton().settings
        settings.run_id = None
        settings.run_name = None
    except Exception as error:  # noqa: BLE001 - another wandb version: only further runs' ids are at stake
        tracker.warn(f"further W&B runs of this script may take the lab's W&B id ({type(error).__name__}: "
                     f"{' '.join(str(error).split())[:200]})")


def record_further_run(run: Any, stream: AxisStream) -> None:
    """A W&B run after the attempt's first: listed in attempt.json's `wandb.others` (id, name, link, folder,
    and the prefix of its rows, `AxisStream.name_apart`)."""
    current = tracker.current()
    if current.attempt_dir is None:
        return
    prefix = stream.prefixes[id(run)]
    mode = getattr(run.settings, "mode", None) or "offline"
    entry = {"run_id": run.id, "name": run.name, "project": run.project, "mode": mode, "prefix": prefix,
             "url": (run.url if mode == "online" else None) or wandb_server.run_url(run.entity, run.project, run.id),
             "folder": os.path.dirname(run.dir)}

    def add(record: dict) -> dict:
        wandb = record.get("wandb") or {}
        return {"wandb": {**wandb, "others": [*wandb.get("others", []), entry]}} if wandb else {}

    current.identity()[0].attempts.update(current.attempt_dir, merge=add)


def record_wandb_run(run: Any, lab_run: bool) -> None:
    """The W&B run the process opened becomes the attempt's W&B link; a script's own run also reports its
    config."""
    mode = getattr(run.settings, "mode", None) or "offline"
    current = tracker.current()
    if current.attempt_dir is None:
        return

    def link(record: dict) -> dict:
        old = record.get("wandb") or {}
        entity, project, group = run.entity or old.get("entity"), run.project, run.group or None
        url = (run.url if mode == "online" else None) or wandb_server.run_url(entity, project, run.id)
        return {"wandb": {**old, "run_id": run.id, "entity": entity, "project": project, "name": run.name,
                          "group": group, "mode": mode, "url": url, "synced": mode == "online", "started": True,
                          "writer": "lab" if lab_run else "script",
                          "group_url": wandb_server.group_url(entity, project, group) if group else None,
                          "folder": os.path.dirname(run.dir)}}  # what `lab sync` sends

    current.identity()[0].attempts.update(current.attempt_dir, merge=link)
    if not lab_run:
        rows.report_config(dict(run.config.as_dict()), "wandb.config")


class AxisStream(Stream):
    """W&B rows on the step axis the script declared for all its metrics: `define_metric("*", step_metric=AXIS)`
    (as Lightning's WandbLogger and HF's callback declare) puts every metric at AXIS's value (from the same `log`
    call, else the last one logged), as W&B's charts do, and the axis is the step of the others, not a metric of
    its own. Where the declared axes cover only some metrics or differ (`define_metric("val/acc",
    step_metric="epoch")` beside undeclared `train/loss`), every row keeps W&B's own step, so that the pages'
    readings of several metrics at one step (the kept step, the train loss since the last evaluation) compare one
    moment, never an epoch with a step; attempt.json's `metric_axes` still lists the declared axes. Axes are kept
    per W&B run."""

    def __init__(self, source: str):
        super().__init__(source)
        self.axes: dict[int, dict[str, str]] = {}  # id(run) -> {metric name or glob: its step metric}
        self.prefixes: dict[int, str] = {}  # id(run) -> the prefix of its metric names (runs after the first)
        self.last: dict[int, dict[str, Any]] = {}  # id(run) -> {step metric: its last value}

    def declare(self, run: Any, name: str, step_metric: str) -> None:
        """`run.define_metric(name, step_metric=step_metric)`: `name` (a metric or a glob) on that axis."""
        axes = self.axes.setdefault(id(run), {})
        axes.pop(name, None)
        axes[name] = step_metric

    def name_apart(self, run: Any, given: str | None, order: int) -> None:
        """Record the rows of `run` (a W&B run after the attempt's first) under `<the name the script gave>/`;
        without one, under its `order` in the attempt (`run2/`, `run3/`: W&B's own names and ids are new each
        attempt), and `<name>-run<order>/` where that name is taken, so the same script's runs get the same
        prefixes every attempt."""
        name = str(given) if given else f"run{order}"
        prefix = f"{name}/" if f"{name}/" not in self.prefixes.values() else f"{name}-run{order}/"
        self.prefixes[id(run)] = prefix

    def add_row(self, run: Any, step: int | None, data: dict, commit: bool) -> None:
        """Add one `run.log(data)` call at W&B's `step`, each metric on its declared axis."""
        if not self.axes and not self.prefixes:  # the common case: one run, W&B's own steps
            return self.add(step, data, commit)
        axes, prefix = one_axis(self.axes.get(id(run))), self.prefixes.get(id(run), "")
        if prefix:
            data = {prefix + str(key): value for key, value in data.items()}
            axes = {prefix + pattern: prefix + axis for pattern, axis in (axes or {}).items()}
        if not axes:
            return self.add(step, data, commit)
        last = self.last.setdefault(id(run), {})
        steps = set(axes.values())
        last.update({key: value for key, value in data.items() if key in steps})
        groups: dict[Any, dict] = {}
        for key, value in data.items():
            if key not in steps:
                axis = axis_of(axes, key)
                at = tracker.whole_step(last.get(axis)) if axis is not None else None
                groups.setdefault(step if at is None else ("axis", at), {})[key] = value
        for at, values in groups.items():
            if isinstance(at, tuple):
                self.add(at[1], values)  # written when the axis moves on, so later calls at that step join it
            else:
                self.add(at, values, commit)


def one_axis(axes: dict[str, str] | None) -> dict[str, str] | None:
    """`axes` (a run's declared {metric or glob: step metric}) where they put every metric on one axis (`"*"`
    declared, and no other axis), else None: the rows then keep W&B's step."""
    return axes if axes and "*" in axes and len(set(axes.values())) == 1 else None


def axis_of(axes: dict[str, str], key: str) -> str | None:
    """The step metric `key` is declared on: its own name, else the last declared glob matching it."""
    if key in axes:
        return axes[key]
    matching = [axis for pattern, axis in axes.items() if "*" in pattern and fnmatch.fnmatchcase(key, pattern)]
    return matching[-1] if matching else None


def record_axis(name: str, step_metric: str) -> None:
    """`define_metric(name, step_metric=...)`: the metric's x axis, in attempt.json's `metric_axes`."""
    current = tracker.current()
    if current.attempt_dir is not None:
        current.identity()[0].attempts.update(
            current.attempt_dir, merge=lambda record: {"metric_axes": {**record.get("metric_axes", {}),
                                                                       str(name): str(step_metric)}})


def patch_wandb_config(config_class: type) -> None:
    """Config updates of a running W&B run (`wandb.config.x = ...`, `update`, `setdefaults`) are reported."""
    for method in ("__setitem__", "update", "setdefaults", "update_locked"):
        original = getattr(config_class, method)

        def patched(self, *args, _original=original, **kwargs):
            result = _original(self, *args, **kwargs)
            if getattr(self, "_callback", None) is not None and threading.current_thread().name != MIRROR_THREAD:
                guarded(rows.report_config, dict(self.as_dict()), "wandb.config")
            return result

        setattr(config_class, method, functools.wraps(original)(patched))
    config_class.__setattr__ = config_class.__setitem__


def patch_wandb_summary(summary_dict: type, summary_class: type) -> None:
    """`run.summary[key] = value` and `run.summary.update(...)` are merged into the attempt's summary.json."""
    update = summary_dict.update

    @functools.wraps(update)
    def patched(self, d, *args, **kwargs):
        result = update(self, d, *args, **kwargs)
        if type(self) is summary_class and threading.current_thread().name != MIRROR_THREAD:
            values = {str(key): value for key, value in dict(d).items()
                      if isinstance(rows.jsonable(value), (int, float, str)) and not str(key).startswith("_")}
            if values:
                guarded(tracker.current().merge_summary, values, False)
        return result

    summary_dict.update = patched


def patch_summary_writer(module: ModuleType) -> None:
    writer = module.SummaryWriter
    stream = Stream("SummaryWriter.add_scalar")
    add_scalar, add_scalars, add_hparams = writer.add_scalar, writer.add_scalars, writer.add_hparams
    inside_hparams = threading.local()

    @functools.wraps(add_scalar)
    def patched_add_scalar(self, tag, scalar_value, global_step=None, *args, **kwargs):
        result = add_scalar(self, tag, scalar_value, global_step, *args, **kwargs)
        if not getattr(inside_hparams, "value", False) and not getattr(PLACEHOLDER, "value", False):
            guarded(stream.add, global_step, {tag: scalar_value})
        return result

    @functools.wraps(add_scalars)
    def patched_add_scalars(self, main_tag, tag_scalar_dict, global_step=None, *args, **kwargs):
        result = add_scalars(self, main_tag, tag_scalar_dict, global_step, *args, **kwargs)
        guarded(stream.add, global_step, {f"{main_tag}/{tag}": value for tag, value in tag_scalar_dict.items()})
        return result

    @functools.wraps(add_hparams)
    def patched_add_hparams(self, hparam_dict, metric_dict, *args, **kwargs):
        inside_hparams.value = True  # its metrics go to a writer of their own through add_scalar
        try:
            result = add_hparams(self, hparam_dict, metric_dict, *args, **kwargs)
        finally:
            inside_hparams.value = False
        guarded(rows.report_config, dict(hparam_dict), "SummaryWriter.add_hparams")
        if metric_dict:
            guarded(tracker.current().merge_summary, {str(key): value for key, value in metric_dict.items()}, False)
        return result

    writer.add_scalar, writer.add_scalars, writer.add_hparams = (patched_add_scalar, patched_add_scalars,
                                                                 patched_add_hparams)


def patch_lightning_tensorboard(module: ModuleType) -> None:
    """lightning.fabric.loggers.tensorboard (and lightning_fabric's): the hyperparameters a LightningModule saved
    are the config, as given (nested, before TensorBoard's flattening); Lightning's placeholder `hp_metric = -1`
    (logged when `log_hyperparams` gets no metrics) is no metric."""
    logger_class = module.TensorBoardLogger
    log_hyperparams = logger_class.log_hyperparams

    @functools.wraps(log_hyperparams)
    def patched(self, params, metrics=None, *args, **kwargs):
        PLACEHOLDER.value = metrics is None
        try:
            result = log_hyperparams(self, params, metrics, *args, **kwargs)
        finally:
            PLACEHOLDER.value = False
        guarded(rows.report_config, dict(params if hasattr(params, "keys") else vars(params)),
                "lightning.log_hyperparams")
        return result

    logger_class.log_hyperparams = patched


def patch_trainer(module: ModuleType) -> None:
    init = module.Trainer.__init__

    @functools.wraps(init)
    def patched_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        guarded(rows.report_config, self.args.to_sanitized_dict(), "TrainingArguments")

    module.Trainer.__init__ = patched_init


def patch_hydra(module: ModuleType) -> None:
    """`hydra.core.utils.run_job` (every job of `@hydra.main`, single runs and each job of a multirun): the task
    function is wrapped so that the config it receives, resolved, is the attempt's config. Patched as
    hydra.core.utils is imported, before Hydra's own modules bind `run_job` by name."""
    run_job = module.run_job

    @functools.wraps(run_job)
    def patched_run_job(*args, **kwargs):
        if "task_function" in kwargs:
            kwargs["task_function"] = recording_task(kwargs["task_function"])
        elif args:
            args = (recording_task(args[0]), *args[1:])
        return run_job(*args, **kwargs)

    module.run_job = patched_run_job


def recording_task(task: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`task` (a Hydra task function), recording the DictConfig it is called with before it runs."""

    @functools.wraps(task)
    def task_function(config):
        guarded(report_hydra_config, config)
        return task(config)

    return task_function


def report_hydra_config(config: Any) -> None:
    """A Hydra task's DictConfig, interpolations resolved, as the attempt's config (source "hydra"). A key whose
    interpolation does not resolve yet (an unset `${oc.env:...}`, a resolver the task registers itself) is kept
    as written (`resolve=False`); the other keys are resolved and capture goes on."""
    rows.report_config(resolved_container(config), "hydra")


def resolved_container(node: Any) -> Any:
    """`node` (a DictConfig or ListConfig) as plain dicts and lists, each interpolation resolved where it can be
    and kept as its `${...}` text where resolving it raises."""
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(node, resolve=True)
    except Exception:  # noqa: BLE001 - some key below does not resolve: resolve key by key
        written = OmegaConf.to_container(node, resolve=False)
    keys = list(node.keys()) if OmegaConf.is_dict(node) else range(len(node))
    values = {}
    for key in keys:
        try:
            child = node[key]
        except Exception:  # noqa: BLE001 - this key's own interpolation does not resolve
            values[key] = written[key]
            continue
        values[key] = resolved_container(child) if OmegaConf.is_config(child) else child
    return {str(key): value for key, value in values.items()} if OmegaConf.is_dict(node) else list(values.values())
