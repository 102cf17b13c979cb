"""The README's wrapped training script: any script of yours works the same way.

    lab new-run toy_001 --hypothesis "grad accumulation lowers the loss faster"
    lab launch toy_001 --note "batch 2, grad accum 16" -- python examples/my_train.py --lr 2e-4 --accum 16

It reports its argparse config to the lab (`tracker.config`) and logs a loss per step (`tracker.log`); outside a
launch both calls do nothing, so the script runs on its own as well.
"""

import argparse
import math
import random

from lab import tracker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=2e-4, help="learning rate")
    parser.add_argument("--accum", type=int, default=1, help="batches accumulated per update")
    parser.add_argument("--steps", type=int, default=100, help="optimizer updates")
    args = parser.parse_args()
    tracker.config(vars(args))
    rng = random.Random(0)
    speed = args.lr * 1e4 * math.sqrt(args.accum)  # a toy: larger effective batches learn faster
    loss = 2.0
    for step in range(1, args.steps + 1):
        loss = 0.1 + 1.9 * math.exp(-speed * step / args.steps) + rng.gauss(0, 0.01)
        tracker.log(step, **{"train/loss": loss, "train/lr": args.lr})
        if step % 25 == 0:
            tracker.log(step, **{"val/loss": loss + 0.02})
    print(f"done: final loss {loss:.3f}")


if __name__ == "__main__":
    main()
