"""The training loop's pieces: the seeded batch plan, length grouping, the learning-rate schedule, the optimizer groups."""

from __future__ import annotations

import numpy as np
import pytest

from musenet_hf.training.loop import learning_rate_at, make_optimizer, plan_batches


def test_plan_is_seeded_disjoint_across_processes_and_equal_in_count():
    lengths = np.random.default_rng(0).integers(10, 500, size=1001)
    plans = [plan_batches(lengths, 8, seed=3, epoch=1, num_processes=3, process_index=p) for p in range(3)]
    assert plans[1] == plan_batches(lengths, 8, seed=3, epoch=1, num_processes=3, process_index=1)
    assert plan_batches(lengths, 8, seed=3, epoch=2, num_processes=3, process_index=1) != plans[1]
    assert len({len(p) for p in plans}) == 1
    seen = [i for plan in plans for batch in plan for i in batch]
    assert len(seen) == len(set(seen)) and len(seen) >= len(lengths) - 3 * 8 * 2


def test_length_grouping_cuts_padding():
    lengths = np.random.default_rng(1).integers(20, 1024, size=4096)

    def padding(plan):
        return sum(len(b) * max(lengths[b]) - sum(lengths[b]) for b in plan) / sum(len(b) * max(lengths[b]) for b in plan)

    rng = np.random.default_rng(2)
    shuffled = rng.permutation(len(lengths))
    random_plan = [shuffled[i : i + 16].tolist() for i in range(0, len(shuffled), 16)]
    assert padding(plan_batches(lengths, 16, seed=0, epoch=0)) < padding(random_plan) / 5


def test_learning_rate_warms_up_then_decays_to_the_floor():
    lrs = [learning_rate_at(s, total=100, warmup=10, peak=1e-3, min_ratio=0.1) for s in range(101)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[100] == pytest.approx(1e-4)


def test_optimizer_decays_matrices_but_not_biases_or_layer_norms(tokenizer):
    import torch

    from musenet_hf.modeling.presets import build_model
    from musenet_hf.training.arguments import TrainingArguments

    model = build_model("tiny", tokenizer)
    optimizer = make_optimizer(model, TrainingArguments(weight_decay=0.1), torch.device("cpu"))
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(p.dim() < 2 for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len([p for p in model.parameters() if p.requires_grad])
