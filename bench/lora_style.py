"""What LoRA buys: a new style learned from one groove family, against a full fine-tune of the same base.

1. The family: every MIDI file under ``--sources`` whose file name contains ``--family`` (case-insensitive),
   labelled with the new style ``--style``. Held out by content hash (``data.corpus.split_of``): the files whose
   hash falls in [0, ``--held_out``). With the default 0.10 these are exactly the family's pieces in the default
   corpus's validation and test splits (its 5 % / 5 % split uses the same hash), so the bundled base never
   trained on them either, even under its own style name.
2. Training: ``bench/lora.py``'s two child runs of ``train.py`` (same seed, windows, steps, threads) on that
   corpus; with no validation split ``train.py`` evaluates on the held-out pieces, so its step-0 evaluation
   (LoRA starts as the base, the new style's row at the mean embedding) is "before" and its final one "after".
   No evaluation during training, so no weights are chosen on the held-out pieces.
3. Recognition: ``evaluation.control``'s style classifier, fitted on real pieces: the family's training pieces
   as ``--style`` and the ``--reference`` corpus's train pieces under ``--reference_prefix`` (other groove
   styles; files of the family itself are left out there) under their own styles. It is checked on real held-out
   pieces (the family's held-out ones, the reference's test pieces), then labels ``--pieces`` pieces of
   ``--seconds`` generated with the new style by each fine-tune, and by the base asked for ``--baseline_style``
   (the nearest style it knows), all with ``--instruments``; every real piece is clipped to its first
   ``--seconds`` as the generated ones are.

    OMP_NUM_THREADS=1 nice python bench/lora_style.py --sources /work/data/default_corpus_sources/mma-grooves \\
        --reference /work/data/default_corpus --out /tmp/lora_style [--steps 200 --threads 1]

Writes ``results.json`` in ``--out`` and prints the Markdown table.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np


def _bench_lora():
    """bench/lora.py (the two training runs), loaded by path: bench/ holds a tokenize.py that must not shadow the stdlib's."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_lora", Path(__file__).resolve().parent / "lora.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_lora = _bench_lora()
REPO, VARIANTS, make_parser, run_variant = _lora.REPO, _lora.VARIANTS, _lora.make_parser, _lora.run_variant
sys.path.insert(0, str(REPO))
from musenet_hf.data.corpus import build_corpus, find_midi_files, load_corpus  # noqa: E402
from musenet_hf.evaluation import control  # noqa: E402
from musenet_hf.evaluation.evaluate import MAX_REAL_PER_STYLE, MAX_TRAIN_PER_STYLE, Case, generate_case  # noqa: E402
from musenet_hf.evaluation.statistics import clip_notes, piece_statistics  # noqa: E402
from musenet_hf.modeling.presets import base_tokenizer  # noqa: E402


def family_files(sources: Path, family: str) -> list[Path]:
    """The family's MIDI files: those under ``sources`` whose name contains ``family``, sorted by path."""
    return [p for p in find_midi_files(sources) if family.lower() in p.name.lower()]


def clip_features(notes, bpm: float, seconds: float, instruments: list[str], asked=None) -> list[float]:
    """``control.style_features`` of a piece's first ``seconds`` from its first note."""
    start = min((n.start for n in notes), default=0.0)
    stats = piece_statistics(clip_notes(notes, start, seconds), instruments, seconds, bpm, asked=asked)
    return control.style_features(stats, instruments)


def real_features(rows, tokenizer, seconds: float, cap: int, keep=lambda row: True) -> list[tuple[str, list[float]]]:
    """``(style, features)`` of corpus rows, at most ``cap`` per style, in row order."""
    taken: Counter = Counter()
    out = []
    for row in rows:
        if taken[row["style"]] >= cap or not keep(row):
            continue
        taken[row["style"]] += 1
        decoded = tokenizer.decode_events(row["input_ids"])
        out.append((row["style"], clip_features(decoded.notes, float(decoded.header.bpm), seconds, list(tokenizer.instruments))))
    return out


