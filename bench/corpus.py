"""Corpus build throughput on POP909: files/s and notes/s with num_proc 1 and 2 (ratio against num_proc 1).

    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/corpus.py [--files N] [--pop909 PATH] [--repeats R]

Each run builds a fresh corpus (force=True) in a temporary folder; the time includes hashing, the
tokenization map, the splits and save_to_disk. With ``--repeats R`` the runs alternate num_proc 1 and 2
and the best time of each is kept (on a shared machine, other processes only ever add time). Window throughput (MidiWindows with and without
augmentation) is measured on the built corpus too.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from musenet_hf.core.tokenization_musenet import MuseNetTokenizer
from musenet_hf.data.augmentation import AugmentConfig
from musenet_hf.data.corpus import build_corpus, load_corpus
from musenet_hf.data.windows import MidiWindows

DEFAULT_POP909 = Path(__file__).resolve().parents[1].parent / "shared" / "midi" / "pop909"
CONTEXT = 1024  # the training presets' context length
WINDOW_SAMPLES = 2000


def subset(src: Path, n: int | None, dest: Path) -> Path:
    """The first ``n`` POP909 files linked into ``dest`` (all of them when n is None)."""
    files = sorted(src.rglob("*.mid"))[:n]
    dest.mkdir(parents=True)
    for f in files:
        (dest / f.name).symlink_to(f.resolve())
    return dest


def time_build(inputs: Path, out: Path, tok, num_proc: int) -> tuple[float, dict]:
    started = time.perf_counter()
    result = build_corpus([inputs], out, tok, styles={"pop909": "pop"}, num_proc=num_proc, force=True)
    return time.perf_counter() - started, result.card


def time_windows(out: Path) -> list[tuple[str, float]]:
    ds, tok = load_corpus(out)
    rows = []
    for name, augment in (("windows, no augmentation", None), ("windows, augmentation p=1", AugmentConfig(probability=1.0))):
        windows = MidiWindows(ds["train"], tok, CONTEXT, augment=augment)
        idx = np.random.default_rng(0).integers(0, len(windows), WINDOW_SAMPLES)
        started = time.perf_counter()
        for i in idx:
            windows[int(i)]
        rows.append((name, WINDOW_SAMPLES / (time.perf_counter() - started)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pop909", default=str(DEFAULT_POP909))
    parser.add_argument("--files", type=int, default=None, help="use only the first N files (default: all)")
    parser.add_argument("--repeats", type=int, default=1, help="builds per num_proc; the fastest is reported")
    args = parser.parse_args()
    if not Path(args.pop909).is_dir():
        raise SystemExit(f"POP909 not found at {args.pop909}")
    tok = MuseNetTokenizer()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = subset(Path(args.pop909), args.files, Path(tmp) / "pop909")
        results = {}
        for _ in range(max(1, args.repeats)):
            for n in (1, 2):
                secs, card = time_build(inputs, Path(tmp) / f"out{n}", tok, n)
                results[n] = min(results.get(n, (secs, card)), (secs, card), key=lambda r: r[0])
        base = results[1][0]
        card = results[1][1]
        files, notes = card["totals"]["files"], card["totals"]["notes"]
        print(f"POP909: {files} files, {notes:,} notes, {card['totals']['tokens']:,} tokens, {card['totals']['hours']:.1f} h")
        print("| num_proc | seconds | files/s | notes/s | speed-up vs num_proc 1 |")
        print("|---:|---:|---:|---:|---:|")
        for n, (secs, _) in results.items():
            print(f"| {n} | {secs:.1f} | {files / secs:.1f} | {notes / secs:,.0f} | {base / secs:.2f}x |")
        size = sum(f.stat().st_size for f in (Path(tmp) / "out1" / "dataset").rglob("*.arrow"))
        print(f"dataset on disk: {size / 2**20:.1f} MiB ({size / card['totals']['tokens']:.2f} bytes/token)")
        print("| sampling | windows/s |")
        print("|---|---:|")
        for name, rate in time_windows(Path(tmp) / "out1"):
            print(f"| {name} (context {CONTEXT}) | {rate:,.0f} |")
        shutil.rmtree(Path(tmp) / "out2", ignore_errors=True)


if __name__ == "__main__":
    main()
