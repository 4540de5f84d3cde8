"""The sampling defaults (musenet_hf/core/sampling.py) are what generation actually uses."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pipeline_fixtures import save_tiny_checkpoint
from transformers import pipeline

import musenet_hf
from musenet_hf.core.sampling import SAMPLING_DEFAULTS, describe
from musenet_hf.modeling.presets import default_generation_config

CALL = dict(style="pop", instruments=["piano", "drums"], seconds=2.0, num_return_sequences=2, seed=3, num_threads=1)


def ids_of(pipe, **kwargs):
    return [r["ids"] for r in pipe(**CALL, **kwargs)]


def test_the_bundled_model_samples_with_the_documented_defaults(default_pipe):
    config = default_pipe.model.generation_config
    assert {k: getattr(config, k) for k in SAMPLING_DEFAULTS} == SAMPLING_DEFAULTS
    # what generate() does by default is exactly what the defaults say, and each setting matters
    assert ids_of(default_pipe) == ids_of(default_pipe, **SAMPLING_DEFAULTS)
    assert ids_of(default_pipe) != ids_of(default_pipe, **{**SAMPLING_DEFAULTS, "top_k": 2})


def test_checkpoints_that_set_no_sampling_fall_back_to_the_defaults(tmp_path):
    path = save_tiny_checkpoint(tmp_path / "tiny")  # save_pretrained of a bare model: no sampling settings
    pipe = pipeline("midi-generation", model=str(path))
    assert ids_of(pipe) == ids_of(pipe, **SAMPLING_DEFAULTS)
    assert ids_of(pipe) != ids_of(pipe, **{**SAMPLING_DEFAULTS, "temperature": 0.3})


def test_trained_checkpoints_carry_the_defaults():
    config = default_generation_config(musenet_hf.MuseNetTokenizer(), context_length=256)
    assert {k: getattr(config, k) for k in SAMPLING_DEFAULTS} == SAMPLING_DEFAULTS
    assert config.max_new_tokens <= 256


@pytest.mark.parametrize("flag,name", [("--temperature", "temperature"), ("--top-k", "top_k"), ("--top-p", "top_p")])
def test_generate_help_states_the_effective_default(flag, name):
    out = subprocess.run([sys.executable, "-m", "musenet_hf.cli", "generate", "--help"], capture_output=True, text=True,
                         check=True).stdout
    text = " ".join(out.split())
    help_of_flag = text[text.rindex(flag):]  # the last mention is the option list, after the usage line
    assert f": {describe(name)})" in help_of_flag[: help_of_flag.index(")") + 1]