def held_out_bits_per_note(opts, splits, tokenizer, style: str) -> dict:
    """The base's bits per note on the held-out pieces with their header's style set to ``style``.

    Scores the windows ``train.py`` evaluates (the same context, batch, window choice and seed) with the model it
    starts from (``model_for_training``: the base, grown by the new style's row), so with ``style=opts.style`` it
    repeats LoRA's step-0 figure, and with ``opts.baseline_style`` it is the base under the nearest style it knows.
    """
    import torch
    from accelerate import Accelerator

    from musenet_hf.data.windows import MidiCollator, MidiWindows
    from musenet_hf.evaluation.likelihood import note_on_table
    from musenet_hf.modeling.presets import model_for_training
    from musenet_hf.training.metrics import EVAL_BATCH_FACTOR, eval_batches, evaluate

    new_id, asked_id = tokenizer.musenet_vocab.style_id(opts.style), tokenizer.musenet_vocab.style_id(style)
    held = splits["test"].map(lambda ids: {"input_ids": [asked_id if i == new_id else i for i in ids]}, input_columns="input_ids")
    model = model_for_training(tokenizer, model_name_or_path=opts.base, seed=0)
    windows = MidiWindows(held, tokenizer, opts.context, seed=0)
    batches = eval_batches(windows, opts.batch_size * EVAL_BATCH_FACTOR, opts.eval_windows)
    note_on = torch.as_tensor(note_on_table(tokenizer.musenet_vocab))
    totals = evaluate(model, windows, batches, MidiCollator(tokenizer.pad_token_id), Accelerator(cpu=True), note_on)
    return {"style": style, **totals.metrics()}


def generated_features(model: str, case: Case, opts) -> tuple[list[list[float]], dict]:
    """Features of ``opts.pieces`` pieces of ``case`` from ``model`` (one seeded batch), and the speed."""
    from transformers import pipeline

    import musenet_hf  # noqa: F401  (registers the task)

    pipe = pipeline("midi-generation", model=model)
    made, wall = generate_case(pipe, case, opts.pieces, opts.seconds, seed=0, progress_bar=False)
    instruments = list(pipe.tokenizer.instruments)
    feats = [clip_features(g.notes, g.bpm, opts.seconds, instruments, asked=case.instruments) for g in made]
    tokens = sum(len(g.ids) for g in made)
    return feats, {"wall_seconds": wall, "tokens": tokens, "notes": sum(len(g.notes) for g in made)}


