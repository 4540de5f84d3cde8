"""train.py as users run it, in child processes: exact resume after SIGKILL and after SIGTERM, two
real gloo processes, and fine-tuning a checkpoint on a MIDI folder with a new style."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_fixtures import tiny_args, train_cli, write_songs

pytestmark = pytest.mark.slow
RUN_TIMEOUT = 300  # seconds; a tiny run takes ~15 s here, most of it imports


def finish(proc, expect: int = 0) -> str:
    output, _ = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == expect, output[-3000:]
    return output


def interrupt_after_first_checkpoint(proc, out: Path, sig: int) -> None:
    manifest = out / "checkpoints" / "step-00000004" / "musenet_checkpoint.json"
    deadline = time.monotonic() + RUN_TIMEOUT
    while not manifest.is_file():
        assert proc.poll() is None, "the run ended before its first checkpoint:\n" + proc.stdout.read()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(sig)


def same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


@pytest.fixture(scope="module")
def reference(song_corpus, checkpoint_key_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    finish(train_cli(tiny_args(song_corpus, out, max_steps=24), checkpoint_key_file))
    return out


@pytest.mark.parametrize("sig, code", [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 130)])
def test_interrupted_run_resumes_to_identical_weights(song_corpus, checkpoint_key_file, reference, tmp_path, sig, code):
    out = tmp_path / "run"
    proc = train_cli(tiny_args(song_corpus, out, max_steps=24), checkpoint_key_file)
    interrupt_after_first_checkpoint(proc, out, sig)
    output = finish(proc, expect=code)
    assert not (out / "model.safetensors").exists()
    if sig == signal.SIGTERM:
        assert "saving a checkpoint" in output
    finish(train_cli(tiny_args(song_corpus, out, max_steps=24, resume_from_checkpoint="latest"), checkpoint_key_file))
    same_weights(reference, out)
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    assert steps == list(range(1, 25))  # steps logged after the last checkpoint of the killed run were dropped, not doubled


def test_resume_refuses_changed_settings(song_corpus, checkpoint_key_file, reference, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference / "checkpoints", out / "checkpoints")
    argv = tiny_args(song_corpus, out, max_steps=30, per_device_batch_size=2, resume_from_checkpoint="latest")
    output = finish(train_cli(argv, checkpoint_key_file), expect=1)
    assert "settings changed" in output and "per_device_batch_size" in output


def test_two_gloo_processes_train_together(song_corpus, checkpoint_key_file, tmp_path):
    out = tmp_path / "run"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    argv = tiny_args(song_corpus, out, max_steps=20, per_device_batch_size=2, save_steps=10, eval_steps=10)
    finish(train_cli(argv, checkpoint_key_file, launcher=torchrun))
    record = json.loads((out / "training_record.json").read_text())
    assert record["hardware"].startswith("2 x CPU")
    last = sorted((out / "checkpoints").iterdir())[-1]
    assert {p.name for p in last.glob("random_states_*.pkl")} == {"random_states_0.pkl", "random_states_1.pkl"}
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    assert len(losses) == 20 and losses[-1] < 0.7 * losses[0]
    assert record["tokens"] > 20 * 2 * 2 * 16  # both processes' tokens are counted


def test_fine_tune_on_a_midi_folder_with_a_new_style(song_corpus, checkpoint_key_file, reference, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import musenet_hf  # noqa: F401  (registers the tokenizer with AutoTokenizer)

    mine = tmp_path / "my_midi"
    write_songs(mine, count=6, repeats=8, first_pitch=60)
    out = tmp_path / "tuned"
    argv = tiny_args(mine, out, max_steps=6, save_steps=0, style="lofi", model_name_or_path=reference)
    argv = [a for i, a in enumerate(argv) if a != "--preset" and (i == 0 or argv[i - 1] != "--preset")]
    finish(train_cli(argv, checkpoint_key_file))

    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert "lofi" in tok.styles and tok.styles[:-1] == AutoTokenizer.from_pretrained(reference).styles
    assert model.config.vocab_size == len(tok) == AutoModelForCausalLM.from_pretrained(reference).config.vocab_size + 1
    record = json.loads((out / "training_record.json").read_text())
    assert record["preset"].startswith("fine-tuned from") and "lofi" in record["styles"]
    corpus_rows = record["corpus"]["rows"]
    assert sum(corpus_rows.values()) == 6

    header = [tok.bos_token_id, tok.musenet_vocab.style_id("lofi"), tok.musenet_vocab.inst_id(0), tok.musenet_vocab.tempo_id(120)]
    torch.manual_seed(0)
    generated = model.generate(torch.tensor([header]), max_new_tokens=32, do_sample=True)
    assert generated.shape[1] > len(header)
    tok.decode_midi(generated[0])  # any sampled ids decode to a MIDI file
