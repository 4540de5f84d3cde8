"""``musenet-hf``: the command line. Each subcommand lives in ``musenet_hf/commands/<name>.py`` and
exposes ``register(subparsers)``; modules are imported only when listed here."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = [
    "musenet_hf.commands.tokenize",
    "musenet_hf.commands.corpus",
    "musenet_hf.commands.generate",
    "musenet_hf.commands.render",
    "musenet_hf.commands.catalog",
    "musenet_hf.commands.push",
    "musenet_hf.commands.evaluate",
    "musenet_hf.commands.train",
    "musenet_hf.commands.statistics",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="musenet-hf", description="An open MuseNet: tokenize, build corpora, generate MIDI, share on the Hub.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
