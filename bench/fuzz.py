"""Fuzz the MIDI reader and encoder with seeded mutations of real files and structure-aware cases.

Every case must end as accepted ids or a ``MidiError`` within ``SLOW_CASE_SECONDS`` of CPU time, in a worker
whose peak RSS stays under 1 GB. Run: ``python bench/fuzz.py --cases 1000 --seed 0 --workers 2``.
Prints: cases, accepted, MidiError by reason, other exceptions (must be 0), cases that hit the per-case
wall-clock timeout (must be 0), cases over 2 s of CPU time (must be 0), peak RSS of the workers.

Case ``index`` of run ``seed`` is a pure function of (seed, index) and the source files, so any case the
summary lists can be replayed alone: ``python bench/fuzz.py --seed 0 --case 106 [--save case.mid]``.

Time is the case's CPU time in its worker (``time.thread_time``), not wall time: several workers (and other
jobs) share the cores, and the per-file bound the library enforces (``MidiLimits.max_cpu_seconds``) is CPU
time too. A wall-clock alarm (``--case-timeout``) still stops a case that somehow escapes that bound; it is
reported as a timeout, never as a ``MidiError``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import io
import multiprocessing
import random
import re
import resource
import signal
import sys
import time
from pathlib import Path

import mido

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED_POP909 = ROOT.parent / "shared" / "midi" / "pop909"
SLOW_CASE_SECONDS = 2.0  # CPU seconds: a case over this counts as slow (the target is none)
MAX_RSS_MB = 1024  # peak worker RSS must stay under this
MAX_TASKS_PER_WORKER = 2000  # a fresh (forked, so cheap) worker now and then, so one case's garbage cannot pile up
SEED_STRIDE = 1_000_003  # a prime: runs of different seeds draw disjoint case seeds for any run under 1M cases
FLOOD_SIZES = (10_000, 100_000, 400_000)  # note pairs of a running-status flood (~60 KB, 600 KB, 2.4 MB)
KINDS = ("byte flips", "truncation", "chunk length", "track count", "division", "max VLQ", "mido-built", "tempo or flood")


def case_seed(seed: int, index: int) -> int:
    """The random seed of case ``index`` in the run of ``seed``."""
    return seed * SEED_STRIDE + index


def _vlq_max() -> bytes:
    return b"\xff\xff\xff\x7f"


def flood_bytes(n: int) -> bytes:
    """A type-0 file of ``n`` zero-length notes on one key, all at tick 0, in running status (the note bomb)."""
    body = b"\x00\x90\x3c\x40" + b"\x00\x3c\x00\x00\x3c\x40" * n + b"\x00\xff\x2f\x00"
    return b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0" + b"MTrk" + len(body).to_bytes(4, "big") + body


def _structured(rng: random.Random) -> bytes:
    """A file built with mido: extreme tempos, divisions, deltas, sysex and meta between running status."""
    ppq = rng.choice([1, 2, 96, 480, 32767])
    midi = mido.MidiFile(type=rng.choice([0, 1, 2]), ticks_per_beat=ppq)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=rng.choice([1, 500_000, 0xFFFFFF]), time=0))
    for _ in range(rng.randint(1, 300)):
        r = rng.random()
        t = rng.choice([0, 0, 1, 10, 0x0FFFFFFF])
        if r < 0.1:
            track.append(mido.Message("sysex", data=[rng.randint(0, 127)] * rng.randint(0, 50), time=t))
        elif r < 0.2:
            track.append(mido.MetaMessage("text", text="x" * rng.randint(0, 30), time=t))
        else:
            track.append(mido.Message("note_on", channel=rng.randint(0, 15), note=rng.randint(0, 127),
                                      velocity=rng.randint(0, 127), time=t))
    midi.tracks.append(track)
    buf = io.BytesIO()
    midi.save(file=buf)
    return buf.getvalue()


def make_case(seed: int, sources: list[bytes]) -> tuple[str, bytes]:
    """Case ``seed`` (see ``case_seed``): (its kind, its bytes), a mutated source file or a structure-aware one.

    Deterministic in ``seed`` and ``sources``; with no sources every case is mido-built.
    """
    rng = random.Random(seed)
    kind = rng.randrange(8)
    if kind == 6 or not sources:
        return KINDS[6], _structured(rng)
    if kind == 7 and rng.random() < 0.05:
        return "flood", flood_bytes(rng.choice(FLOOD_SIZES))
    data = bytearray(rng.choice(sources))
    if kind == 0:  # byte flips
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:  # truncation
        data = data[: rng.randrange(len(data))]
    elif kind == 2:  # a chunk length rewritten
        pos = [m.start() for m in re.finditer(b"MTrk", data)]
        if pos:
            p = rng.choice(pos) + 4
            data[p : p + 4] = rng.choice([0, 1, 0xFFFFFFFF, rng.randrange(1 << 32)]).to_bytes(4, "big")
    elif kind == 3:  # the track count
        data[10:12] = rng.choice([0, 1, 0xFFFF, rng.randrange(1 << 16)]).to_bytes(2, "big")
    elif kind == 4:  # the division: ppq 1, 32767, SMPTE
        data[12:14] = rng.choice([1, 32767, 0xE728, 0]).to_bytes(2, "big")
    elif kind == 5:  # a variable-length quantity at its maximum spliced in
        p = rng.randrange(22, len(data)) if len(data) > 22 else len(data)
        data[p:p] = _vlq_max()
    else:  # tempo metas at extremes
        for m in re.finditer(b"\xff\x51\x03", bytes(data)):
            data[m.end() : m.end() + 3] = rng.choice([b"\x00\x00\x01", b"\xff\xff\xff"])
    return KINDS[kind], bytes(data)


def source_paths(count: int = 20) -> list[str]:
    """The first ``count`` POP909 files of ../shared/midi (none where it is absent)."""
    return [str(p) for p in sorted(SHARED_POP909.rglob("*.mid"))[:count]]


_SOURCES: list[bytes] = []
_VOCAB = None


def _init(paths: list[str]) -> None:
    global _VOCAB
    from musenet_hf.core.vocabulary import EncodingConfig, Vocabulary

    _SOURCES[:] = [Path(p).read_bytes() for p in paths]
    _VOCAB = Vocabulary(EncodingConfig())


class CaseTimeout(BaseException):
    """The wall-clock alarm of one case. A ``BaseException``, so no ``except Exception`` in the library under
    test can swallow it (a timeout once surfaced as a "not readable" ``MidiError`` that way)."""


def _alarm(signum, frame):
    raise CaseTimeout


def outcome_of(data: bytes, vocab) -> str:
    """'accepted', 'MidiError: <reason, numbers as N>' or 'other: <exception>' for one case's bytes."""
    from musenet_hf.core.codec import encode_score
    from musenet_hf.core.errors import MidiError
    from musenet_hf.core.midi_io import read_midi

    try:
        encode_score(read_midi(data, vocab=vocab), vocab)
        return "accepted"
    except MidiError as exc:
        return "MidiError: " + re.sub(r"[0-9][0-9.,]*", "N", exc.reason.split(" (")[0])[:60]
    except Exception as exc:  # must not happen: reported as a failure
        return f"other: {type(exc).__name__}: {exc}"[:120]


