"""The project's one error type for MIDI input that cannot (or must not) be encoded."""

from __future__ import annotations

import os


class MidiError(ValueError):
    """A MIDI file is unreadable or exceeds a limit.

    The message always names the file (``source``) and the reason, so a corpus build can
    report it next to the file and a user can act on it.
    """

    def __init__(self, source: object, reason: str):
        self.source = describe_source(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


def describe_source(source: object) -> str:
    """A short human name for a MIDI source: a path, '<bytes: N>' or '<MidiFile name>'."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    filename = getattr(source, "filename", None)
    return filename if filename else f"<{type(source).__name__}>"
