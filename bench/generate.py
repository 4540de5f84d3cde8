"""Generation speed of pipeline("midi-generation") on CPU, against a bare ``model.generate`` in the same run.

    python -m bench.generate                       # a random GPT-2 the size of the default model
    python -m bench.generate --model DIR           # any checkpoint written by train.py
    python -m bench.generate --full_piece          # also generate the whole 4-minute, 4-instrument piece
    python -m bench.generate --threads 1 --clock cpu   # on a busy shared machine: one core's CPU time
    python -m bench.generate --model musenet_hf/default_model --weights_only --full_piece   # fp32 vs int8 only

Tables printed:
1. Per batch size (1 and 4 variations) and KV cache (dynamic, static): tokens/s of a bare ``model.generate``
   and of the pipeline over the same prompt and the same number of decoding steps, the pipeline's overhead,
   and the pipeline's notes/s and real-time factor (seconds of music per second of wall time, all variations).
0. fp32 against int8 weights (``quantize``), each decoded by ``model.generate`` and by the lean loop
   (``lean_decoding``, the default; with each key/value cache dtype of ``--kv_caches``), side by side:
   pipeline tokens/s at 1 and 4 variations, the time from a
   fresh pipeline's first call to its first note (quantizing included), and with ``--full_piece`` the 4-minute
   piano + bass + drums + guitar piece (no primer, seed 0): wall time, tokens, notes, notes per instrument,
   30-second segments each instrument plays in, the share of the time spent re-reading the window when it
   slides (every prefill but a call's first), and the same call with 4 variations against 1 (int8 lean, with
   each key/value cache dtype).
2. The 4-minute, 4-instrument piece: sliding-window throughput past the context (1 variation, and a batch
   with each KV cache), and the time the piece
   takes at the token density of real music (POP909, measured here) — a random model's tokens are not music,
   so its own seconds per token say little; with ``--model`` on a trained checkpoint the full run is real.
"""

from __future__ import annotations

import glob
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import mido
import torch
from transformers import GPT2Config, GPT2LMHeadModel, HfArgumentParser, pipeline

import musenet_hf
from musenet_hf import MuseNetTokenizer
from musenet_hf.core.decoding import KV_CACHE_DTYPES, resolve_kv_cache_dtype

ROOT = Path(__file__).resolve().parents[1]
POP909 = ROOT.parent / "shared" / "midi" / "pop909"
BAND = ["piano", "bass", "drums", "guitar"]  # the four-instrument target
CPU_CLOCK = False  # set from --clock