# The alarm repeats every this many seconds after it first fires, until the case stops. A raise that lands in a
# garbage-collector callback or a ``__del__`` is swallowed by the interpreter ("Exception ignored in ..."); CI
# once lost a one-shot alarm in hypothesis's gc callback, and the case ran on to a MidiError.
ALARM_REPEAT_SECONDS = 0.05


def timed_outcome(data: bytes, vocab, timeout: float) -> tuple[str, float]:
    """(``outcome_of`` or 'timeout', CPU seconds) for one case, stopped by a wall-clock alarm after ``timeout`` s."""
    signal.signal(signal.SIGALRM, _alarm)
    start = time.thread_time()
    signal.setitimer(signal.ITIMER_REAL, timeout, ALARM_REPEAT_SECONDS)
    try:
        outcome = outcome_of(data, vocab)
    except CaseTimeout:
        outcome = "timeout"
    finally:
        _disarm()
    return outcome, time.thread_time() - start


def _disarm() -> None:
    """Stop the repeating alarm; one that fires while it is being stopped is dropped (the case has ended)."""
    try:
        signal.setitimer(signal.ITIMER_REAL, 0)
    except CaseTimeout:
        signal.setitimer(signal.ITIMER_REAL, 0)


def run_case(args) -> tuple[int, str, str, float, int]:
    """(index, kind, outcome, CPU seconds, worker peak RSS in KiB) of one case, in a worker."""
    seed, index, timeout = args
    kind, data = make_case(case_seed(seed, index), _SOURCES)
    outcome, seconds = timed_outcome(data, _VOCAB, timeout)
    return index, kind, outcome, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@dataclasses.dataclass