def recognition(classifier, style: str, pieces: list[list[float]]) -> dict:
    labels = list(classifier.predict(np.asarray(pieces, dtype=float))) if pieces else []
    return {"pieces": len(labels), "as_style": sum(label == style for label in labels) / len(labels) if labels else float("nan"),
            "labels": dict(Counter(labels).most_common())}


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = make_parser(__doc__)
    parser.add_argument("--sources", required=True, help="folder searched recursively for the family's files")
    parser.add_argument("--family", default="bossa", help="file-name substring that picks the family")
    parser.add_argument("--style", default="bossa", help="the new style name the family is labelled with")
    parser.add_argument("--held_out", type=float, default=0.10, help="content-hash share held out (see step 1)")
    parser.add_argument("--reference", required=True, help="a built corpus whose real pieces are the other styles")
    parser.add_argument("--reference_prefix", default="mma-grooves/", help="only reference rows whose path starts so")
    parser.add_argument("--baseline_style", default="latin", help="the base's nearest existing style")
    parser.add_argument("--instruments", default="piano,bass,guitar,drums")
    parser.add_argument("--pieces", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.set_defaults(steps=200, threads=1)
    opts = parser.parse_args(argv)
    if not opts.out:
        parser.error("--out is required (the runs, the corpus and results.json are kept there)")
    torch.set_num_threads(opts.threads)
    root = Path(opts.out)
    root.mkdir(parents=True, exist_ok=True)
    files = family_files(Path(opts.sources), opts.family)
    if not files:
        raise SystemExit(f"no file under {opts.sources} has {opts.family!r} in its name")

    # 1. the family's corpus, in the base's encoding plus the new style
    corpus = root / "corpus"
    build_corpus(files, corpus, base_tokenizer(opts.base), styles={str(f.resolve()): opts.style for f in files},
                 validation_fraction=0.0, test_fraction=opts.held_out)
    splits, tok = load_corpus(corpus)
    family = {"files": len(files), "train": len(splits["train"]), "held_out": [r["path"] for r in splits["test"]],
              "held_out_notes": int(sum(splits["test"]["notes"]))}
    before = {s: held_out_bits_per_note(opts, splits, tok, s) for s in (opts.style, opts.baseline_style)}
    print(json.dumps(before), flush=True)
    print(f"{opts.family}: {len(files)} files, {family['train']} train, held out {family['held_out']}", flush=True)

    # 2. both fine-tunes
    opts.data = str(corpus)
    rows = {}
    for variant in VARIANTS:
        rows[variant] = run_variant(opts, variant, root)
        print(json.dumps(rows[variant]), flush=True)

    # 3. the classifier and what it calls the generated pieces
    start = time.perf_counter()
    ref_splits, ref_tok = load_corpus(opts.reference)
    other = lambda path: path.startswith(opts.reference_prefix) and opts.family.lower() not in Path(path).name.lower()  # noqa: E731
    ref_train = ref_splits["train"].filter(other, input_columns="path")
    ref_test = ref_splits["test"].filter(other, input_columns="path")
    train = real_features(splits["train"], tok, opts.seconds, MAX_TRAIN_PER_STYLE)
    train += real_features(ref_train, ref_tok, opts.seconds, MAX_TRAIN_PER_STYLE)
    held_family = real_features(splits["test"], tok, opts.seconds, MAX_REAL_PER_STYLE)
    held_other = real_features(ref_test, ref_tok, opts.seconds, MAX_REAL_PER_STYLE)
    classifier, styles, counts = control.fit_style_classifier(train)
    other_pred = list(classifier.predict(np.asarray([f for _, f in held_other], dtype=float)))
    real = {
        "styles": styles, "train_pieces": dict(counts), "chance": max(counts.values()) / len(train),
        "family_held_out": recognition(classifier, opts.style, [f for _, f in held_family]),
        "other_held_out_accuracy": float(np.mean([p == s for p, (s, _) in zip(other_pred, held_other)])),
        "other_held_out_as_style": float(np.mean([p == opts.style for p in other_pred])),
        "other_held_out_pieces": len(held_other),
        "seconds": time.perf_counter() - start,
    }
    print(json.dumps(real), flush=True)
    instruments = opts.instruments.split(",")
    generated = {}
    for name, model, style in (("base", opts.base, opts.baseline_style), ("full", rows["full"]["out"], opts.style),
                               ("lora", rows["lora"]["out"], opts.style)):
        feats, speed = generated_features(model, Case(style, instruments), opts)
        generated[name] = {"asked": style, **recognition(classifier, opts.style, feats), **speed}
        print(name, json.dumps(generated[name]), flush=True)

    result = {"settings": {k: v for k, v in vars(opts).items()}, "family": family, "base_held_out": before, "training": rows,
              "classifier_real": real, "generated": generated}
    (root / "results.json").write_text(json.dumps(result, indent=1, default=str))
    full, lora = rows["full"], rows["lora"]
    print(f"\n{opts.steps} steps x {opts.batch_size} windows x {opts.context} tokens, {opts.threads} thread(s); "
          f"held-out: {len(family['held_out'])} pieces, {full['eval_notes']} notes")
    print(f"| | base (before) | full fine-tune | LoRA r={opts.rank} |")
    print("|---|---:|---:|---:|")
    print(f"| held-out bits/note | {lora['bits_per_note_before']:.3f} (as {opts.baseline_style}: "
          f"{before[opts.baseline_style]['bits_per_note']:.3f}) | {full['bits_per_note_after']:.3f} | {lora['bits_per_note_after']:.3f} |")
    for key, fmt in (("trainable_parameters", "{:,}"), ("peak_rss_mb", "{:.0f} MB"), ("tokens_per_second", "{:.0f}"),
                     ("train_seconds", "{:.0f} s"), ("published_mb", "{:.2f} MB")):
        print(f"| {key} | | {fmt.format(full[key])} | {fmt.format(lora[key])} |")
    g = generated
    print(f"| generated recognised as {opts.style} | {g['base']['as_style']:.0%} (asked {opts.baseline_style}) "
          f"| {g['full']['as_style']:.0%} | {g['lora']['as_style']:.0%} |")
    print(f"classifier on real held-out: {opts.style} {real['family_held_out']['as_style']:.0%} of {real['family_held_out']['pieces']}, "
          f"other styles {real['other_held_out_accuracy']:.0%} right of {real['other_held_out_pieces']} "
          f"({real['other_held_out_as_style']:.1%} called {opts.style}); chance {real['chance']:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