@dataclass
class BenchArgs:
    model: str | None = field(default=None, metadata={"help": "checkpoint directory (default: a random GPT-2, see n_*)"})
    n_layer: int = field(default=6, metadata={"help": "random model: layers (the default model has 6-8)"})
    n_embd: int = field(default=512, metadata={"help": "random model: width (the default model has 384-512)"})
    n_head: int = field(default=8, metadata={"help": "random model: attention heads"})
    n_positions: int = field(default=1024, metadata={"help": "random model: context length"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads (the target machine has 2 cores)"})
    variations: str = field(default="1,4", metadata={"help": "batch sizes to measure, comma-separated"})
    caches: str = field(default="dynamic,static", metadata={"help": "KV caches to compare, comma-separated"})
    new_tokens: int = field(default=512, metadata={"help": "tokens aimed at per run in table 1 (kept inside the context)"})
    primer_seconds: float = field(default=8.0, metadata={"help": "primer taken from the first POP909 file"})
    slide_contexts: float = field(default=2.5, metadata={"help": "table 2 generates this many contexts' worth of tokens"})
    slide_variations: int = field(default=4, metadata={"help": "table 2 also slides this many variations with each cache (0: skip)"})
    repeats: int = field(default=2, metadata={"help": "timed runs per measurement (the fastest is kept: the CPU is shared)"})
    piece_seconds: float = field(default=240.0, metadata={"help": "the long piece's length (4 minutes)"})
    full_piece: bool = field(default=False, metadata={"help": "generate the whole long piece (minutes with a random model)"})
    density_files: int = field(default=100, metadata={"help": "POP909 files measured for tokens per second of music"})
    clock: str = field(default="wall", metadata={"help": "wall, or cpu (process CPU time; use with --threads 1 on a busy machine)"})
    dtype: str = field(default="float32", metadata={"help": "model weights: float32 or bfloat16 (CPU autocast-free bf16 matmuls)"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})
    weights: str = field(default="fp32,int8", metadata={"help": "table 0 compares these weights (fp32, int8), comma-separated"})
    decoders: str = field(default="generate,lean", metadata={"help": "table 0 decodes with these (generate, lean), comma-separated"})
    kv_caches: str = field(default="float32,auto", metadata={
        "help": "table 0's lean loop runs with each of these key/value cache dtypes (float32, bfloat16, auto), comma-separated"})
    weights_only: bool = field(default=False, metadata={"help": "print table 0 only (skip the cache tables 1 and 2)"})
    segment_seconds: float = field(default=30.0, metadata={"help": "the long piece's segments for 'plays in how many'"})


def random_checkpoint(args: BenchArgs, path: Path) -> str:
    tok = MuseNetTokenizer()
    config = GPT2Config(
        vocab_size=len(tok), n_positions=args.n_positions, n_embd=args.n_embd, n_layer=args.n_layer,
        n_head=args.n_head, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(args.seed)
    GPT2LMHeadModel(config).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def primer_source():
    """The first POP909 song if the shared data is here, else a synthetic four-bar piano line."""
    files = sorted(glob.glob(str(POP909 / "*.mid")))
    if files:
        return files[0]
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    for i in range(32):
        track += [mido.Message("note_on", note=60 + (i * 5) % 24, velocity=80, time=0),
                  mido.Message("note_off", note=60 + (i * 5) % 24, time=240)]
    midi.tracks.append(track)
    return midi


def music_density(tok, limit: int) -> float | None:
    """Event tokens per second of music over the first ``limit`` POP909 songs (None without the data)."""
    files = sorted(glob.glob(str(POP909 / "*.mid")))[:limit]
    tokens = seconds = 0.0
    for f in files:
        score = tok.read_score(f)
        tokens += len(tok.encode_score(score))
        seconds += score.seconds
    return tokens / seconds if seconds else None


def timed(fn, repeats: int = 1):
    """(result, seconds) for the fastest of ``repeats`` runs. Seconds are wall time, or with ``CPU_CLOCK`` this
    process's CPU time: on a shared machine the CPU time of a one-thread run is what a quiet core would take."""
    best, out = float("inf"), None
    clock = time.process_time if CPU_CLOCK else time.perf_counter
    for _ in range(repeats):
        start = clock()
        out = fn()
        best = min(best, clock() - start)
    return out, best


def run_pipeline(gen, primer, args: BenchArgs, batch: int, cache: str | None, seconds: float, repeats: int = 1,
                 quantize=None, lean=True, kv="auto"):
    """A timed pipeline call; ``cache`` None leaves the KV cache to the pipeline (the lean loop's own when it runs,
    of dtype ``kv``)."""
    options = {} if cache is None else {"cache_implementation": cache}
    return timed(lambda: gen(
        primer, style="pop", instruments=BAND, seconds=seconds, primer_seconds=args.primer_seconds,
        num_return_sequences=batch, seed=args.seed, quantize=quantize, lean_decoding=lean, kv_cache_dtype=kv, **options,
    ), repeats)


class FirstNote(Exception):
    """Raised by ``FirstNoteWatch`` to end a call at its first sampled note-on."""


class FirstNoteWatch:
    """Ends a pipeline call (by raising ``FirstNote``) when a sampled note-on is fed back to the model: a hook
    on the input embeddings, which ``model.generate`` and the lean loop both call with each step's new ids."""

    def __init__(self, model, vocab):
        self.vocab = vocab
        self.handle = model.get_input_embeddings().register_forward_pre_hook(self._check)

    def _check(self, module, args):
        ids = args[0]
        if ids.shape[1] == 1 and (self.vocab.kinds(ids[:, -1].numpy()) == self.vocab.KIND_ON).any():
            raise FirstNote()

    def close(self):
        self.handle.remove()


class PrefillClock:
    """Seconds (on the bench's clock) the model spends in forward passes over more than one new position:
    the prefill of each ``generate`` call or lean chunk. ``slides`` counts all but the first of a pipeline call.
    Hooks the position embeddings (the start of a forward pass, with its width) and the final layer norm
    (its end), which both decoders call once per pass."""

    def __init__(self, model):
        self.model, self.calls, self.seconds, self.first = model, 0, 0.0, 0.0
        self._start = None
        self.handles = [model.transformer.wpe.register_forward_pre_hook(self._before),
                        model.transformer.ln_f.register_forward_hook(self._after)]

    def _before(self, module, args):
        width = args[0].shape[-1]
        self._start = (time.process_time if CPU_CLOCK else time.perf_counter)() if width > 1 else None

    def _after(self, module, args, output):
        if self._start is None:
            return
        spent = (time.process_time if CPU_CLOCK else time.perf_counter)() - self._start
        self.first = spent if self.calls == 0 else self.first
        self.calls += 1
        self.seconds += spent

    @property
    def slide_seconds(self) -> float:
        return self.seconds - self.first

    def close(self):
        for h in self.handles:
            h.remove()


def weights_flag(name: str) -> bool:
    if name not in ("fp32", "int8"):
        raise ValueError(f"--weights takes fp32 and/or int8, got {name!r}")
    return name == "int8"


def decoder_flag(name: str) -> bool:
    if name not in ("generate", "lean"):
        raise ValueError(f"--decoders takes generate and/or lean, got {name!r}")
    return name == "lean"


def kv_caches(args: BenchArgs) -> list[str]:
    """The distinct key/value cache dtypes of ``--kv_caches``, by name ("auto" resolved on this machine), in order."""
    names = {dtype: name for name, dtype in KV_CACHE_DTYPES.items()}
    return list(dict.fromkeys(names[resolve_kv_cache_dtype(name)] for name in args.kv_caches.split(",")))


def routes(args: BenchArgs) -> list[tuple[str, bool, bool, str]]:
    """(label, quantize, lean, key/value cache dtype) for every weights x decoder (x cache, for the lean loop) of
    the run; generate() keeps its own float32 cache."""
    out = []
    for w in args.weights.split(","):
        for d in args.decoders.split(","):
            caches = kv_caches(args) if decoder_flag(d) else ["float32"]
            out += [(f"{w} {d}" + (f", {kv} kv" if decoder_flag(d) else ""), weights_flag(w), decoder_flag(d), kv) for kv in caches]
    return out


def time_to_first_note(model_dir: str, args: BenchArgs, quantize: bool, lean: bool, kv: str) -> tuple[float, float]:
    """(seconds to load a fresh pipeline, seconds from its first call to the first sampled note-on)."""
    clock = time.process_time if CPU_CLOCK else time.perf_counter
    start = clock()
    fresh = pipeline("midi-generation", model=model_dir, dtype=getattr(torch, args.dtype))
    loaded = clock()
    watch = FirstNoteWatch(fresh._decoding_model(quantize), fresh.tokenizer.musenet_vocab)  # builds the int8 copy
    try:
        fresh(style="pop", instruments=BAND, seconds=10.0, seed=args.seed, quantize=quantize, lean_decoding=lean, kv_cache_dtype=kv)
        raise RuntimeError("the model played no note in 10 s of music")
    except FirstNote:
        return loaded - start, clock() - loaded
    finally:
        watch.close()


def table0(gen, primer, args: BenchArgs, model_dir: str) -> None:
    """fp32 against int8 weights, generate() against the lean loop, in one run (see the module docstring)."""
    pairs = routes(args)
    print("\n| weights, decoder | variations | pipeline tok/s | notes/s | vs " + pairs[0][0] + " |\n|---|---|---|---|---|")
    base = {}
    for batch in [int(b) for b in args.variations.split(",")]:
        for label, q, lean, kv in pairs:
            warm, _ = run_pipeline(gen, primer, args, batch, None, 1.0, quantize=q, lean=lean, kv=kv)  # builds the int8 copy
            per_second = max(len(r["ids"]) for r in warm) - len(kept_prompt(gen, primer, args))
            seconds = max(0.1, round(args.new_tokens / max(per_second, 1), 2))
            results, wall = run_pipeline(gen, primer, args, batch, None, seconds, args.repeats, quantize=q, lean=lean, kv=kv)
            tokens = sum(len(r["ids"]) for r in results) - batch * len(kept_prompt(gen, primer, args))
            rate = tokens / wall
            base.setdefault(batch, rate)
            print(f"| {label} | {batch} | {rate:.1f} | {sum(r['notes'] for r in results) / wall:.1f} | {rate / base[batch]:.2f}x |")
    print("\n| weights, decoder | load s | first call to first note s |\n|---|---|---|")
    for label, q, lean, kv in pairs:
        load, first = time_to_first_note(model_dir, args, q, lean, kv)
        print(f"| {label} | {load:.2f} | {first:.2f} |")
    if args.full_piece:
        print(f"\n{args.piece_seconds:.0f} s piece, {', '.join(BAND)}, style pop, seed {args.seed}, no primer:")
        print("| weights, decoder | variations | wall s | tokens | notes | notes/s of music | notes per instrument | segments "
              f"played (of {math.ceil(args.piece_seconds / args.segment_seconds)}) | prefills | slide share |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        walls = {}
        for label, q, lean, kv in pairs:
            walls[label] = full_piece_row(gen, args, label, q, lean, kv, 1)
        # the lean routes of the last weights (int8: the default on CPU), each key/value cache
        batched = [route for route in pairs if route[1] == pairs[-1][1] and route[2]]
        fours = {label: full_piece_row(gen, args, label, q, lean, kv, 4) for label, q, lean, kv in batched}
        for label, four in fours.items():
            print(f"\n4 variations / 1 variation, {label}: {four / walls[label]:.2f}x the wall time")


def kept_prompt(gen, primer, args: BenchArgs) -> list[int]:
    request = gen.preprocess(primer, instruments=BAND, primer_seconds=args.primer_seconds)["request"]
    return request.header + request.events


def full_piece_row(gen, args: BenchArgs, label: str, q: bool, lean: bool, kv: str, batch: int) -> float:
    """Generate the long piece in ``batch`` variations, print its row (the first variation's figures, the
    means over variations after a slash when there are several) and return the wall time."""
    prefill = PrefillClock(gen._decoding_model(q))
    try:
        results, wall = timed(lambda: gen(style="pop", instruments=BAND, seconds=args.piece_seconds, seed=args.seed,
                                          quantize=q, lean_decoding=lean, kv_cache_dtype=kv, num_return_sequences=batch))
    finally:
        prefill.close()
    r = results[0]
    notes = gen.tokenizer.decode_events(r["ids"]).notes
    names = gen.tokenizer.instruments
    segments = math.ceil(args.piece_seconds / args.segment_seconds)
    per = {names[f]: sum(n.family == f for n in notes) for f in sorted({n.family for n in notes})}
    played = {k: len({min(int(n.start // args.segment_seconds), segments - 1) for n in notes if names[n.family] == k}) for k in per}
    tokens, count = str(len(r["ids"])), str(r["notes"])
    if batch > 1:
        tokens += f" / {sum(len(x['ids']) for x in results) / batch:.0f}"
        count += f" / {sum(x['notes'] for x in results) / batch:.0f}"
    print(f"| {label} | {batch} | {wall:.1f} | {tokens} | {count} | {r['notes'] / args.piece_seconds:.1f} | "
          f"{', '.join(f'{k} {v}' for k, v in per.items())} | {', '.join(f'{k} {v}' for k, v in played.items())} | "
          f"{prefill.calls} ({prefill.seconds:.1f} s) | {prefill.slide_seconds / wall:.1%} |", flush=True)
    return wall


def bare_generate(model, prompt: list[int], batch: int, new_tokens: int, cache: str, args: BenchArgs) -> float:
    """Seconds for ``model.generate`` to sample exactly ``new_tokens`` after ``prompt`` for ``batch`` rows."""
    ids = torch.tensor([prompt] * batch)

    def run():
        torch.manual_seed(args.seed)
        return model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
            do_sample=True, top_k=0, top_p=0.95, pad_token_id=0, cache_implementation=None if cache == "dynamic" else cache,
        )

    return timed(run, args.repeats)[1]


def table1(gen, primer, args: BenchArgs, primer_events: int) -> dict:
    speeds = {}
    print("\n| variations | cache | bare generate tok/s | pipeline tok/s | overhead | notes/s | music s per s |")
    print("|---|---|---|---|---|---|---|")
    for batch in [int(b) for b in args.variations.split(",")]:
        for cache in args.caches.split(","):
            # warm-up (allocations), which also tells this model's tokens per second of music, so that the
            # measured run can aim at new_tokens and stay inside the context (bare generate cannot slide)
            warm, _ = run_pipeline(gen, primer, args, batch, cache, 1.0)
            prompt_len = _prompt_length(warm[0]["ids"], primer_events, gen)
            room = min(args.new_tokens, int(0.5 * (gen.model.config.n_positions - prompt_len)))
            per_second = max(len(r["ids"]) - prompt_len for r in warm)
            results, wall = run_pipeline(gen, primer, args, batch, cache, max(0.1, round(room / per_second, 2)), args.repeats)
            prompt = results[0]["ids"][:prompt_len]
            steps = max(len(r["ids"]) - prompt_len - 1 for r in results)  # decoding steps (the last gave <eos>)
            tokens = sum(len(r["ids"]) - prompt_len for r in results)
            notes = sum(r["notes"] for r in results)
            music = sum(r["seconds"] for r in results) - batch * args.primer_seconds
            speeds[(batch, cache)] = tokens / wall
            speeds[("density", batch, cache)] = tokens / music
            if prompt_len + steps + 1 <= gen.model.config.n_positions:
                bare = bare_generate(gen._decoding_model(None), prompt, batch, steps + 1, cache, args)
                bare_text = f"{batch * (steps + 1) / bare:.1f} | {tokens / wall:.1f} | {wall / bare - 1:+.1%}"
            else:
                bare_text = f"- | {tokens / wall:.1f} | - (the pipeline slid its window)"
            print(f"| {batch} | {cache} | {bare_text} | {notes / wall:.1f} | {music / wall:.2f} |")
    for batch in [int(b) for b in args.variations.split(",")]:
        if (batch, "static") in speeds and (batch, "dynamic") in speeds:
            print(f"static / dynamic cache, {batch} variation(s): {speeds[(batch, 'static')] / speeds[(batch, 'dynamic')]:.2f}x")
    return speeds


def _prompt_length(ids: list[int], primer_events: int, gen) -> int:
    """Header + primer: the header ends at the tempo token."""
    vocab = gen.tokenizer.musenet_vocab
    kinds = vocab.kinds(ids)
    return int((kinds == vocab.KIND_TEMPO).nonzero()[0][0]) + 1 + primer_events


def table2(gen, primer, args: BenchArgs, density: float | None, cache: str, model_density: float):
    """Sliding-window throughput for one variation, over ``slide_contexts`` contexts of new tokens."""
    context = gen.model.config.n_positions
    seconds = round(args.slide_contexts * context / model_density, 2)
    results, wall = run_pipeline(gen, primer, args, 1, cache, seconds)
    r = results[0]
    new_tokens = len(r["ids"]) - _prompt_length(r["ids"], 0, gen)
    rate = new_tokens / wall
    print(f"\nsliding window, 1 variation, {cache} cache: {new_tokens} tokens (context {context}) in {wall:.1f} s = "
          f"{rate:.1f} tok/s; this model: {new_tokens / (r['seconds'] - args.primer_seconds):.1f} tokens per second of "
          f"music, {(r['seconds'] - args.primer_seconds) / wall:.2f} s of music per wall second")
    if density:
        need = density * args.piece_seconds
        print(f"real music (POP909): {density:.1f} tokens per second -> a {args.piece_seconds:.0f} s piece is {need:.0f} "
              f"tokens: {need / rate:.1f} s at {rate:.1f} tok/s (real-time factor {args.piece_seconds * rate / need:.2f})")
    if args.slide_variations > 1:
        for batch_cache in args.caches.split(","):
            results, wall = run_pipeline(gen, primer, args, args.slide_variations, batch_cache, seconds)
            tokens = sum(len(r["ids"]) - _prompt_length(r["ids"], 0, gen) for r in results)
            print(f"sliding window, {args.slide_variations} variations, {batch_cache} cache: {tokens} tokens in {wall:.1f} s "
                  f"= {tokens / wall:.1f} tok/s")
    if args.full_piece:
        results, wall = timed(lambda: gen(style="pop", instruments=BAND, seconds=args.piece_seconds, seed=args.seed,
                                          cache_implementation=cache))
        r = results[0]
        print(f"full piece: {r['seconds']:.1f} s of music, {len(r['ids'])} tokens, {r['notes']} notes in {wall:.1f} s "
              f"(real-time factor {r['seconds'] / wall:.2f})")


def main() -> int:
    global CPU_CLOCK
    (args,) = HfArgumentParser(BenchArgs).parse_args_into_dataclasses()
    torch.set_num_threads(args.threads)
    CPU_CLOCK = args.clock == "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or random_checkpoint(args, Path(tmp))
        gen = pipeline("midi-generation", model=model_dir, dtype=getattr(torch, args.dtype))
        config = gen.model.config
        print(f"load average (2-core machine shared with other work): {os.getloadavg()[0]:.2f}")
        print(f"model: {args.model or 'random GPT-2'} n_layer={config.n_layer} n_embd={config.n_embd} "
              f"n_positions={config.n_positions} vocab={config.vocab_size} {args.dtype}; torch threads={torch.get_num_threads()}; "
              f"transformers {__import__('transformers').__version__}, torch {torch.__version__}, musenet_hf {musenet_hf.__version__}; "
              f"timed by {'process CPU time' if CPU_CLOCK else 'wall clock'}")
        primer = primer_source()
        kept = gen.preprocess(primer, instruments=BAND, primer_seconds=args.primer_seconds)["request"]
        print(f"prompt: {len(kept.header)} header + {len(kept.events)} primer tokens ({args.primer_seconds:g} s of "
              f"{'POP909 001' if isinstance(primer, str) else 'a synthetic piano line'}), style pop, {', '.join(BAND)}")
        table0(gen, primer, args, model_dir)
        if args.weights_only:
            print(f"load average at the end: {os.getloadavg()[0]:.2f}")
            return 0
        speeds = table1(gen, primer, args, len(kept.events))
        density = music_density(gen.tokenizer, args.density_files)
        single = int(args.variations.split(",")[0])  # table 2 is about one piece: use the first batch size's runs
        best_cache = max(args.caches.split(","), key=lambda c: speeds[(single, c)])
        table2(gen, primer, args, density, best_cache, speeds[("density", single, best_cache)])
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
