"""Training pieces that run in-process in seconds: batch plans, schedule, metrics, checkpoint signing,
argument validation, and a tiny model whose loss falls."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from musenet_hf.training import checkpointing
from musenet_hf.evaluation.likelihood import BITS_PER_NAT, BigramBaseline, EvalTotals, note_on_table, shifted_nll
from musenet_hf.core.tokenization_musenet import MuseNetTokenizer
from musenet_hf.training.loop import learning_rate_at, plan_batches
from musenet_hf.training.arguments import DataArguments, ModelArguments, TrainingArguments, validate_arguments
from training_fixtures import build_song_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_song_corpus(tmp_path_factory.mktemp("songs"))


@pytest.fixture(autouse=True)
def private_key(tmp_path, monkeypatch):
    monkeypatch.setenv(checkpointing.KEY_ENV, str(tmp_path / "checkpoint.key"))


# --- data order ------------------------------------------------------------------------------------
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


# --- metrics ---------------------------------------------------------------------------------------------
def test_shifted_nll_counts_only_real_targets_and_notes():
    tok = MuseNetTokenizer()
    vocab = tok.musenet_vocab
    note = vocab.note_on_id(0, 3, 60)
    ids = torch.tensor([[1, note, vocab.wait_id(5), note, 0, 0]])
    labels = ids.masked_fill(ids == 0, -100)
    logits = torch.zeros(1, 6, vocab.size)  # uniform: every target costs log V nats
    nll, tokens, notes = shifted_nll(logits, labels, torch.as_tensor(note_on_table(vocab))).tolist()
    assert tokens == 3 and notes == 2
    assert nll == pytest.approx(3 * math.log(vocab.size), rel=1e-5)
    m = EvalTotals(nll, 3, 2).metrics()
    assert m["bits_per_note"] == pytest.approx(nll * BITS_PER_NAT / 2)
    assert m["perplexity"] == pytest.approx(vocab.size, rel=1e-4)


def test_bigram_is_a_distribution_and_beats_uniform_on_patterns():
    seqs = [[1, 5, 6, 7, 5, 6, 7, 5, 6, 7, 2]] * 4
    model = BigramBaseline.fit(seqs, vocab_size=10, alpha=1.0)
    for a in range(10):
        keys = a * 10 + np.arange(10)
        pos = np.searchsorted(model.keys, keys).clip(max=len(model.keys) - 1)
        pair = np.where(model.keys[pos] == keys, model.counts[pos], 0.0)
        assert ((pair + model.alpha * model.unigram) / (model.context_counts[a] + model.alpha)).sum() == pytest.approx(1.0)
    totals = model.totals(seqs[:1], np.ones(10, dtype=bool))
    assert totals.tokens == 10 and totals.nll_nats / totals.tokens < math.log(10) / 2


# --- checkpoints -----------------------------------------------------------------------------------------
def _fake_checkpoint(folder):
    folder.mkdir(parents=True)
    (folder / "optimizer.bin").write_bytes(b"state")
    checkpointing.write_manifest(folder, {"loop": {"step": 4}})
    return folder


def test_checkpoint_signature_accepts_own_and_refuses_others(tmp_path, monkeypatch):
    ours = _fake_checkpoint(tmp_path / "out" / "checkpoints" / "step-00000004")
    assert checkpointing.verify(ours) == {"loop": {"step": 4}}
    assert checkpointing.resolve(tmp_path / "out", "latest") == ours

    (ours / "optimizer.bin").write_bytes(b"evil pickle")
    with pytest.raises(checkpointing.CheckpointError, match="changed since"):
        checkpointing.verify(ours)

    (ours / "optimizer.bin").write_bytes(b"state")
    (ours / "extra.pkl").write_bytes(b"x")
    with pytest.raises(checkpointing.CheckpointError, match="files differ"):
        checkpointing.verify(ours)

    foreign = tmp_path / "downloaded"
    foreign.mkdir()
    (foreign / "random_states_0.pkl").write_bytes(b"x")
    with pytest.raises(checkpointing.CheckpointError, match="refusing"):
        checkpointing.verify(foreign)

    monkeypatch.setenv(checkpointing.KEY_ENV, str(tmp_path / "someone-else.key"))
    forged = _fake_checkpoint(tmp_path / "forged")
    monkeypatch.setenv(checkpointing.KEY_ENV, str(tmp_path / "checkpoint.key"))
    with pytest.raises(checkpointing.CheckpointError, match="signature mismatch"):
        checkpointing.verify(forged)


def test_rotation_keeps_the_newest_and_drops_interrupted_saves(tmp_path):
    for step in (4, 8, 12):
        _fake_checkpoint(checkpointing.checkpoint_dir(tmp_path, step))
    half_written = checkpointing.checkpoint_dir(tmp_path, 16)
    half_written.mkdir()
    checkpointing.rotate(tmp_path, keep=2)
    assert [p.name for p in checkpointing.list_checkpoints(tmp_path)] == ["step-00000008", "step-00000012"]
    assert not half_written.exists()


# --- arguments -------------------------------------------------------------------------------------------
def test_validation_reports_every_problem_at_once(tmp_path):
    with pytest.raises(ValueError) as info:
        validate_arguments(
            ModelArguments(preset="huge", dropout=1.5),
            DataArguments(data=str(tmp_path / "missing")),
            TrainingArguments(output_dir=str(tmp_path / "o"), per_device_batch_size=0, mixed_precision="fp8"),
        )
    text = str(info.value)
    for fragment in ("--preset 'huge'", "does not exist", "--dropout", "--per_device_batch_size", "--mixed_precision"):
        assert fragment in text


def test_train_py_reads_a_json_config(tmp_path, corpus):
    from musenet_hf.training.arguments import parse_training_args

    config = tmp_path / "run.json"
    config.write_text(json.dumps({"data": str(corpus), "output_dir": str(tmp_path / "o"), "preset": "tiny", "max_steps": 7}))
    model_args, data_args, args = parse_training_args([str(config)])
    assert (model_args.preset, data_args.data, args.max_steps) == ("tiny", str(corpus), 7)


# --- a real run -------------------------------------------------------------------------------------------
def test_tiny_model_loss_falls_and_checkpoint_dir_loads(tmp_path, corpus):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from musenet_hf.training.run import train
    from musenet_hf.training.arguments import parse_training_args as parse
    from training_fixtures import tiny_args

    out = tmp_path / "run"
    torch.set_num_threads(1)
    record = train(*parse(tiny_args(corpus, out, max_steps=30, save_steps=0, eval_steps=10)))

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


def test_keep_best_publishes_the_lowest_validation_loss(tmp_path, corpus):
    from musenet_hf.training.run import train
    from musenet_hf.training.arguments import parse_training_args as parse
    from training_fixtures import tiny_args

    out = tmp_path / "run"
    torch.set_num_threads(1)
    # a constant learning rate far too high makes the validation loss wander: here the best came at step 16
    record = train(*parse(tiny_args(corpus, out, max_steps=24, save_steps=0, eval_steps=4, learning_rate=1.0,
                                    warmup_steps=0, min_lr_ratio=1.0)))
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"eval_loss"' in line]
    best = min(evals, key=lambda e: e["eval_loss"])
    assert record["metrics"]["eval_loss"] == best["eval_loss"]
    assert record["saved_step"] == best["step"]
    if best["step"] != 24:
        from safetensors.torch import load_file

        published, kept = load_file(out / "model.safetensors"), load_file(out / f"best-step-{best['step']:08d}" / "model.safetensors")
        assert all(torch.equal(published[k], kept[k]) for k in kept)


def test_bigram_alpha_is_chosen_on_held_out_training_pieces():
    rng = np.random.default_rng(0)
    # strongly patterned pieces: little smoothing wins; pure noise: heavy smoothing (towards the unigram) wins
    patterned = [np.tile([5, 6, 7, 8], 50) for _ in range(30)]
    noise = [rng.integers(0, 50, size=200) for _ in range(30)]
    assert BigramBaseline.fit_tuned(patterned, 50).alpha < BigramBaseline.fit_tuned(noise, 50).alpha


def test_cast_saved_weights_halves_the_checkpoint_and_still_loads(tmp_path):
    import json

    from transformers import AutoModelForCausalLM

    from musenet_hf import MuseNetTokenizer
    from musenet_hf.modeling.presets import build_model
    from musenet_hf.training.record import cast_saved_weights

    model = build_model("tiny", MuseNetTokenizer())
    model.save_pretrained(tmp_path)
    before = (tmp_path / "model.safetensors").stat().st_size
    cast_saved_weights(tmp_path, "bfloat16")
    assert (tmp_path / "model.safetensors").stat().st_size < 0.6 * before
    assert json.loads((tmp_path / "config.json").read_text())["dtype"] == "bfloat16"
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, dtype="auto")
    assert loaded.dtype == torch.bfloat16
    ref = model.state_dict()["transformer.wte.weight"].to(torch.bfloat16)
    assert torch.equal(loaded.state_dict()["transformer.wte.weight"], ref)
