"""Does the model do what it was asked: instruments, style, and continuing a primer.

- Instrument adherence: the share of notes outside the asked families, and the asked families that play
  fewer than ``statistics.SILENT_FAMILY_NOTES`` notes.
- Style adherence: a scikit-learn classifier (standardised features, multinomial logistic regression) trained
  on per-piece features of real pieces of the reference styles. Its accuracy on held-out real pieces comes
  first (how well these features tell the styles apart at all), then on generated pieces, both against
  chance (the majority style's share).
- Primer continuity: tempo (the median inter-onset interval), key (the best-fitting major/minor scale) and
  density (notes per second) of the continuation against the primer's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.midi_io import Note
from .statistics import MAJOR_SCALE, MINOR_SCALE, SCALAR_STATISTICS, PieceStatistics

MIN_STYLE_PIECES = 4  # a style needs this many real pieces to be trained on and tested
CLASSIFIER_SEED = 0
CLASSIFIER_MAX_ITER = 2000  # lbfgs on a few hundred pieces converges well before this


def instrument_adherence(notes: list[Note], instruments: list[str], stats: PieceStatistics) -> dict:
    """Share of notes outside ``stats.asked`` and the asked families that (almost) never play.

    Args:
        notes (`list[Note]`): the generated piece.
        instruments (`list[str]`): family names.
        stats (`PieceStatistics`): the piece's statistics, computed with ``asked``.
    """
    asked = set(stats.asked)
    outside = sum(instruments[n.family] not in asked for n in notes)
    return {"outside_share": outside / len(notes) if notes else 0.0, "silent_asked": list(stats.silent_asked)}


def style_features(stats: PieceStatistics, instruments: list[str]) -> list[float]:
    """Features of one piece for the style classifier: the scalar statistics and each family's note share."""
    total = max(stats.notes, 1)
    return [*stats.scalars().values(), *(stats.notes_per_family.get(f, 0) / total for f in instruments)]


FEATURE_NAMES = SCALAR_STATISTICS  # followed by one note share per family


@dataclass
class StyleAdherence:
    """Accuracy of the style classifier (``nan`` where no pieces were scored)."""

    styles: list[str]
    train_pieces: int
    real_heldout_accuracy: float
    real_heldout_pieces: int
    generated_accuracy: float
    generated_pieces: int
    chance: float  # the majority style's share of the training pieces
    skipped: str = ""  # why the classifier did not run, when it did not


def fit_style_classifier(train: list[tuple[str, list[float]]]):
    """``(classifier, styles, counts)``: the style classifier fitted on real ``(style, features)`` pairs.

    Only styles with at least ``MIN_STYLE_PIECES`` pieces take part (``styles``, sorted); ``counts`` holds every
    style's piece count. The classifier is ``None`` when fewer than two styles qualify; otherwise a scikit-learn
    pipeline whose ``predict`` takes an array of shape ``(pieces, features)`` and returns style names.

    Args:
        train (`list[tuple[str, list[float]]]`): real pieces to fit on (``style_features`` of each).
    """
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    counts: dict[str, int] = {}
    for style, _ in train:
        counts[style] = counts.get(style, 0) + 1
    styles = sorted(s for s, c in counts.items() if c >= MIN_STYLE_PIECES)
    if len(styles) < 2:
        return None, styles, counts
    model = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
        LogisticRegression(max_iter=CLASSIFIER_MAX_ITER, random_state=CLASSIFIER_SEED),
    )
    fitted = [p for p in train if p[0] in styles]
    model.fit(np.asarray([f for _, f in fitted], dtype=float), [s for s, _ in fitted])
    return model, styles, counts


