"""``musenet-hf statistics``: learn the musical guards' limits from a corpus and write them into a checkpoint.

``train.py`` does this for every checkpoint it writes; this command gives the same limits to a checkpoint
trained before they existed (the bundled model's were written with it), or relearns them from another corpus.
The limits land in the checkpoint's ``config.json`` under ``musenet_music_statistics`` (see ``core/guards.py``).
"""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("statistics", help="learn the music guards' limits from a corpus into a checkpoint's config.json")
    p.add_argument("corpus", help="a corpus built with `musenet-hf corpus build` (its train split is read)")
    p.add_argument("--model", required=True, help="checkpoint folder whose config.json receives the statistics")
    p.add_argument("--split", default="train", help="the corpus split to learn from (default train)")
    p.add_argument("--max-pieces", type=int, default=None, help="pieces read at most (default: the guards' own limit)")
    p.add_argument("--dry-run", action="store_true", help="print the statistics, write nothing")
    p.set_defaults(func=run)


def write_statistics(model_dir: Path, statistics: dict) -> Path:
    """Put ``statistics`` into ``model_dir/config.json`` under the guards' key, every other field untouched.

    Args:
        model_dir (`Path`): a checkpoint folder.
        statistics (`dict`): ``MusicStatistics.to_dict()``.

    Returns:
        `Path`: the config file written.
    """
    from ..core.guards import CONFIG_KEY

    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} has no config.json: not a checkpoint folder")
    config = json.loads(path.read_text())
    config[CONFIG_KEY] = statistics
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return path


def run(args) -> int:
    from ..core.guards import MAX_STATISTICS_PIECES, corpus_music_statistics
    from ..data.corpus import load_corpus

    splits, tokenizer = load_corpus(args.corpus)
    if args.split not in splits or not len(splits[args.split]):
        raise SystemExit(f"error: {args.corpus} has no pieces in a {args.split!r} split")
    stats = corpus_music_statistics(splits[args.split], tokenizer.musenet_vocab, max_pieces=args.max_pieces or MAX_STATISTICS_PIECES)
    print(json.dumps(stats.to_dict(), indent=2))
    if not args.dry_run:
        print(f"wrote {write_statistics(Path(args.model), stats.to_dict())}")
    return 0
