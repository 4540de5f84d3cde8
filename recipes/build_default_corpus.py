"""Build the default training corpus (the data behind the bundled model); see recipes/DATA_CARD.md.

    python -m recipes.build_default_corpus                       # from the repo root, defaults below
    python -m recipes.build_default_corpus --install true        # apt-get the Debian sources first (root)
    python -m recipes.build_default_corpus args.json             # the same arguments as a JSON file

Stages every generated source as MIDI (music21 ABC + scores, Freedoom, MMA), then runs
``musenet-hf corpus build`` over them, POP909 and OpenMSX with the style map and licences of
``recipes/default_corpus.py``, and prints the per-source table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from musenet_hf.utils import parse_dataclass_args
from recipes import default_corpus as dc

ALL_SOURCES = ["music21-folk", "music21-scores", "pop909", "freedoom", "openmsx", "mma-grooves", "mma-examples"]
NEEDS = {"music21-folk": ["abcmidi"], "mma-grooves": ["mma"], "mma-examples": ["mma"], "freedoom": ["freedoom"],
         "openmsx": ["openttd-openmsx"]}


@dataclass
class RecipeArguments:
    out: str = field(default="../data/default_corpus", metadata={"help": "where the corpus is written (dataset/, tokenizer/, card)"})
    stage: str = field(default="../data/default_corpus_sources", metadata={"help": "where generated MIDI sources are staged"})
    pop909: str = field(default="../shared/midi/pop909", metadata={"help": "folder of the POP909 MIDI files"})
    sources: list[str] = field(default_factory=lambda: list(ALL_SOURCES), metadata={"help": f"sources to include, of {ALL_SOURCES}"})
    num_proc: int = field(default=2, metadata={"help": "processes for score conversion, rendering and tokenization"})
    # the slowest score kept (a whole Beethoven quartet) takes ~60 s on an idle core; a runaway one is cut at twice that
    score_timeout: float = field(default=120.0, metadata={"help": "CPU seconds one music21 score conversion may take before it is skipped"})
    palestrina_limit: int = field(default=300, metadata={"help": "Palestrina movements converted (of ~1,300; evenly spread)"})
    install: bool = field(default=False, metadata={"help": "apt-get install missing Debian packages (needs root)"})
    reuse_staged: list[str] = field(default_factory=list, metadata={"help": "sources whose staged MIDI from a previous run is reused"})
    tokenizer: str | None = field(default=None, metadata={"help": "tokenizer directory (default: the package's tokenizer_files)"})


def check_tools(args: RecipeArguments) -> None:
    needed = {pkg for src in args.sources for pkg in NEEDS.get(src, [])}
    missing = sorted(needed & set(dc.missing_tools()))
    if missing and args.install:
        dc.install_tools(missing)
    elif missing:
        sys.exit(f"missing Debian packages: run `sudo apt-get install -y {' '.join(missing)}` (or pass --install true)")
    if {"music21-folk", "music21-scores"} & set(args.sources):
        try:
            import music21  # noqa: F401
        except ImportError:
            sys.exit("music21 is missing: pip install 'musenet_hf[corpus]'")
    if "pop909" in args.sources and not Path(args.pop909).is_dir():
        sys.exit(f"POP909 folder not found at {args.pop909} (pass --pop909 PATH, or leave pop909 out of --sources)")


def main() -> None:
    (args,) = parse_dataclass_args(HfArgumentParser(RecipeArguments), sys.argv[1:])
    unknown = set(args.sources) - set(ALL_SOURCES)
    if unknown:
        sys.exit(f"unknown sources {sorted(unknown)}; choose from {ALL_SOURCES}")
    check_tools(args)
    stage = Path(args.stage)
    stage.mkdir(parents=True, exist_ok=True)
    to_stage = [s for s in args.sources if s not in args.reuse_staged]
    dc.stage_all(stage, to_stage, args.num_proc, args.score_timeout, {"palestrina": args.palestrina_limit})
    (stage / "styles.json").write_text(json.dumps(dc.style_map(), indent=2) + "\n")
    (stage / "licences.json").write_text(json.dumps(dc.LICENCES, indent=2) + "\n")
    inputs = [str(stage / s) for s in args.sources if s not in ("pop909", "openmsx")]
    inputs += [args.pop909] if "pop909" in args.sources else []
    inputs += [str(dc.OPENMSX_DIR)] if "openmsx" in args.sources else []
    command = [sys.executable, "-m", "musenet_hf.cli", "corpus", "build", *inputs, "--out", args.out,
               "--styles", str(stage / "styles.json"), "--licences", str(stage / "licences.json"),
               "--num-proc", str(args.num_proc)]
    command += ["--tokenizer", args.tokenizer] if args.tokenizer else []
    print("$ musenet-hf " + " ".join(command[3:]), flush=True)
    sys.exit(subprocess.run(command).returncode)


if __name__ == "__main__":
    main()