def style_adherence(train: list[tuple[str, list[float]]], heldout: list[tuple[str, list[float]]],
                    generated: list[tuple[str, list[float]]]) -> StyleAdherence:
    """Trains on real ``(style, features)`` pairs and scores held-out real and generated pieces.

    Only styles with at least ``MIN_STYLE_PIECES`` training pieces take part; pieces of other styles are left
    out of every set.

    Args:
        train (`list[tuple[str, list[float]]]`): real pieces to fit on.
        heldout (`list[tuple[str, list[float]]]`): real pieces the classifier never saw.
        generated (`list[tuple[str, list[float]]]`): generated pieces with the style they were asked for.
    """
    model, styles, counts = fit_style_classifier(train)
    train = [p for p in train if p[0] in styles]
    heldout = [p for p in heldout if p[0] in styles]
    generated = [p for p in generated if p[0] in styles]
    if model is None:
        return StyleAdherence(styles, len(train), math.nan, 0, math.nan, 0, math.nan,
                              skipped=f"needs 2 styles with >= {MIN_STYLE_PIECES} real pieces, the reference has {styles}")

    def accuracy(pieces) -> float:
        if not pieces:
            return math.nan
        predicted = model.predict(np.asarray([f for _, f in pieces], dtype=float))
        return float(np.mean([p == s for p, (s, _) in zip(predicted, pieces)]))

    return StyleAdherence(styles, len(train), accuracy(heldout), len(heldout), accuracy(generated), len(generated),
                          max(counts[s] for s in styles) / len(train))


def best_scale(pitches) -> tuple[int, str, float]:
    """(root pitch class, "major" or "minor", share of notes in it) of the best-fitting scale; ties go to
    the lowest root, major first. ``(-1, "", nan)`` for no pitches."""
    pitches = np.asarray(pitches, dtype=np.int64)
    if not len(pitches):
        return -1, "", math.nan
    counts = np.bincount(pitches % 12, minlength=12)
    best = max(((counts[np.roll(scale, root)].sum(), -i, root, mode)
                for i, (mode, scale) in enumerate((("major", MAJOR_SCALE), ("minor", MINOR_SCALE)))
                for root in range(12)), key=lambda t: (t[0], t[1], -t[2]))
    return best[2], best[3], float(best[0] / len(pitches))


def in_scale_share(pitches, root: int, mode: str) -> float:
    """Share of ``pitches`` inside the scale (``root``, ``mode``); ``nan`` for none."""
    pitches = np.asarray(pitches, dtype=np.int64)
    if not len(pitches) or root < 0:
        return math.nan
    scale = np.roll(MAJOR_SCALE if mode == "major" else MINOR_SCALE, root)
    return float(scale[pitches % 12].mean())


def primer_continuity(primer: PieceStatistics, primer_pitches, continuation: PieceStatistics, continuation_pitches) -> dict:
    """Tempo, key and density of a continuation against its primer.

    Args:
        primer (`PieceStatistics`): statistics of the primer's notes.
        primer_pitches (`array-like`): the primer's pitched notes' MIDI pitches.
        continuation (`PieceStatistics`): statistics of the generated notes after the primer (shifted to 0).
        continuation_pitches (`array-like`): their pitches.

    Returns:
        `dict`: ``inter_onset_ratio`` (continuation's median inter-onset interval / the primer's: 1 keeps the
        pulse), ``density_ratio`` (notes per second, likewise), ``primer_key``, ``continuation_key``,
        ``same_key`` and ``continuation_in_primer_key`` (share of the continuation's notes in the primer's scale).
    """
    root, mode, _ = best_scale(primer_pitches)
    croot, cmode, _ = best_scale(continuation_pitches)
    names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

    def ratio(a: float, b: float) -> float:
        return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan

    return {
        "inter_onset_ratio": ratio(continuation.median_inter_onset, primer.median_inter_onset),
        "density_ratio": ratio(continuation.notes_per_second, primer.notes_per_second),
        "primer_key": f"{names[root]} {mode}" if root >= 0 else "",
        "continuation_key": f"{names[croot]} {cmode}" if croot >= 0 else "",
        "same_key": root >= 0 and (root, mode) == (croot, cmode),
        "continuation_in_primer_key": in_scale_share(continuation_pitches, root, mode),
    }
