"""Tests of ``musenet_hf.core.errors``: the time bound of one file leaves garbage collections out."""

import gc
import time

import pytest

from musenet_hf.core.errors import MidiError, WorkBudget, work_seconds


def test_work_budget_leaves_garbage_collections_out():
    heap = [[i] for i in range(400_000)]  # containers a full collection walks, as a loaded corpus's notes are
    start = time.thread_time()
    gc.collect()
    collection = time.thread_time() - start
    assert collection > 0.005 and len(heap) == 400_000
    budget = WorkBudget("big.mid", collection / 2)
    before = work_seconds()
    gc.collect()
    gc.collect()  # twice the bound in collections alone: a big heap is not the file's cost
    budget.check()
    assert work_seconds() - before < collection / 2
    deadline = time.thread_time() + collection  # the file's own work still counts
    while time.thread_time() < deadline:
        pass
    with pytest.raises(MidiError, match="big.mid: took over .* s of CPU time"):
        budget.check()
