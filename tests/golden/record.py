"""The golden record: outputs that a refactoring must leave unchanged.

``python tests/golden/record.py --write`` (re)writes ``golden.json`` beside this file; ``test_golden.py``
recomputes every entry and compares. Entries:

- ``pop909``: a sha256 of the ids of each of the first ``POP909_FILES`` POP909 files (sorted by name);
- ``edge_cases``: for every file under ``edge-cases/``, the sha256 of its ids or the ``MidiError`` reason;
- ``generation``: the bundled model's ids for a fixed seed, batch, thread count and explicitly passed
  sampling settings, as sha256 per variation.

Hashes keep the file small; a mismatch names the entry, and the ids are recomputed to see how they differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from musenet_hf.core.guards import GUARD_OPTIONS

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden.json"
SHARED_MIDI = HERE.parents[2] / "shared" / "midi"
POP909_FILES = 24
# Sampling passed explicitly, so the record does not depend on the defaults (which may change on purpose).
GENERATION_CALL = dict(
    style="pop", instruments=["piano", "bass", "drums", "guitar"], seconds=4.0, num_return_sequences=2, seed=0,
    num_threads=1, temperature=1.0, top_k=0, top_p=0.95,
    # the record is of the model and the sliding window; the musical guards (on by default) are tested apart
    **dict.fromkeys(GUARD_OPTIONS, False),
)


def digest(ids) -> str:
    return hashlib.sha256(json.dumps([int(i) for i in ids]).encode()).hexdigest()


def pop909_files(root: Path = SHARED_MIDI) -> list[Path]:
    return sorted((root / "pop909").rglob("*.mid"))[:POP909_FILES]


def edge_case_files(root: Path = SHARED_MIDI) -> list[Path]:
    return sorted(p for p in (root / "edge-cases").rglob("*") if p.is_file() and p.name not in ("LICENSE", "README.md"))


def encoding_record(tokenizer, root: Path = SHARED_MIDI) -> dict:
    from musenet_hf import MidiError

    record = {"pop909": {}, "edge_cases": {}}
    for path in pop909_files(root):
        record["pop909"][path.relative_to(root).as_posix()] = digest(tokenizer.encode_midi(path))
    for path in edge_case_files(root):
        try:
            outcome = digest(tokenizer.encode_midi(path))
        except MidiError as exc:
            outcome = f"MidiError: {exc.reason}"
        record["edge_cases"][path.relative_to(root).as_posix()] = outcome
    return record


def generation_record(pipe=None) -> dict:
    if pipe is None:
        from transformers import pipeline

        import musenet_hf  # noqa: F401  (registers the task)

        pipe = pipeline("midi-generation")
    # the record is of the fp32 weights and fp32 key/value cache it was written with
    out = pipe(**GENERATION_CALL, quantize=False, kv_cache_dtype="float32")
    return {"call": {k: v for k, v in GENERATION_CALL.items()}, "ids": [digest(r["ids"]) for r in out]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write golden.json (else print the record)")
    args = parser.parse_args()
    from musenet_hf import MuseNetTokenizer

    record = {**encoding_record(MuseNetTokenizer()), "generation": generation_record()}
    text = json.dumps(record, indent=1, sort_keys=True) + "\n"
    if args.write:
        GOLDEN.write_text(text)
        print(f"wrote {GOLDEN}: {len(record['pop909'])} POP909 files, {len(record['edge_cases'])} edge cases")
    else:
        print(text)


if __name__ == "__main__":
    main()
