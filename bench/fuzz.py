"""Fuzz the MIDI reader and encoder with seeded mutations of real files and structure-aware cases.

Every case must end as accepted ids or a ``MidiError``, within ``--case-timeout`` seconds, in a worker
whose peak RSS stays under 1 GB. Run: ``python bench/fuzz.py --cases 1000 --seed 0 --workers 2``.
Prints: cases, accepted, MidiError by reason, other exceptions (must be 0), cases over 2 s (must be 0),
peak RSS of the workers.
"""

from __future__ import annotations

import argparse
import collections
import io
import random
import re
import resource
import signal
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import mido

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED_POP909 = ROOT.parent / "shared" / "midi" / "pop909"
SLOW_CASE_SECONDS = 2.0  # a case over this counts as slow (the target is none)


def _vlq_max() -> bytes:
    return b"\xff\xff\xff\x7f"


def _tiny_event_flood(rng: random.Random) -> bytes:
    """A track of many zero-delta running-status note events on one key (the note bomb's shape)."""
    n = rng.choice([10_000, 100_000, 400_000])
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


def make_case(seed: int, sources: list[bytes]) -> bytes:
    """Case ``seed``: a mutated real file or a structure-aware one (deterministic in ``seed``)."""
    rng = random.Random(seed)
    kind = rng.randrange(8)
    if kind == 6 or not sources:
        return _structured(rng)
    if kind == 7 and rng.random() < 0.05:
        return _tiny_event_flood(rng)
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
    return bytes(data)


_SOURCES: list[bytes] = []
_VOCAB = None


def _init(paths: list[str]) -> None:
    global _VOCAB
    from musenet_hf.core.vocabulary import EncodingConfig, Vocabulary

    _SOURCES[:] = [Path(p).read_bytes() for p in paths]
    _VOCAB = Vocabulary(EncodingConfig())


class _CaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise _CaseTimeout


def run_case(args) -> tuple[int, str, float, int]:
    """(seed, outcome, seconds, worker peak RSS in KiB); outcome is 'accepted', 'MidiError: <reason class>',
    'timeout' or 'other: <exception>'."""
    seed, timeout = args
    from musenet_hf.core.codec import encode_score
    from musenet_hf.core.errors import MidiError
    from musenet_hf.core.midi_io import read_midi

    data = make_case(seed, _SOURCES)
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    start = time.perf_counter()
    try:
        encode_score(read_midi(data, vocab=_VOCAB), _VOCAB)
        outcome = "accepted"
    except MidiError as exc:
        outcome = "MidiError: " + re.sub(r"[0-9][0-9.,]*", "N", exc.reason.split(" (")[0])[:60]
    except _CaseTimeout:
        outcome = "timeout"
    except Exception as exc:  # must not happen: reported as a failure
        outcome = f"other: {type(exc).__name__}: {exc}"[:120]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return seed, outcome, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--case-timeout", type=float, default=20.0)
    ap.add_argument("--sources", type=int, default=20, help="POP909 files to mutate")
    args = ap.parse_args(argv)
    paths = [str(p) for p in sorted(SHARED_POP909.rglob("*.mid"))[: args.sources]]
    seeds = [(args.seed * 1_000_003 + i, args.case_timeout) for i in range(args.cases)]
    reasons, others, slow, rss = collections.Counter(), [], [], 0
    start = time.perf_counter()
    with Pool(args.workers, initializer=_init, initargs=(paths,), maxtasksperchild=200) as pool:
        for seed, outcome, seconds, peak in pool.imap_unordered(run_case, seeds, chunksize=4):
            reasons[outcome if not outcome.startswith("other") else "other"] += 1
            if outcome.startswith("other") or outcome == "timeout":
                others.append((seed, outcome))
            if seconds > SLOW_CASE_SECONDS:
                slow.append((seed, round(seconds, 2)))
            rss = max(rss, peak)
    wall = time.perf_counter() - start
    print(f"cases {args.cases} (seed {args.seed}, {len(paths)} POP909 sources, {wall:.1f} s, {args.cases / wall:.0f}/s)")
    print(f"accepted {reasons.pop('accepted', 0)}")
    for reason, n in reasons.most_common():
        print(f"  {n:7d}  {reason}")
    print(f"other exceptions or timeouts: {len(others)} {others[:5]}")
    print(f"cases over {SLOW_CASE_SECONDS:g} s: {len(slow)} {sorted(slow, key=lambda s: -s[1])[:5]}")
    print(f"peak worker RSS: {rss / 1024:.0f} MB")
    return 1 if others or slow or rss > 1024 * 1024 else 0


if __name__ == "__main__":
    sys.exit(main())
