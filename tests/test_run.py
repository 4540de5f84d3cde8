"""``train`` in-process on a tiny model: the loss falls, the record and checkpoint folder load, and
``keep_best`` publishes the lowest validation loss."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from training_fixtures import tiny_args

from musenet_hf.core.tokenization_musenet import MuseNetTokenizer
from musenet_hf.training.arguments import parse_training_args
from musenet_hf.training.run import train

pytestmark = pytest.mark.usefixtures("private_checkpoint_key")


def test_tiny_model_loss_falls_and_checkpoint_dir_loads(tmp_path, song_corpus):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "run"
    torch.set_num_threads(1)
    record = train(*parse_training_args(tiny_args(song_corpus, out, max_steps=30, save_steps=0, eval_steps=10)))

    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    saved = json.loads((out / "training_record.json").read_text())
    assert saved["metrics"] == record["metrics"]
    m = saved["metrics"]
    assert m["bits_per_note"] > 0 and m["baseline_bits_per_note"] > 0
    assert m["perplexity"] == pytest.approx(math.exp(m["eval_loss"]))
    assert saved["steps"] == 30 and saved["styles"][0] == "unknown" and "piano" in saved["instruments"]
    assert not (out / "checkpoints").exists()  # save_steps 0: no resumable state left behind

    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert isinstance(tok, MuseNetTokenizer) and model.config.vocab_size == len(tok)
    assert (out / "model.safetensors").is_file() and model.generation_config.do_sample


def test_keep_best_publishes_the_lowest_validation_loss(tmp_path, song_corpus):
    out = tmp_path / "run"
    torch.set_num_threads(1)
    # a constant learning rate far too high makes the validation loss wander: here the best came at step 16
    record = train(*parse_training_args(tiny_args(song_corpus, out, max_steps=24, save_steps=0, eval_steps=4, learning_rate=1.0,
                                                  warmup_steps=0, min_lr_ratio=1.0)))
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"eval_loss"' in line]
    best = min(evals, key=lambda e: e["eval_loss"])
    assert record["metrics"]["eval_loss"] == best["eval_loss"]
    assert record["saved_step"] == best["step"]
    if best["step"] != 24:
        from safetensors.torch import load_file

        published, kept = load_file(out / "model.safetensors"), load_file(out / f"best-step-{best['step']:08d}" / "model.safetensors")
        assert all(torch.equal(published[k], kept[k]) for k in kept)
