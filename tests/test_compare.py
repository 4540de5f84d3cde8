"""Histogram overlap and the real-vs-real reference line."""

import math

import numpy as np
import pytest

from musenet_hf.evaluation.compare import NOISE_DRAWS, compare_statistic, histogram_overlap, noise_floor, real_halves


def test_real_against_itself_scores_one():
    real = np.random.default_rng(0).normal(size=300)
    assert histogram_overlap(real, real) == pytest.approx(1.0)
    c = compare_statistic("x", real, real)
    assert c.generated_vs_real == pytest.approx(1.0)
    assert c.gap_in_iqr == 0.0
    assert c.real_vs_real > 0.8  # two halves of one distribution: close to 1, below it by sampling noise


def test_shifted_and_disjoint_sets_overlap_less():
    rng = np.random.default_rng(1)
    real = rng.normal(size=400)
    near = compare_statistic("x", real, rng.normal(0.5, 1.0, 400))
    far = compare_statistic("x", real, rng.normal(6.0, 1.0, 400))
    assert far.generated_vs_real < 0.05 < near.generated_vs_real < near.real_vs_real
    assert far.gap_in_iqr == pytest.approx(6.0 / (np.percentile(real, 75) - np.percentile(real, 25)), rel=0.1)
    assert histogram_overlap([0, 0, 0], [1, 1]) == 0.0
    assert histogram_overlap([2, 2], [2, 2, 2]) == 1.0


def test_empty_and_nan_values():
    assert math.isnan(histogram_overlap([], [1, 2]))
    assert histogram_overlap([1, float("nan"), 2], [1, 2]) == pytest.approx(1.0)


def test_halves_are_disjoint_and_cover_everything():
    a, b = real_halves(11)
    assert len(a) == 5 and len(b) == 6
    assert sorted(np.concatenate([a, b]).tolist()) == list(range(11))


def test_noise_floor_shrinks_with_the_generated_set_and_matches_a_real_generator():
    rng = np.random.default_rng(2)
    real = rng.uniform(size=200)
    few, many = compare_statistic("x", real, rng.uniform(size=8)), compare_statistic("x", real, rng.uniform(size=60))
    assert len(few.real_sample_vs_real_draws) == NOISE_DRAWS
    assert few.real_sample_vs_real == pytest.approx(np.mean(few.real_sample_vs_real_draws))
    # 8 real-like pieces fall well short of the real-vs-real line; 60 come closer
    assert few.real_sample_vs_real < few.real_vs_real - 0.1
    assert many.real_sample_vs_real > few.real_sample_vs_real + 0.05
    # a generator drawing from the real distribution scores like the floor, not like real-vs-real
    draws = [compare_statistic("x", real, rng.uniform(size=8)).generated_vs_real for _ in range(40)]
    assert abs(np.mean(draws) - few.real_sample_vs_real) < 0.05
    # too few real pieces to draw from: no floor
    assert noise_floor(real[:9], 8, 5, (0.0, 1.0)) == []
    assert math.isnan(compare_statistic("x", real[:9], real[:8]).real_sample_vs_real)
