"""One generated piece as files: its MIDI, its audio and its piano roll, named after one stem.

``save_piece`` is what ``musenet-hf generate --audio --roll`` and the Gradio app both write, so a piece
looks and sounds the same from either.
"""

from __future__ import annotations

import os
from pathlib import Path

from .audio import DEFAULT_SAMPLE_RATE, audio_format, render_audio


def piece_title(result: dict) -> str:
    """A piano-roll title from a pipeline result: ``"pop: piano, bass, drums"``; a blend shows its weights."""
    style = result.get("style", "unknown")
    if isinstance(style, dict):
        style = " + ".join(f"{name} {weight:g}" for name, weight in style.items())
    return f"{style}: {', '.join(result['instruments']) or 'silence'}"


def save_piece(result: dict, tokenizer, stem: str | os.PathLike, audio: str | None = None, roll: bool = False,
               soundfont: str | os.PathLike | None = None, sample_rate: int = DEFAULT_SAMPLE_RATE) -> dict[str, Path]:
    """Write one ``pipeline("midi-generation")`` result as ``STEM.mid`` (+ ``STEM.<audio>``, ``STEM.png``).

    Args:
        result (`dict`): one variation as the pipeline returns it (``midi``, ``ids``, ``instruments``, ``style``).
        tokenizer (`MuseNetTokenizer`): the pipeline's tokenizer (decodes ``ids`` to notes for the roll).
        stem (`str` or `os.PathLike`): the path without extension; its folder is created.
        audio (`str`, *optional*, defaults to `None`): "wav", "ogg" or "flac" to render audio too.
        roll (`bool`, *optional*, defaults to `False`): draw the piano roll as a PNG.
        soundfont (`str` or `os.PathLike`, *optional*, defaults to `None`): see ``audio.find_soundfont``.
        sample_rate (`int`, *optional*, defaults to 44100): audio samples per second.

    Returns:
        `dict[str, Path]`: ``{"midi": ..., "audio": ..., "roll": ...}`` for the files written.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = {"midi": stem.with_name(stem.name + ".mid")}
    result["midi"].save(paths["midi"])
    if audio is not None:
        fmt = audio_format(f"x.{audio}")
        paths["audio"] = render_audio(result["midi"], stem.with_name(f"{stem.name}.{fmt}"), soundfont, sample_rate)
    if roll:
        from ..evaluation.plots import plot_piano_roll

        notes = tokenizer.decode_events(result["ids"]).notes
        paths["roll"] = stem.with_name(stem.name + ".png")
        plot_piano_roll(notes, tokenizer.instruments, title=piece_title(result), path=paths["roll"],
                        seconds=result.get("seconds"))
    return paths
