"""The command line that runs a built-in trainer, for the lab launcher. Imports no torch.

    launch_command("neural_decoder", "logs/runs/nsd_001/config.json")
    -> [python, "-m", "trainers", "neural_decoder", "--config", "logs/runs/nsd_001/config.json"]
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path


def launch_command(
    family: str, config_path: str | Path, processes: int = 1, resume: str | Path | None = None, *,
    nodes: int = 1, node_rank: int = 0, main_address: str | None = None,
) -> list[str]:
    """The argv that trains `family` with the resolved config at `config_path` on `processes` processes (per
    node, on each of `nodes` machines).

    One process runs `python -m trainers`; several run it under `accelerate launch --multi_gpu`, which starts
    them torchrun-style on a free local port; the engine then joins them with gloo on CPU and NCCL on CUDA.
    (accelerate's `--cpu` flag would start a single process unless mpirun is set up.) Across nodes every
    machine runs the same command but for `--machine_rank`, meeting at node 0's `main_address` 'HOST:PORT'.
    """
    trainer = ["-m", "trainers", family, "--config", str(config_path)]
    if resume is not None:
        trainer += ["--resume", str(resume)]
    if processes <= 1 and nodes == 1:
        return [sys.executable, *trainer]
    device = json.loads(Path(config_path).read_text(encoding="utf-8")).get("train", {}).get("device", "auto")
    if device == "xla":
        raise ValueError("multi-process XLA runs are not launched through accelerate here; use processes=1")
    if nodes > 1:
        host, _, port = (main_address or "").rpartition(":")
        where = ["--num_machines", str(nodes), "--machine_rank", str(node_rank), "--main_process_ip", host,
                 "--main_process_port", port]
    else:
        where = ["--num_machines", "1", "--main_process_port", str(free_port())]
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--num_processes", str(processes * nodes), *where, "--multi_gpu",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        *trainer,
    ]


def free_port() -> int:
    """A TCP port on this machine that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