class Summary:
    cases: int
    seed: int
    sources: int
    wall_seconds: float
    outcomes: collections.Counter  # 'accepted', 'MidiError: ...', 'other', 'timeout' -> count
    others: list  # (index, kind, outcome) of other exceptions
    timeouts: list  # (index, kind) of cases stopped by the wall-clock alarm
    slow: list  # (index, kind, CPU seconds) of cases over SLOW_CASE_SECONDS
    max_cpu_seconds: float
    peak_rss_mb: float
    planned: int | None = None  # the cases asked for (more than ``cases`` in a progress line or a stopped run)

    @property
    def ok(self) -> bool:
        return not self.others and not self.timeouts and not self.slow and self.peak_rss_mb < MAX_RSS_MB

    def lines(self) -> list[str]:
        n = self.outcomes
        stopped = f" of {self.planned} planned" if self.planned not in (None, self.cases) else ""
        out = [f"cases {self.cases}{stopped} (seed {self.seed}, {self.sources} POP909 sources, {self.wall_seconds:.1f} s wall, "
               f"{self.cases / max(self.wall_seconds, 1e-9):.0f}/s)",
               f"accepted {n.get('accepted', 0)}"]
        out += [f"  {c:7d}  {r}" for r, c in n.most_common() if r.startswith("MidiError")]
        out.append(f"other exceptions: {len(self.others)} {self.others[:5]}")
        out.append(f"per-case timeouts: {len(self.timeouts)} {self.timeouts[:5]}")
        worst = sorted(self.slow, key=lambda s: -s[2])[:5]
        out.append(f"cases over {SLOW_CASE_SECONDS:g} s CPU: {len(self.slow)} {worst} (slowest case {self.max_cpu_seconds:.2f} s)")
        out.append(f"peak worker RSS: {self.peak_rss_mb:.0f} MB")
        return out


def run(
    cases: int, seed: int = 0, workers: int = 2, case_timeout: float = 20.0, paths: list[str] | None = None,
    progress: int = 0, first: int = 0,
) -> Summary:
    """Run cases ``first``..``cases``-1 of ``seed`` in ``workers`` processes (``first`` > 0 continues a run that
    was stopped: each case depends only on (seed, index)), mutating the MIDI files ``paths``
    (default ``source_paths()``); each case under a wall-clock alarm of ``case_timeout`` seconds.

    With ``progress`` > 0 the summary so far is printed every ``progress`` cases. Stopped by Ctrl-C or SIGTERM,
    it returns the summary of the cases done so far (``Summary.cases`` counts those, ``Summary.planned`` all).
    """
    paths = source_paths() if paths is None else paths
    import musenet_hf.core.codec  # noqa: F401  (imported here, so forked workers start with it: ~9 s CPU each otherwise)

    outcomes, others, timeouts, slow = collections.Counter(), [], [], []
    rss = slowest = 0.0
    done = 0
    start = time.perf_counter()

    def summary() -> Summary:
        return Summary(done, seed, len(paths), time.perf_counter() - start, outcomes, others, timeouts, slow,
                       slowest, rss / 1024, planned=cases - first)

    jobs = [(seed, i, case_timeout) for i in range(first, cases)]
    # forkserver: workers fork from a small server process, not from the caller, so their peak RSS is the
    # cases' own (forked from a pytest session that had loaded a model, a worker started at ~1 GB)
    pool = multiprocessing.get_context("forkserver").Pool(workers, initializer=_init, initargs=(paths,),
                                                          maxtasksperchild=MAX_TASKS_PER_WORKER)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops the run like Ctrl-C
    try:
        for index, kind, outcome, seconds, peak in pool.imap_unordered(run_case, jobs, chunksize=4):
            done += 1
            outcomes["other" if outcome.startswith("other") else outcome] += 1
            if outcome.startswith("other"):
                others.append((index, kind, outcome))
            elif outcome == "timeout":
                timeouts.append((index, kind))
            if seconds > SLOW_CASE_SECONDS:
                slow.append((index, kind, round(seconds, 2)))
            rss, slowest = max(rss, peak), max(slowest, seconds)
            if progress and done % progress == 0 and done < cases - first:
                print("\n".join(["--- progress", *summary().lines()]), flush=True)
        pool.close()
    except KeyboardInterrupt:
        pool.terminate()
    finally:
        pool.join()
        signal.signal(signal.SIGTERM, previous)
    return summary()


def replay(seed: int, index: int, paths: list[str], save: str | None = None) -> str:
    """Run case ``index`` of ``seed`` alone in this process; returns a line with its kind, size, outcome and time."""
    _init(paths)
    kind, data = make_case(case_seed(seed, index), _SOURCES)
    if save:
        Path(save).write_bytes(data)
    start = time.thread_time()
    outcome = outcome_of(data, _VOCAB)
    return f"case {index} of seed {seed}: {kind}, {len(data)} bytes -> {outcome} ({time.thread_time() - start:.2f} s CPU)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--case-timeout", type=float, default=20.0, help="wall-clock seconds before a case is stopped")
    ap.add_argument("--sources", type=int, default=20, help="POP909 files to mutate")
    ap.add_argument("--case", type=int, default=None, help="replay only this case index of --seed")
    ap.add_argument("--save", default=None, help="with --case: write the case's bytes to this file")
    ap.add_argument("--progress", type=int, default=0, help="print the summary so far every N cases")
    ap.add_argument("--first", type=int, default=0, help="start at this case index (continue a stopped run)")
    args = ap.parse_args(argv)
    paths = source_paths(args.sources)
    if args.case is not None:
        print(replay(args.seed, args.case, paths, args.save))
        return 0
    summary = run(args.cases, args.seed, args.workers, args.case_timeout, paths, args.progress, args.first)
    print("\n".join(summary.lines()))
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
