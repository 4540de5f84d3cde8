"""The playground under load: simultaneous generation requests against a real local instance of ``app.py``.

    python -m bench.app_load                                   # bundled model, 2 rounds of 8 requests, 5 s each
    python -m bench.app_load --model DIR --requests 8 --seconds 5 --concurrency 2 --threads 1 --rounds 2
    python -m bench.app_load --out bench/results/app_load.md   # also write the tables as Markdown

The app runs as a subprocess (``python app.py``) on a free port given through ``GRADIO_SERVER_PORT`` /
``GRADIO_SERVER_NAME``, as a user would start it. One warm-up request (not counted) pays the first call's
costs; then each round starts ``--requests`` threads at once (a barrier), each with its own ``gradio_client``
session (like separate browser tabs), posting one "Generate" (four variations) to ``/generate``. A request is
answered when its result arrives and all four MIDI files, fetched from their URLs afterwards, parse with mido.

Printed per request: latency (submit to result), queue wait (submit to the first PROCESSING status the client
sees, polled every 50 ms) and processing time. Per round: answered / failed, the most requests seen processing
at once (against the configured ``--concurrency``), and the server's memory: RSS of the app process and its
children (fluidsynth) sampled every 100 ms with psutil, its peak, the RSS after the round, and the kernel's
VmHWM of the app process at the end. Memory is bounded when a later round's peak and after-round RSS stay at
the first round's instead of growing by a per-request amount.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import mido
import psutil

ROOT = Path(__file__).resolve().parents[1]
POLL = 0.05  # seconds between a client's status polls (the queue-wait resolution)
OVERLAP_SLACK = 0.5  # seconds: see max_overlap (several polls, plus the streams' delivery order)
SAMPLE = 0.1  # seconds between RSS samples of the server process tree
STARTUP_TIMEOUT = 300  # seconds for the app to load the model and answer HTTP on a busy machine
INSTRUMENTS = ["piano", "bass", "drums"]
PROCESSING = {"PROCESSING", "PROGRESS", "ITERATING", "SENDING_DATA"}
MB = 1024 * 1024


@dataclass
class Outcome:
    index: int
    submitted: float = 0.0
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    notes: int = 0

    @property
    def latency(self) -> float:
        return self.finished - self.submitted

    @property
    def wait(self) -> float:
        return (self.started or self.finished) - self.submitted


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sampler(threading.Thread):
    """RSS of a process and its descendants every ``SAMPLE`` s: ``peak`` since ``reset()``, ``current``."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = self.current = 0
        self._stop = threading.Event()

    def tree_rss(self) -> int:
        total = 0
        for p in [self.process, *self.process.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:  # a fluidsynth child that just ended
                pass
        return total

    def reset(self) -> None:
        self.peak = self.current

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.current = self.tree_rss()
            except psutil.Error:
                return
            self.peak = max(self.peak, self.current)
            time.sleep(SAMPLE)

    def stop(self) -> None:
        self._stop.set()


def vm_hwm(pid: int) -> int:
    """The kernel's peak resident set of ``pid`` (VmHWM in /proc/PID/status), bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def start_app(args, log) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": str(args.threads),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(ROOT / "app.py"), "--concurrency", str(args.concurrency), "--threads", str(args.threads),
               "--max-queue", str(args.max_queue), "--max-seconds", str(max(args.seconds, 1.0))]
    if args.model:
        command += ["--model", args.model]
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.flush()
            raise SystemExit(f"app.py exited with {server.returncode}:\n{Path(log.name).read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return server, url
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit(f"app.py did not answer on {url} within {STARTUP_TIMEOUT} s")


def one_request(client, index: int, seconds: float, outcome: Outcome, barrier: threading.Barrier | None) -> None:
    if barrier is not None:
        barrier.wait()
    outcome.submitted = time.monotonic()
    try:
        job = client.submit("pop", "none", 0.0, INSTRUMENTS, True, None, None, None, float(seconds), 1.0, 0.95,
                            index, api_name="/generate")
        while not job.done():  # both ends seen the same way: the first poll showing the status
            code = job.status().code.name
            if outcome.started is None and code in PROCESSING:
                outcome.started = time.monotonic()
            if code == "FINISHED":
                break
            time.sleep(POLL)
        outcome.finished = time.monotonic()
        result = job.result()
        if result[0].startswith("**Error"):
            raise RuntimeError(result[0])
        # message, trail, then (roll, audio, midi) per variation; files come as {"url": ...} (download_files=False)
        for i in range(4):
            data = urllib.request.urlopen(result[4 + 3 * i]["url"], timeout=60).read()
            midi = mido.MidiFile(file=io.BytesIO(data))
            outcome.notes += sum(m.type == "note_on" and m.velocity > 0 for t in midi.tracks for m in t)
    except Exception as exc:  # noqa: BLE001  (a failed request is a figure of the benchmark, not a crash)
        outcome.finished = outcome.finished or time.monotonic()
        outcome.error = f"{type(exc).__name__}: {exc}"[:200]


def max_overlap(outcomes: list[Outcome]) -> int:
    """The most requests processing at the same moment, from the clients' view of each start and end.

    Each client has its own event stream, so the end of one request and the start of the one the server
    runs next can arrive in either order: an end within ``OVERLAP_SLACK`` of a start does not count as overlap.
    """
    ran = [o for o in outcomes if o.started]
    return max((sum(p.started <= o.started < p.finished - OVERLAP_SLACK for p in ran) for o in ran), default=0)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint directory (default: the bundled model)")
    parser.add_argument("--requests", type=int, default=8, help="simultaneous requests per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of simultaneous requests (memory over time)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of music per variation")
    parser.add_argument("--concurrency", type=int, default=2, help="the app's --concurrency")
    parser.add_argument("--max-queue", type=int, default=16, help="the app's --max-queue")
    parser.add_argument("--threads", type=int, default=1, help="the app's torch threads (--threads)")
    parser.add_argument("--out", default=None, help="also write the Markdown tables here")
    args = parser.parse_args(argv)
    from gradio_client import Client

    lines = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    with tempfile.TemporaryDirectory(prefix="app-load-") as tmp, open(Path(tmp) / "app.log", "w") as log:
        started = time.monotonic()
        server, url = start_app(args, log)
        sampler = Sampler(server.pid)
        sampler.start()
        try:
            print(f"app up on {url} after {time.monotonic() - started:.1f} s", flush=True)
            loaded = sampler.tree_rss()
            warm = Outcome(-1)
            one_request(Client(url, verbose=False, download_files=False), 10_000, args.seconds, warm, None)
            if warm.error:
                raise SystemExit(f"the warm-up request failed: {warm.error}\n{Path(log.name).read_text()[-3000:]}")
            time.sleep(1)
            say(f"Model: {args.model or 'musenet_hf/default_model (bundled)'}; {args.requests} simultaneous requests x "
                f"{args.rounds} rounds, each 4 variations x {args.seconds:g} s of {'+'.join(INSTRUMENTS)} (style pop); "
                f"app --concurrency {args.concurrency} --threads {args.threads} --max-queue {args.max_queue}; "
                f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start.")
            say()
            say(f"Server RSS (app + children): {loaded / MB:.0f} MB after loading, {sampler.current / MB:.0f} MB after the "
                f"warm-up request ({warm.latency:.1f} s).")
            say()
            rounds = []
            for r in range(args.rounds):
                clients = [Client(url, verbose=False, download_files=False) for _ in range(args.requests)]
                outcomes = [Outcome(i) for i in range(args.requests)]
                barrier = threading.Barrier(args.requests)
                sampler.reset()
                threads = [threading.Thread(target=one_request, args=(c, r * 100 + i, args.seconds, o, barrier))
                           for i, (c, o) in enumerate(zip(clients, outcomes))]
                t0 = time.monotonic()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                wall = time.monotonic() - t0
                time.sleep(1)
                rounds.append((outcomes, wall, sampler.peak, sampler.current))
                say(f"### Round {r + 1}")
                say()
                say("| request | answered | queue wait s | processing s | latency s | notes (4 variations) |")
                say("|---|---|---|---|---|---|")
                for o in sorted(outcomes, key=lambda o: o.finished):
                    say(f"| {o.index + 1} | {'yes' if not o.error else 'NO: ' + o.error} | {o.wait:.1f} | "
                        f"{o.finished - (o.started or o.finished):.1f} | {o.latency:.1f} | {o.notes} |")
                say()
            hwm = vm_hwm(server.pid)
        finally:
            sampler.stop()
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
    say("### Summary")
    say()
    say("| round | answered | failed | wall s | latency median / max s | queue wait max s | most processing at once "
        "(limit) | peak RSS MB | RSS after MB |")
    say("|---|---|---|---|---|---|---|---|---|")
    for r, (outcomes, wall, peak, after) in enumerate(rounds, start=1):
        ok = [o for o in outcomes if not o.error]
        latencies = [o.latency for o in outcomes]
        say(f"| {r} | {len(ok)}/{len(outcomes)} | {len(outcomes) - len(ok)} | {wall:.1f} | "
            f"{statistics.median(latencies):.1f} / {max(latencies):.1f} | {max(o.wait for o in outcomes):.1f} | "
            f"{max_overlap(outcomes)} ({args.concurrency}) | {peak / MB:.0f} | {after / MB:.0f} |")
    say()
    say(f"Kernel VmHWM of the app process at the end: {hwm / MB:.0f} MB (its own peak, children not included).")
    if len(rounds) > 1:
        growth = (rounds[-1][3] - rounds[0][3]) / MB
        say(f"RSS after round {len(rounds)} minus after round 1: {growth:+.0f} MB over {args.requests * (len(rounds) - 1)} "
            f"more requests ({growth / (args.requests * (len(rounds) - 1)):+.1f} MB per request).")
    if args.out:
        command = " ".join(["python -m bench.app_load", *(argv if argv is not None else sys.argv[1:])])
        Path(args.out).write_text(f"# The playground under load\n\n`{command}`\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
