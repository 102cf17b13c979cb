"""Steps per second of the shared engine against a plain PyTorch loop: same model, data, batch size, optimizer.

    python benchmarks/bench_engine.py [--steps 50] [--rounds 3]

Uses the neural_decoder tiny preset on CPU (the toy family of the engine's tests when neural_decoder is not
there). The engine's figure counts only its training steps (its final evaluation and checkpoint are excluded),
so the ratio is the cost of what the engine adds per step: gradient-norm computation, the non-finite check,
the schedule, metrics rows and throughput bookkeeping. The two alternate for a few rounds and the best round
of each is compared, which keeps other work on a shared machine from deciding the ratio. Target: engine/plain
at least TARGET_RATIO (issue 11's bound for the engine against a plain loop, set for a GPU and held here on the
CPU).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.families import registry  # noqa: E402
from sizes import pick  # noqa: E402
from trainers.engine.training import train  # noqa: E402
from trainers.family.context import Context  # noqa: E402

TARGET_RATIO = 0.97


def family_and_config(steps: int):
    """neural_decoder's tiny preset."""
    name = "neural_decoder"
    config = registry.get(name).config.tiny()
    config.train.device = "cpu"
    config.train.max_steps = steps
    config.train.eval_every = steps + 1  # only the final evaluation, outside the timed steps
    model, data, training = config.model, config.data, config.train  # the preset at full size; smaller when tiny
    model.n_units, model.n_layers = pick(full=model.n_units, tiny=16), pick(full=model.n_layers, tiny=1)
    data.synthetic_sentences_per_day = pick(full=data.synthetic_sentences_per_day, tiny=8)
    training.batch_size = pick(full=training.batch_size, tiny=4)
    return name, config


def plain_steps_per_second(name: str, config, steps: int) -> float:
    """A textbook loop: shuffled DataLoader, loss, backward, optimizer step."""
    family = registry.get(name)
    context = Context(config=config, max_steps=steps, artefacts=ROOT / "artefacts" / "bench")
    torch.manual_seed(config.train.seed)
    model = family.build_model(config)
    data = family.build_data(config)
    optim = config.optim
    optimizer_class = torch.optim.Adam if optim.name == "adam" else torch.optim.AdamW
    optimizer = optimizer_class(
        model.parameters(), lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps, weight_decay=optim.weight_decay
    )
    loader = DataLoader(
        data.train, batch_size=config.train.batch_size, shuffle=True, drop_last=True, collate_fn=data.collate
    )
    model.train()
    done = 0
    started = time.perf_counter()
    while done < steps:
        for batch in loader:
            loss, _ = family.training_loss(model, batch, context)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            if done == steps:
                break
    return steps / (time.perf_counter() - started)


def engine_steps_per_second(name: str, config) -> tuple[float, float]:
    """The engine's training steps per second, and the wall time of the whole train() call."""
    with tempfile.TemporaryDirectory() as out_dir:
        started = time.perf_counter()
        summary = train(name, config, out_dir=out_dir)
        wall = time.perf_counter() - started
    return summary["steps"] / summary["train_s"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=pick(full=50, tiny=3), help="training steps per round")
    parser.add_argument("--rounds", type=int, default=pick(full=3, tiny=1))
    options = parser.parse_args()
    name, config = family_and_config(options.steps)
    print(f"family {name} (tiny preset), batch {config.train.batch_size}, {options.steps} steps per round, "
          f"{torch.get_num_threads()} torch threads")
    engine_rates, plain_rates = [], []
    for round_number in range(1, options.rounds + 1):
        engine, wall = engine_steps_per_second(name, config)
        plain = plain_steps_per_second(name, config, options.steps)
        engine_rates.append(engine)
        plain_rates.append(plain)
        print(f"round {round_number}: engine {engine:7.2f} steps/s (train() wall {wall:.1f} s with setup and "
              f"final evaluation), plain {plain:7.2f} steps/s")
    engine, plain = max(engine_rates), max(plain_rates)
    ratio = engine / plain
    print(f"best: engine {engine:.2f} steps/s, plain {plain:.2f} steps/s, ratio engine/plain {ratio:.3f} (target >= "
          f"{TARGET_RATIO:g}: {'met' if ratio >= TARGET_RATIO else 'MISSED'})")


if __name__ == "__main__":
    main()
