"""The golden record (tests/golden/golden.json, written before the restructuring): the encoder's ids for
real files, the outcome of every edge-case file, and the bundled model's ids for a fixed call must not
change unless a change means them to (then rewrite it with ``python tests/golden/record.py --write`` and
say why in the commit)."""

from __future__ import annotations

import json

import pytest
from conftest import shared_midi
from golden.record import GOLDEN, encoding_record, generation_record


@pytest.fixture(scope="module")
def golden():
    return json.loads(GOLDEN.read_text())


def test_encoder_outcomes_match_the_golden_record(golden, tokenizer):
    root = shared_midi()
    now = encoding_record(tokenizer, root)
    for part in ("pop909", "edge_cases"):
        changed = sorted(k for k in golden[part] if now[part].get(k) != golden[part][k])
        assert set(now[part]) == set(golden[part]), f"{part}: the set of files differs"
        assert not changed, f"{part}: {len(changed)} outcomes changed, e.g. {changed[:3]}"


def test_bundled_model_generates_the_golden_ids(golden, default_pipe):
    assert generation_record(default_pipe)["ids"] == golden["generation"]["ids"]
