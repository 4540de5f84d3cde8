"""The run's processes: a signal asks the loop to stop (a second SIGINT aborts), precision and workers on CPU."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from musenet_hf.training.accelerator import StopOnSignal, loader_workers, resolve_mixed_precision
from musenet_hf.training.arguments import TrainingArguments


def test_a_signal_sets_the_flag_and_the_previous_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with StopOnSignal() as signals:
        assert not signals.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the second request: the user wants out now
    assert signal.getsignal(signal.SIGTERM) is before


def test_cpu_runs_get_fp32_and_no_loader_workers():
    assert resolve_mixed_precision(TrainingArguments(mixed_precision="auto", cpu=True)) == "no"
    assert resolve_mixed_precision(TrainingArguments(mixed_precision="bf16", cpu=True)) == "bf16"
    assert loader_workers(torch.device("cpu")) == 0
