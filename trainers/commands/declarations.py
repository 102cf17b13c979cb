"""The `lab` commands the built-in families share (declared in each family's `SPEC.commands`): `generate`,
`profile` and `embed` on a trained run, and `weights` on a weights file. A command only one family has lives in
that family's folder (dia's `codec`: `trainers/dia/commands.py`).

Torch-free at import: each command's options are plain argparse, and its work imports `trainers.commands.trained`
or `trainers.formats.weights` (torch) only when it runs. `lab --help` lists a command only while a family that
declares it is installed.
"""

from __future__ import annotations

import argparse
import json
import sys

from lab.families.spec import Command
from lab.records.store import Store


def run_store(run_id: str) -> Store:
    """The lab holding `run_id`, the run checked before any torch import (a wrong id answers at once)."""
    store = Store.find()
    store.runs.load(run_id)
    return store


def generate_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("id")
    sub.add_argument("--num", type=int, default=1, help="how many samples to make at once (default: 1)")
    sub.add_argument("--out", help="also write a wav copy here (several samples: OUT_1.wav, OUT_2.wav ...); the "
                                   "samples themselves are recorded on the run")
    sub.add_argument("--seconds", type=float, help="length of the audio")
    sub.add_argument("--temperature", type=float, help="sampling temperature")
    sub.add_argument("--seed", type=int, help="random seed of the sampling")
    sub.add_argument("--tags", help="comma-separated tags to condition on (families with conditioning)")
    sub.add_argument("--text", help="text to condition on (families with conditioning)")
    sub.add_argument("--cfg-scale", dest="cfg_scale", type=float, help="classifier-free guidance scale")


SHORT_BY = 0.05  # seconds: audio this much shorter than asked ended early, at the model's end-of-sequence token


def run_generate(args: argparse.Namespace) -> int:
    store = run_store(args.id)
    from trainers.commands.trained import write_generated

    request = {key: value for key, value in (("seconds", args.seconds), ("temperature", args.temperature),
                                              ("seed", args.seed), ("tags", args.tags), ("text", args.text),
                                              ("cfg_scale", args.cfg_scale)) if value is not None}
    if args.num < 1:
        print(f"lab: error: --num must be 1 or more, not {args.num}", file=sys.stderr)
        return 2
    lines, asked, source = write_generated(store, args.id, args.out, num=args.num, **request)
    for line in lines:
        where = "in the records" if line["stored"] == "records" else "kept locally (over the records' size limit)"
        copy = f", copied to {line['copy']}" if line.get("copy") else ""
        print(f"wrote {line['file']} ({line['seconds']:.2f} s, step {line['step']}, {where}{copy}) from {source}")
        if asked is not None and line["seconds"] < asked - SHORT_BY:
            print(f"lab: generate: stopped at EOS after {line['seconds']:.2f} s of the {asked:g} s asked (the model "
                  "ended the sample)", file=sys.stderr)
    return 0


def profile_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("id")


def run_profile(args: argparse.Namespace) -> int:
    store = run_store(args.id)
    from trainers.commands.trained import profile_run

    components = profile_run(store, args.id)
    store.events.add(args.id, "profile", components=components)  # reports and comparisons show it
    width = max(len(name) for name in components)
    print(f"{args.id}: peak tensor memory of one training step, by component")
    for name, megabytes in components.items():
        print(f"  {name.ljust(width)}  {megabytes:10.1f} MiB")
    return 0


def embed_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("id")
    sub.add_argument("--audio", nargs="+", required=True, help="audio files")
    sub.add_argument("--json", action="store_true", help="embeddings and scores as JSON")
    sub.add_argument("--dim", type=int, help="keep the first DIM dims (a Matryoshka dim, like 64) before scoring")


def run_embed(args: argparse.Namespace) -> int:
    store = run_store(args.id)
    from trainers.commands.trained import embed_files

    embeddings, scores, source = embed_files(store, args.id, args.audio, dim=args.dim)
    if args.json:
        print(json.dumps({"files": args.audio, "embeddings": embeddings, "cosine": scores, "checkpoint": source}))
        return 0
    print(f"{len(embeddings)} embeddings of {len(embeddings[0])} dims from {source}")
    for row, name in enumerate(args.audio):
        print(f"  {name}: " + "  ".join(f"{scores[row][col]:+.3f}" for col in range(len(args.audio))))
    return 0


def weights_arguments(sub: argparse.ArgumentParser) -> None:
    actions = sub.add_subparsers(dest="action", required=True, metavar="{inspect,convert}")
    inspect = actions.add_parser("inspect", help="what a weights file is: family, format, size, config")
    inspect.add_argument("path", help="a .safetensors, .pth/.pt or checkpoint file (PATH:KEY names a nested entry)")
    convert = actions.add_parser("convert", help="write an original repository's file in this project's keys")
    convert.add_argument("path", help="the original's file (PATH:KEY names a nested entry)")
    convert.add_argument("--family", required=True, help="the family the file must belong to")
    convert.add_argument("--out", required=True, help="file to write (.safetensors, else torch.save)")


def run_weights(args: argparse.Namespace) -> int:
    from trainers.formats import weights

    path, key = weights.split_source(args.path)
    original = weights.read(path, key)
    if args.action == "inspect":
        print("\n".join(weights.describe(original, weights.recognise(original))))
        return 0
    converted = weights.convert(original, args.family)
    out = weights.write(converted, args.out)
    print(f"wrote {out}: {len(converted.weights)} tensors of {converted.format} in {converted.family}'s keys")
    if converted.config:
        print(f"build the model with: {weights.overrides(converted)}")
    return 0


GENERATE = Command("generate", "Generate audio with a run's best checkpoint and record it on the run.",
                   'lab generate sash_001 --seconds 4 --num 4   |   lab generate dia_009 --tags "drums" --out a.wav',
                   generate_arguments, run_generate)
PROFILE = Command("profile", "Peak memory of one training step of a run, by component.", "lab profile sash_001",
                  profile_arguments, run_profile)
EMBED = Command("embed", "Speaker embeddings of audio files with a run's best checkpoint, and their cosine scores.",
                "lab embed rdn_001 --audio a.wav b.wav", embed_arguments, run_embed)
WEIGHTS = Command("weights", "What a weights file is, or an original repository's checkpoint in this project's keys.",
                  "lab weights inspect dia-v0_1.pth   |   lab weights convert dia-v0_1.pth --family dia --out dia.pt",
                  weights_arguments, run_weights)
