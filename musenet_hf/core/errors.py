"""The project's one error type for MIDI input that cannot (or must not) be encoded."""

from __future__ import annotations

import gc
import os
import threading
import time


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
    filename = getattr(source, "filename", None)  # mido.MidiFile(path) keeps the path as given (str or Path)
    return os.fspath(filename) if isinstance(filename, (str, os.PathLike)) and filename else f"<{type(source).__name__}>"


# Check the clock once per this many units of work: reading the CPU clock costs ~0.1 us, a unit ~1-5 us.
BUDGET_CHECK_INTERVAL = 1024


class _CollectorClock(threading.local):
    """CPU seconds each thread has spent in Python's garbage collector (which runs in the thread whose
    allocation triggers it): a full collection walks every object of the process, ~2 s with the evaluator's
    reference pieces loaded (5 million objects), and would otherwise be charged to whatever file that thread
    was reading."""

    started: float | None = None
    seconds: float = 0.0


_COLLECTOR = _CollectorClock()


def _on_collection(phase: str, info: dict) -> None:
    if phase == "start":
        _COLLECTOR.started = time.thread_time()
    elif _COLLECTOR.started is not None:
        _COLLECTOR.seconds += time.thread_time() - _COLLECTOR.started
        _COLLECTOR.started = None


gc.callbacks.append(_on_collection)


def work_seconds() -> float:
    """CPU seconds of the current thread, less those it spent collecting garbage."""
    return time.thread_time() - _COLLECTOR.seconds


class WorkBudget:
    """The time bound of one file: CPU seconds of the current thread that reading and encoding it may take.

    CPU time, not wall time, so a file's outcome does not depend on how busy the machine is, nor on how
    big the process's heap is: garbage collections are left out (``work_seconds``). Callers call
    ``tick()`` once per unit of work (a parsed message, a note); past the bound it raises ``MidiError``.

    Args:
        source: the file (or other MIDI source) the work is for, named in the error.
        seconds (`float`): the bound in CPU seconds, counted from construction.
    """

    __slots__ = ("source", "seconds", "_deadline", "_count")

    def __init__(self, source: object, seconds: float):
        self.source, self.seconds = source, float(seconds)
        self._deadline = work_seconds() + self.seconds
        self._count = 0

    def tick(self) -> None:
        self._count += 1
        if self._count % BUDGET_CHECK_INTERVAL == 0:
            self.check()

    def check(self) -> None:
        """Raise ``MidiError`` now if the bound is spent."""
        if work_seconds() > self._deadline:
            raise MidiError(self.source, f"took over {self.seconds:g} s of CPU time (the per-file time limit)")
