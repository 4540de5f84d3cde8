"""Shared fixtures: the path to ../shared/midi, the tokenizer, the bundled and a tiny pipeline checkpoint, the local Hub,
a tiny song corpus and checkpoint signing keys."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_MIDI = REPO.parent / "shared" / "midi"


def shared_midi(*parts: str) -> Path:
    """A path under ../shared/midi, or skip the test when that data is not beside the checkout."""
    path = SHARED_MIDI.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the real-MIDI data lives in ../shared/midi beside the repo")
    return path


@pytest.fixture(scope="session")
def tokenizer():
    from musenet_hf import MuseNetTokenizer

    return MuseNetTokenizer()


@pytest.fixture(scope="session")
def default_pipe():
    """The bundled default model as a pipeline (loaded once per session; offline)."""
    from transformers import pipeline

    import musenet_hf  # noqa: F401  (registers the task)

    return pipeline("midi-generation")


# The small Debian GM soundfont renders ~2.5x faster than FluidR3; tests take it when it is there.
TEST_SOUNDFONTS = ("/usr/share/sounds/sf2/TimGM6mb.sf2",)


@pytest.fixture(scope="session")
def gm_soundfont() -> Path:
    """A General MIDI soundfont for FluidSynth, or skip saying what to install (see README, Listen and play)."""
    from musenet_hf.listen.audio import AudioError, find_fluidsynth, find_soundfont

    try:
        find_fluidsynth()
        return next((Path(p) for p in TEST_SOUNDFONTS if Path(p).is_file()), None) or find_soundfont()
    except AudioError as exc:
        pytest.skip(f"audio rendering unavailable: {exc}")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny randomly initialised checkpoint in the layout train.py writes (see pipeline_fixtures.py)."""
    from pipeline_fixtures import save_tiny_checkpoint

    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny-musenet"))


@pytest.fixture(scope="session")
def hub_server():
    """The local Hub of hub_server.py (127.0.0.1, in memory), with the tokens of hub_fixtures.HUB_TOKENS."""
    from hub_fixtures import HUB_TOKENS
    from hub_server import HubServer

    with HubServer(HUB_TOKENS) as server:
        yield server


@pytest.fixture(scope="session")
def song_corpus(tmp_path_factory):
    """A built corpus of patterned songs a tiny model learns in a few steps (train and validation splits)."""
    from training_fixtures import build_song_corpus

    return build_song_corpus(tmp_path_factory.mktemp("songs"))


@pytest.fixture(scope="session")
def checkpoint_key_file(tmp_path_factory):
    """A test-only checkpoint signing key file, for child training processes (``training_fixtures.run_env``)."""
    return tmp_path_factory.mktemp("key") / "checkpoint.key"


@pytest.fixture
def private_checkpoint_key(tmp_path, monkeypatch):
    """This test's own checkpoint signing key (never the user's ``~/.cache`` one); returns its path."""
    from musenet_hf.training import checkpointing

    path = tmp_path / "checkpoint.key"
    monkeypatch.setenv(checkpointing.KEY_ENV, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory) -> Path:
    """A tiny random checkpoint that LoRA adapters are made for (kept unchanged by every test)."""
    from pipeline_fixtures import save_tiny_checkpoint

    return save_tiny_checkpoint(tmp_path_factory.mktemp("lora-base"))


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_base_dir, tmp_path_factory) -> Path:
    """An adapter of ``tiny_base_dir`` adding the style ``lofi``, with random non-zero weights."""
    from adapter_fixtures import save_tiny_adapter

    return save_tiny_adapter(tiny_base_dir, tmp_path_factory.mktemp("lora-adapter"), ["lofi"])
