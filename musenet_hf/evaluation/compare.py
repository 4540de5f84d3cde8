"""Generated against real, one statistic at a time: histogram overlap, and the real-vs-real reference line.

For a statistic with one value per piece, the *overlapping area* of two normalised histograms on shared bins
is ``sum_b min(p_b, q_b)``: 1 when the two sets are spread identically, 0 when they never meet (the measure
used by Yang & Lerch, "On the evaluation of generative models in music", Neural Computing and Applications
2020). Small sets score below 1 even when drawn from the same music, so every generated-vs-real figure is
read against real-vs-real: the overlap of two disjoint halves of the real pieces, on the same binning.

The quality issue also reads each statistic as the gap between medians in units of the real interquartile
range: ``|median(generated) - median(real)| / IQR(real)``.

A handful of generated pieces cannot reach the real-vs-real line even when they are real music: 8 values in
5 bins leave each bin's share off by ~0.1. So each comparison also measures that noise floor: as many real
pieces as were generated, drawn at random, against the remaining real pieces, on the same bins
(``real_sample_vs_real``, ``NOISE_DRAWS`` draws). ``real_vs_real - real_sample_vs_real`` is the shortfall a
generator whose pieces were indistinguishable from the real ones would show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MAX_BINS = 20  # Yang & Lerch-style histograms; fewer for small sets (below)
MIN_BINS = 5
HALVES_SEED = 0  # real pieces are shuffled with this seed before being cut into two halves
# Draws of the noise floor: 20 puts the mean within ~0.02 of its limit (each draw's overlap spreads ~0.1).
NOISE_DRAWS = 20
NOISE_SEED = 1


@dataclass
class StatisticComparison:
    """One statistic, generated against real. Overlaps are in [0, 1]; ``nan`` where a set is empty."""

    name: str
    real_vs_real: float
    generated_vs_real: float
    real_median: float
    real_iqr: float
    generated_median: float
    gap_in_iqr: float  # |generated median - real median| / real IQR
    real_pieces: int
    generated_pieces: int
    # the noise floor: the overlap of ``generated_pieces`` real pieces with the other real pieces, each draw's
    # and their mean (empty and nan when there are not two more real pieces than generated ones)
    real_sample_vs_real_draws: list[float] = field(default_factory=list)
    real_sample_vs_real: float = math.nan


def _finite(values) -> np.ndarray:
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    return arr[np.isfinite(arr)]


def bin_count(n: int) -> int:
    """Bins for ``n`` values: the square-root rule, between ``MIN_BINS`` and ``MAX_BINS``."""
    return int(min(MAX_BINS, max(MIN_BINS, math.ceil(math.sqrt(max(n, 1))))))


def histogram_overlap(a, b, bins: int | None = None, value_range: tuple[float, float] | None = None) -> float:
    """Overlapping area of the normalised histograms of ``a`` and ``b`` on shared bins.

    Args:
        a, b (`array-like`): one value per piece; non-finite values are left out.
        bins (`int`, *optional*): number of equal bins; default ``bin_count`` of the smaller set.
        value_range (`tuple[float, float]`, *optional*): the binned range; default the range both sets span.

    Returns:
        `float`: in [0, 1]; ``nan`` when either set is empty.
    """
    a, b = _finite(a), _finite(b)
    if not len(a) or not len(b):
        return math.nan
    lo, hi = value_range or (min(a.min(), b.min()), max(a.max(), b.max()))
    if hi <= lo:  # every value identical: both histograms are one spike
        return 1.0 if (a == lo).all() and (b == lo).all() else 0.0
    edges = np.linspace(lo, hi, (bins or bin_count(min(len(a), len(b)))) + 1)
    pa = np.histogram(np.clip(a, lo, hi), edges)[0] / len(a)
    pb = np.histogram(np.clip(b, lo, hi), edges)[0] / len(b)
    return float(np.minimum(pa, pb).sum())


def real_halves(n: int, seed: int = HALVES_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Indices of two disjoint halves of ``n`` real pieces (a seeded shuffle, cut in the middle)."""
    order = np.random.default_rng(seed).permutation(n)
    return order[: n // 2], order[n // 2:]


def compare_statistic(name: str, real, generated) -> StatisticComparison:
    """``StatisticComparison`` of one statistic; both overlaps use the same bins and range.

    Args:
        name (`str`): the statistic's name.
        real (`array-like`): one value per real piece.
        generated (`array-like`): one value per generated piece.
    """
    r, g = _finite(real), _finite(generated)
    both = np.concatenate([r, g])
    span = (float(both.min()), float(both.max())) if len(both) else None
    first, second = real_halves(len(r))
    # The halves have len(r) / 2 pieces each: the same bin count serves both lines, so they compare.
    bins = bin_count(min(len(first), len(g)) if len(g) else len(first))
    rvr = histogram_overlap(r[first], r[second], bins, span) if len(r) >= 2 else math.nan
    gvr = histogram_overlap(g, r, bins, span)
    q1, med, q3 = np.percentile(r, [25, 50, 75]) if len(r) else (math.nan,) * 3
    gmed = float(np.median(g)) if len(g) else math.nan
    iqr = float(q3 - q1)
    gap = abs(gmed - med) / iqr if iqr > 0 else (0.0 if gmed == med else math.inf)
    floor = noise_floor(r, len(g), bins, span)
    return StatisticComparison(name, rvr, gvr, float(med), iqr, gmed, float(gap), len(r), len(g), floor,
                               float(np.mean(floor)) if floor else math.nan)


def noise_floor(real: np.ndarray, size: int, bins: int, span, draws: int = NOISE_DRAWS, seed: int = NOISE_SEED) -> list[float]:
    """Overlaps of ``size`` real values drawn at random with the remaining ones, ``draws`` times.

    Args:
        real (`np.ndarray`): one finite value per real piece.
        size (`int`): pieces per draw (the generated set's size).
        bins (`int`), span (`tuple[float, float]`): the binning the generated set was compared on.
        draws (`int`, defaults to ``NOISE_DRAWS``): how many draws.
        seed (`int`, defaults to ``NOISE_SEED``): the draws' seed.

    Returns:
        `list[float]`: one overlap per draw; empty when ``size`` is 0 or leaves fewer than 2 real values.
    """
    if size < 1 or len(real) - size < 2:
        return []
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(draws):
        order = rng.permutation(len(real))
        out.append(histogram_overlap(real[order[:size]], real[order[size:]], bins, span))
    return out


def compare_all(real: dict[str, list[float]], generated: dict[str, list[float]]) -> list[StatisticComparison]:
    """``compare_statistic`` for every name present in both dicts (``name -> one value per piece``)."""
    return [compare_statistic(name, real[name], generated[name]) for name in real if name in generated]
