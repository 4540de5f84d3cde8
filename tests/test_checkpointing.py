"""Resumable checkpoints: the signed manifest refuses foreign or altered folders; rotation keeps the newest."""

from __future__ import annotations

import pytest

from musenet_hf.training import checkpointing

pytestmark = pytest.mark.usefixtures("private_checkpoint_key")


def _fake_checkpoint(folder):
    folder.mkdir(parents=True)
    (folder / "optimizer.bin").write_bytes(b"state")
    checkpointing.write_manifest(folder, {"loop": {"step": 4}})
    return folder


def test_checkpoint_signature_accepts_own_and_refuses_others(tmp_path, monkeypatch, private_checkpoint_key):
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
    monkeypatch.setenv(checkpointing.KEY_ENV, str(private_checkpoint_key))
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


def test_resume_key_changes_with_any_setting_that_breaks_exact_resume():
    from musenet_hf.training.arguments import TrainingArguments

    one = 1
    base = checkpointing.resume_key(TrainingArguments(), one, context_length=128, vocab_size=100)
    assert checkpointing.resume_key(TrainingArguments(), one, 128, 100) == base
    changed = [
        checkpointing.resume_key(TrainingArguments(seed=1), one, 128, 100),
        checkpointing.resume_key(TrainingArguments(per_device_batch_size=2), one, 128, 100),
        checkpointing.resume_key(TrainingArguments(gradient_accumulation_steps=2), one, 128, 100),
        checkpointing.resume_key(TrainingArguments(), 2, 128, 100),
        checkpointing.resume_key(TrainingArguments(), one, 256, 100),
        checkpointing.resume_key(TrainingArguments(), one, 128, 101),
    ]
    assert all(key != base for key in changed)
    assert checkpointing.resume_key(TrainingArguments(learning_rate=1.0), one, 128, 100) == base  # free to change
