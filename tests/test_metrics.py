"""The metrics log drops steps a killed run logged past its checkpoint; the fixed validation windows are
split between processes without overlap, longest first."""

from __future__ import annotations

import json

import numpy as np

from musenet_hf.training.metrics import METRICS_FILE, MetricsLog, eval_batches


def test_a_resumed_log_drops_the_steps_about_to_be_redone(tmp_path):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    log = MetricsLog(accelerator, tmp_path, resumed_step=None)
    for step in range(1, 7):
        log.log(step, {"loss": 1.0 / step})
    MetricsLog(accelerator, tmp_path, resumed_step=4).log(5, {"loss": 0.5})
    steps = [json.loads(line)["step"] for line in (tmp_path / METRICS_FILE).read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]


def test_eval_windows_are_shared_between_processes_without_overlap(song_corpus, tokenizer):
    from musenet_hf.data.corpus import load_corpus, validation_split
    from musenet_hf.data.windows import MidiWindows

    splits, tok = load_corpus(song_corpus)
    windows = MidiWindows(validation_split(splits), tok, context_length=64)
    alone = [i for batch in eval_batches(windows, 2, limit=5) for i in batch]
    shares = [[i for batch in eval_batches(windows, 2, 5, num_processes=2, process_index=p) for i in batch] for p in range(2)]
    assert len(alone) == min(5, len(windows)) and len(set(alone)) == len(alone)
    assert sorted(shares[0] + shares[1]) == sorted(alone) and not set(shares[0]) & set(shares[1])
    lengths = np.asarray(windows.lengths)[alone]
    assert all(a >= b for a, b in zip(lengths, lengths[1:]))  # longest first: the first batch shows the memory peak
