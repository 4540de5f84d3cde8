"""Shared fixtures: the path to ../shared/midi and tiny MIDI files built in code."""

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
