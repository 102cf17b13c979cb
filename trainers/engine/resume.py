"""What a checkpoint of this engine holds, how the best and last ones are written after an evaluation, and the
exact resume from one: weights, optimizer, schedule, loss scale, progress and every process's generators."""

from __future__ import annotations

from dataclasses import asdict

from lab import tracker
from lab.errors import ConfigError
from lab.records.config import to_dict
from trainers.engine import checkpoints, sharding
from trainers.engine.device import seed_everything
from trainers.engine.state import Progress, Run
from trainers.engine.tensors import to_cpu

CHECKPOINT_FORMAT = 1


def checkpoint_payload(run: Run) -> dict:
    """Everything an exact resume needs; every process takes part (its generator states are gathered)."""
    accelerator = run.accelerator
    rng = [checkpoints.rng_state(accelerator.device)]
    if accelerator.num_processes > 1 and accelerator.device.type != "xla":
        from accelerate.utils import gather_object

        rng = gather_object(rng)
    scaler = accelerator.scaler
    if run.sharded:
        weights, optimizer_state = sharding.full_state(run.model, run.optimizer.optimizer)
    else:
        weights = to_cpu(accelerator.unwrap_model(run.model).state_dict())
        optimizer_state = to_cpu(run.optimizer.state_dict())
    return {
        "format": CHECKPOINT_FORMAT,
        "family": run.family_name,
        "config": to_dict(run.config),
        "processes": accelerator.num_processes,
        "parallel": run.train_config.parallel,
        "model": weights,
        "optimizer": optimizer_state,
        "schedule": run.schedule.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "progress": asdict(run.progress),
        "rng": rng,
    }


def write_checkpoints(run: Run, payload: dict, improved: bool) -> None:
    """Write last.pt, and make best.pt a second name of it when the best metric improved (one serialisation),
    on the background writer; each is recorded with the tracker once it is on disk."""
    name, step = run.train_config.best_metric, run.progress.step
    best_value, last_value = run.progress.best_value, run.last_metrics.get(name)
    last, best = run.checkpoints / f"{checkpoints.LAST}.pt", run.checkpoints / f"{checkpoints.BEST}.pt"

    def write() -> None:
        checkpoints.save_atomic(payload, last)
        if improved:
            checkpoints.link_atomic(last, best)
            tracker.checkpoint(checkpoints.BEST, best, step, metric=name, value=best_value)
        tracker.checkpoint(checkpoints.LAST, last, step, metric=name, value=last_value)

    run.writer.submit(write)


def restore(run: Run, state: dict) -> None:
    """Continue from a checkpoint: weights, optimizer, schedule, loss scale, progress and generator states.
    ConfigError (one line) for a checkpoint this run cannot continue exactly (`refuse_unfit`)."""
    accelerator = run.accelerator
    refuse_unfit(run, state)
    model = accelerator.unwrap_model(run.model)
    peak_rates = [group["initial_lr"] for group in run.optimizer.param_groups]  # a resumed run may change them
    if run.sharded:
        sharding.load_full_state(model, run.optimizer.optimizer, state["model"], state["optimizer"])
    else:
        model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
    for group, rate in zip(run.optimizer.param_groups, peak_rates):
        group["initial_lr"] = rate
    run.schedule.load_state_dict(state["schedule"])
    if accelerator.scaler is not None and state["scaler"] is not None:
        accelerator.scaler.load_state_dict(state["scaler"])
    run.progress = Progress(**state["progress"])
    rank = accelerator.process_index
    if rank < len(state["rng"]):
        checkpoints.set_rng_state(state["rng"][rank], accelerator.device)
    else:  # more processes than the checkpoint has states for (XLA does not gather them)
        seed_everything(run.train_config.seed + run.progress.step, per_process=True)


def refuse_unfit(run: Run, state: dict) -> None:
    """ConfigError unless `state` is this family's checkpoint of this engine, written by as many processes with
    the same batch size and parallelism, for a model of the same parameter names and shapes."""
    accelerator, train_config = run.accelerator, run.train_config
    if state.get("format") != CHECKPOINT_FORMAT or state.get("family") != run.family_name:
        raise ConfigError(
            f"the checkpoint is not a {run.family_name} checkpoint of this engine (family {state.get('family')!r})"
        )
    saved_batch_size = state["config"]["train"]["batch_size"]
    if (state["processes"], saved_batch_size) != (accelerator.num_processes, train_config.batch_size):
        raise ConfigError(
            f"the checkpoint was written by {state['processes']} process(es) with train.batch_size="
            f"{saved_batch_size}; resume with the same to replay the data order"
        )
    parallel = state.get("parallel", "ddp")
    if parallel != train_config.parallel:
        raise ConfigError(f"the checkpoint was written with train.parallel={parallel}; resume with the same "
                          "(train.init_from starts a new run from its weights under either)")
    saved, expected = state["model"], accelerator.unwrap_model(run.model).state_dict()
    changed = [name for name in expected if name in saved and saved[name].shape != expected[name].shape]
    if changed or saved.keys() != expected.keys():
        raise ConfigError(
            f"the checkpoint's model does not fit this config ({len(changed)} tensor(s) changed shape, e.g. "
            f"{', '.join(changed[:3]) or 'different parameter names'}); --resume continues the same model only "
            "(start a new run with train.init_from to reuse weights)"
        )
