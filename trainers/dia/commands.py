"""`lab codec`, the command only the dia family brings: audio encoded to DAC codes once, into the resumable cache
its data reads. Torch-free at import; the codec is imported when the command runs."""

from __future__ import annotations

import argparse

from lab.families.spec import Command


def codec_arguments(sub: argparse.ArgumentParser) -> None:
    """The options of `lab codec encode`."""
    sub.add_argument("action", choices=["encode"])
    sub.add_argument("--audio", required=True, help="folder of audio files (tags in <name>.txt beside each)")
    sub.add_argument("--weights", required=True, help="local DAC weights (dac_44khz.pth); nothing is downloaded")
    sub.add_argument("--out", required=True, help="cache folder: one .npy of codes per file plus index.jsonl")
    sub.add_argument("--stereo", action="store_true", help="encode both channels (18 codebooks)")


def run_codec(args: argparse.Namespace) -> int:
    """Encode the folder; exit status 1 when any file failed (each is listed by the codec)."""
    from trainers.dia import codec

    model = codec.load_codec(args.weights)
    report = codec.encode_folder(args.audio, model, args.out, channels=2 if args.stereo else 1)
    print(f"encoded {report.encoded}, already cached {report.skipped}, failed {len(report.failed)} -> {args.out}")
    return 1 if report.failed else 0


CODEC = Command("codec", "Encode audio to DAC codes once (a resumable cache the dia family reads).",
                "lab codec encode --audio music/ --weights dac_44khz.pth --out data/codes", codec_arguments, run_codec)
