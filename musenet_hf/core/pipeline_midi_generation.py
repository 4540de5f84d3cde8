"""``pipeline("midi-generation")``: new music in a chosen style and instrumentation, as MIDI.

    gen = pipeline("midi-generation")                       # the bundled default model, offline
    gen(style="bach", instruments=["piano", "violin"], seconds=30)
    gen("primer.mid", style="pop", instruments=["piano", "bass", "drums", "guitar"], seconds=60,
        primer_seconds=6, num_return_sequences=4, seed=0)
    gen(style={"chopin": 0.5, "pop": 0.5}, seconds=20)     # blended style conditioning

Each call returns one dict per variation: ``midi`` (``mido.MidiFile``), ``ids`` (header + events + ``<eos>``),
``seconds`` (length of the whole piece, primer included), ``notes`` (how many), ``instruments`` (names of
the families that play), ``notes_per_instrument`` (name -> notes, every asked family included, so one that
never played shows 0), ``style``.

This module travels to the Hub as remote code: package imports are relative only.
"""

from __future__ import annotations

import contextlib
import numbers

import torch
from transformers import GenerationConfig, Pipeline
from transformers.utils.logging import tqdm

from .codec import Header
from .decoding import resolve_kv_cache_dtype
from .guards import GUARD_OPTIONS, MusicStatistics, music_guards
from .logits_processors import forbidden_event_mask
from .midi_io import Note
from .quantization import int8_available, quantize_int8
from .sampling import SAMPLING_DEFAULTS
from .sliding_window import MusicRequest, SlidingWindowGenerator, blended_style_embedding
from .vocabulary import EOS

DEFAULT_SECONDS = 30.0  # MuseNet's demo pieces ran for tens of seconds
DEFAULT_INSTRUMENTS = ("piano",)  # with neither instruments nor a primer, MuseNet's default too
DEFAULT_BPM = 120  # MIDI's implicit tempo
# Options of the pipeline itself; every other keyword goes to ``model.generate``.
PIPELINE_OPTIONS = (
    "style", "instruments", "seconds", "primer_seconds", "primer_notes", "bpm", "strict_instruments",
    "allow_early_end", "num_return_sequences", *GUARD_OPTIONS,
)
FORWARD_OPTIONS = ("seed", "progress_bar", "num_threads", "window_stride", "cache_implementation", "quantize", "lean_decoding",
                   "kv_cache_dtype")
# KV cache when the call does not choose. bench/generate.py (6 layers x 512, one core's CPU time): the static
# cache was 0.82x the dynamic one's speed for 1 variation and 0.76x for 4 on pieces inside the context (its
# attention spans the whole preallocated context), and 1.03x for 4 variations sliding past it: dynamic it is.
DEFAULT_CACHE = "dynamic"
# int8 weights on CPU when the call does not choose (``quantize=None``). bench/int8_quality.py on the bundled
# model: held-out bits per note moved by less than the 1 % the issue allows (see the README's figures).
DEFAULT_QUANTIZE_ON_CPU = True
# A model loaded from a LoRA adapter (musenet_hf.modeling.adapters) carries the adapter's tokenizer under this
# attribute: transformers resolves the pipeline's tokenizer from the base, which lacks the adapter's new styles.
ADAPTER_TOKENIZER_ATTRIBUTE = "musenet_adapter_tokenizer"
# generate() arguments the sliding window sets itself, per chunk.
# Accepted ranges of the call's arguments, checked before any model work: (low, high, integers only).
# An hour of music is the longest a MIDI file may hold (MidiLimits.max_seconds); 64 variations is a batch
# that still fits a few GB on CPU; temperatures past 100 are uniform sampling in all but name.
ARGUMENT_RANGES = {
    "seconds": (0.01, 3600.0, False),
    "primer_seconds": (0.0, 3600.0, False),
    "primer_notes": (0, 200_000, True),
    "num_return_sequences": (1, 64, True),
    "bpm": (1, 1000, False),
    "temperature": (1e-4, 100.0, False),
    "top_p": (0.0, 1.0, False),
    "top_k": (0, 1_000_000, True),
}


def check_argument(name: str, value):
    """``value`` as a number inside ``ARGUMENT_RANGES[name]``, else a ``ValueError`` naming the argument
    and the accepted range (wrong types included: ``seconds="ten"``, ``num_return_sequences=2.5``)."""
    low, high, integer = ARGUMENT_RANGES[name]
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, numbers.Integral if integer else numbers.Real) and not isinstance(value, bool)
    if not ok_type or not (low <= value <= high):  # NaN fails the comparison too
        raise ValueError(f"{name} must be {kind} in [{low:g}, {high:g}], got {value!r}")
    return int(value) if integer else float(value)


MANAGED_GENERATE_ARGS = ("max_new_tokens", "max_length", "min_new_tokens", "min_length", "eos_token_id", "pad_token_id")


def cut_primer(notes: list[Note], seconds: float | None = None, count: int | None = None) -> tuple[list[Note], float | None]:
    """The beginning of a primer: its first ``count`` notes (by onset) and/or the notes starting before
    ``seconds``, cut to end by then. Returns (notes, the time in seconds the primer ends at, or None
    when it ends with its last note)."""
    notes = sorted(notes, key=lambda n: (n.start, n.family, n.pitch))
    if count is not None:
        if count < 0:
            raise ValueError(f"primer_notes must be >= 0, got {count}")
        notes = notes[:count]
    if seconds is None:
        return notes, None
    if seconds < 0:
        raise ValueError(f"primer_seconds must be >= 0, got {seconds}")
    return [Note(n.start, min(n.end, seconds), n.family, n.pitch, n.velocity) for n in notes if n.start < seconds], seconds


def split_instruments(text: str) -> list[str]:
    """Instrument family names from a comma-separated list: ``"bass, piano,"`` -> ``["bass", "piano"]``.

    Args:
        text (`str`): family names separated by commas; blanks around names and empty entries are dropped.
    """
    return [name.strip() for name in text.split(",") if name.strip()]


class MidiGenerationPipeline(Pipeline):
    """Generates multi-instrument MIDI with a MuseNet-style causal LM (see the module docstring).

    Call arguments (all keyword, the primer may also be the first positional argument):
        primer: a MIDI path, bytes or ``mido.MidiFile`` whose music starts the piece.
        style: a style name, or ``{name: weight}`` to blend styles in embedding space.
        instruments: family names (default: the primer's, else piano).
        seconds: seconds of new music after the primer (default 30).
        primer_seconds / primer_notes: use only the primer's beginning.
        bpm: tempo written in the header and the MIDI file (default: the primer's, else 120).
        strict_instruments: True (default) makes notes of other families impossible (and drops them
            from the primer); False lets the header only suggest the instruments, as MuseNet did.
        allow_early_end: let the model end the piece before ``seconds``.
        num_return_sequences: variations, generated as one batch.
        seed: same seed, same music (for the same batch size, thread count and key/value cache dtype).
        progress_bar: show a tqdm bar of seconds generated.
        num_threads: torch CPU threads for this call (restored afterwards).
        window_stride: new tokens per chunk once the window slides (default a quarter of the context).
        cache_implementation: "dynamic" (default, measured faster on CPU) or "static" (``generate()``'s static
            cache, which turns the lean loop off; the lean loop keeps its own preallocated cache).
        lean_decoding: True (default) decodes with ``decoding.lean_generate`` where it applies (a GPT-2 on CPU
            with sampling settings only), False always with ``model.generate``.
        kv_cache_dtype: the lean loop's key/value cache: "auto" (default) is bfloat16 on CPUs with AMX, where it
            measured faster at equal held-out bits per note, else float32; "float32" or "bfloat16" to choose.
        quantize: int8 weights in the transformer blocks (``quantization.quantize_int8``, a copy made once
            per pipeline); default True on CPU where torch has a quantized engine, False elsewhere. Also
            accepted by ``pipeline("midi-generation", quantize=False)``.
        note_guard: True (default) favours, then forces, the note-off of a note held past its family's long
            tail (limits from the checkpoint's ``musenet_music_statistics``): no stuck notes.
        drum_guard: True (default) caps each drum at the corpus's busiest-drum rate: no machine-gun drums.
        entry_guard: True (default) gives asked instruments that have been silent a larger share of the
            note-on probability, without making notes more likely: every asked instrument enters.
        density_guard: True (default) caps the notes each instrument starts in any five seconds at the
            corpus's 99th percentile, holds an ensemble between real ensembles' median and upper-quartile rates,
            and moves note-ons from an instrument that takes more of the ensemble's notes than real ones do
            (the busiest one, ``ensemble_busiest_share``; each part, against its share in real pieces of the
            style, ``ensemble_part_share``) to the others: no wall of notes, no drum loop under silent parts, no
            bass as busy as the guitar it backs.
        repeat_guard: True (default) holds back one key of a pitched instrument struck more often in ten
            seconds than the corpus's busiest keys (90th percentile: less likely, 99th: not at all): no bass
            hammering one note.
        register_guard: True (default) lowers the notes of an instrument whose last ten seconds sit, on average,
            below (above) the corpus's 5th (95th) percentile for it, beyond that bound: no piano sinking into
            the bass over a long piece.
        spread_guard: True (default) holds how widely a solo instrument's notes of the last ten seconds range
            (the distance between the 10th and 90th percentile of their pitches) to the bounds real solo pieces
            of the style keep (the checkpoint's ``register_spread``; ensembles are left free): a piece narrower
            than all but a quarter of the real ones favours the notes far from its middle, one wider than all
            but a quarter holds them back; the instrument plays as often: a pop piano keeps its left hand under
            the melody.
        grid_guard: True (default) makes note-ons off the sixteenth-note grid of the header's tempo, and waits
            landing off it, much less likely, in styles whose real pieces are
            metric (the checkpoint's ``grid_onset_share``; a primer keeps its own phase, a rubato one is left
            alone): notes start on the beat. A swung style whose real pieces sit on the eighth-note triplets
            instead (``triplet_onset_share``: jazz) is held to those.
        groove_guard: True (default), in the styles metric on sixteenths, nudges each instrument to start notes where it started
            them one bar (4 beats) earlier, while the piece repeats its bar-to-bar rhythm less than real pieces
            of the style played by those instruments do (the checkpoint's ``ensemble_groove_consistency``, else its
            ``groove_consistency``): a groove that holds.
        polyphony_guard: True (default) holds the number of distinct keys sounding at once to the distribution
            real pieces of the style with as many instruments keep (the checkpoint's ``polyphony``): a piece that
            has recently dwelt at this few keys more than real ones do adds a voice before time moves on, one
            that has dwelt above it holds back its note-ons (a rest with none sounding stays free): a four-voice
            chorale keeps four voices, a fiddle tune one.
        duration_guard: True (default) holds each instrument's note lengths to the distribution real pieces of
            the style with the same instruments keep (the checkpoint's ``note_lengths``): a piece that has ended
            more of its notes by a sounding note's age than real ones do holds that note on, one that has ended
            fewer lets it go: chorale quarter notes stay quarters, not eighths.
        temperature, top_k, top_p and other ``generate`` arguments: sampling.
    """

    _pipeline_calls_generate = True
    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _non_generation_params = ("num_return_sequences", "cache_implementation")
    # For checkpoints whose generation config sets no sampling (the ones train.py writes carry the same values).
    _default_generation_config = GenerationConfig(**SAMPLING_DEFAULTS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        own = getattr(self.model, ADAPTER_TOKENIZER_ATTRIBUTE, None)
        if own is not None and getattr(self.tokenizer, "styles", None) != own.styles:
            self.tokenizer = own
        if self.device.type == "cpu" and self.model.dtype in (torch.bfloat16, torch.float16):
            # Checkpoints ship half-size bf16 weights; CPU matmuls in bf16 are slower (and coarser) than fp32.
            self.model.float()
        self._int8_model = None  # built on the first call that asks for it

    def __call__(self, primer=None, **kwargs):
        """Generate; ``primer`` may be omitted (keyword-only calls are the common case)."""
        return super().__call__(primer, **kwargs)

    def _sanitize_parameters(self, **kwargs):
        for name in ARGUMENT_RANGES:
            if kwargs.get(name) is not None:
                kwargs[name] = check_argument(name, kwargs[name])
        if isinstance(kwargs.get("style"), dict):
            for weight in kwargs["style"].values():
                if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not 0 <= weight < float("inf"):
                    raise ValueError(f"style weights must be finite numbers >= 0, got {kwargs['style']!r}")
        preprocess = {k: kwargs.pop(k) for k in PIPELINE_OPTIONS if kwargs.get(k) is not None}
        forward = {k: kwargs.pop(k) for k in FORWARD_OPTIONS if kwargs.get(k) is not None}
        if "kv_cache_dtype" in forward:
            resolve_kv_cache_dtype(forward["kv_cache_dtype"])  # a bad name fails here, before any model work
        managed = sorted(set(kwargs) & set(MANAGED_GENERATE_ARGS))
        if managed:
            raise ValueError(f"{managed} are set by the pipeline from `seconds`; pass `seconds` instead")
        if kwargs:
            forward["generate_kwargs"] = kwargs
        return preprocess, forward, {}

    # --- preprocess: a MusicRequest from the call's options --------------------------------------
    def preprocess(self, primer=None, style="unknown", instruments=None, seconds=DEFAULT_SECONDS, primer_seconds=None,
                   primer_notes=None, bpm=None, strict_instruments=True, allow_early_end=False, num_return_sequences=1,
                   note_guard=True, drum_guard=True, entry_guard=True, density_guard=True, repeat_guard=True,
                   register_guard=True, spread_guard=True, grid_guard=True, groove_guard=True, polyphony_guard=True,
                   duration_guard=True):
        vocab = self.tokenizer.musenet_vocab
        seconds = check_argument("seconds", seconds)
        num_return_sequences = check_argument("num_return_sequences", num_return_sequences)
        style_name, style_embedding = self._resolve_style(style)
        if isinstance(instruments, str):
            instruments = split_instruments(instruments)
        families = sorted({vocab.family_id(name) for name in instruments}) if instruments else None
        notes, primer_end, primer_bpm, budget = self._read_primer(primer, primer_seconds, primer_notes)
        if families is None:
            families = sorted({n.family for n in notes}) or [vocab.family_id(f) for f in DEFAULT_INSTRUMENTS]
        if strict_instruments and primer is not None:
            notes = self._primer_in_families(notes, families)
        # the primer's reading and encoding share its time bound (the score's WorkBudget), as a corpus file's do
        events, fifo, primer_steps = self.tokenizer.encode_events(notes, primer_end, budget=budget)
        header_families = families if strict_instruments else sorted(set(families) | {n.family for n in notes})
        header = self.tokenizer.header_ids(Header(style_name, header_families, round(bpm or primer_bpm or DEFAULT_BPM), fifo))
        mask = forbidden_event_mask(vocab, self.model.config.vocab_size, families if strict_instruments else None)
        return {"request": MusicRequest(
            header=header, events=events, forbidden=mask, style_embedding=style_embedding,
            target_steps=primer_steps + round(seconds / vocab.config.step_seconds), primer_steps=primer_steps,
            num_return_sequences=int(num_return_sequences), allow_early_end=bool(allow_early_end),
            style=style, guards=self._guards(style, len(events), note_guard=bool(note_guard), drum_guard=bool(drum_guard),
                                             entry_guard=bool(entry_guard), density_guard=bool(density_guard),
                                             repeat_guard=bool(repeat_guard), register_guard=bool(register_guard),
                                             spread_guard=bool(spread_guard),
                                             grid_guard=bool(grid_guard), groove_guard=bool(groove_guard),
                                             polyphony_guard=bool(polyphony_guard),
                                             duration_guard=bool(duration_guard)),
        )}

    def _guards(self, style, primer_tokens: int, **switches: bool):
        """A factory of the switched-on musical guards (None when all are off) for the asked ``style`` (a name
        or a blend), after a primer of ``primer_tokens`` events; ``switches`` are ``GUARD_OPTIONS``."""
        if not any(switches.values()):
            return None
        vocab, statistics = self.tokenizer.musenet_vocab, MusicStatistics.from_config(self.model.config)
        return lambda histories, pieces: music_guards(vocab, statistics, histories=histories, pieces=pieces, style=style,
                                              primer_tokens=primer_tokens, **switches)

    def _resolve_style(self, style):
        """(style name for the header, blended embedding or None). Unknown names raise ``ValueError``."""
        vocab = self.tokenizer.musenet_vocab
        if isinstance(style, str):
            vocab.style_id(style)
            return style, None
        if not isinstance(style, dict) or not style:
            raise ValueError(f"style must be a name or a non-empty {{name: weight}} dict, got {style!r}")
        embedding = blended_style_embedding(self.model, vocab, style)  # validates names and weights
        main = max(style, key=style.get)  # the ids record the dominant style; the model saw the blend
        return main, (None if len(style) == 1 else embedding)

    def _read_primer(self, primer, seconds, count):
        if primer is None:
            if seconds is not None or count is not None:
                raise ValueError("primer_seconds / primer_notes need a primer")
            return [], None, None, None
        score = self.tokenizer.read_score(primer)  # within MidiLimits and the primer's WorkBudget
        notes, end = cut_primer(score.notes, seconds, count)
        return notes, end, score.bpm, score.budget

    def _primer_in_families(self, notes: list[Note], families: list[int]) -> list[Note]:
        kept = [n for n in notes if n.family in families]
        if notes and not kept:
            names = self.tokenizer.instruments
            raise ValueError(
                f"the primer has no notes for {[names[f] for f in families]} (it has "
                f"{sorted({names[n.family] for n in notes})}); add them to instruments or pass strict_instruments=False"
            )
        return kept

    # --- forward: sliding-window sampling ---------------------------------------------------------
    def _call_generate_kwargs(self, call_kwargs: dict) -> dict:
        """``generate()`` kwargs for one call: the init-time generation settings under the call's own.

        transformers >= 5.2x merges them in ``Pipeline._prepare_generate_kwargs``; earlier 5.x releases (e.g.
        5.17 on the GPU images) fold init kwargs into ``self.generation_config`` instead.
        """
        if hasattr(self, "_prepare_generate_kwargs"):
            return self._prepare_generate_kwargs(call_kwargs)
        if "generation_config" in call_kwargs or getattr(self, "generation_config", None) is None:
            return call_kwargs
        return {"generation_config": self.generation_config, **call_kwargs}

    def _forward(self, model_inputs, generate_kwargs=None, seed=None, progress_bar=False, num_threads=None,
                 window_stride=None, cache_implementation=None, quantize=None, lean_decoding=True, kv_cache_dtype="auto"):
        request: MusicRequest = model_inputs["request"]
        generate_kwargs = self._call_generate_kwargs(dict(generate_kwargs or {}))
        for key in ("num_return_sequences", *MANAGED_GENERATE_ARGS):
            generate_kwargs.pop(key, None)
        cache = None if (cache_implementation or DEFAULT_CACHE) == "dynamic" else cache_implementation
        generator = SlidingWindowGenerator(self._decoding_model(quantize), self.tokenizer.musenet_vocab, window_stride, cache,
                                           lean=bool(lean_decoding), kv_cache_dtype=resolve_kv_cache_dtype(kv_cache_dtype))
        with _threads(num_threads), _progress(progress_bar, request, self.tokenizer.musenet_vocab) as on_progress:
            if seed is None:
                # a fresh seed from the global generator: what the guards draw once per call from the seed
                # (GridGuard's tightness of each piece, see core/guards.py) then differs between calls as the
                # samples do, rather than coming from the same process-wide initial seed every time
                seed = int(torch.randint(0, 2**62, (1,)))
            torch.manual_seed(seed)
            events = generator.generate(request, on_progress=on_progress, **generate_kwargs)
        return {"events": events, "request": request}

    def _decoding_model(self, quantize: bool | None):
        """The model ``generate`` runs: ``self.model``, or its int8 copy (see ``quantize`` in the class docstring)."""
        on_cpu = self.device.type == "cpu"
        if quantize is None:
            # an unmerged LoRA adapter's layers wrap the base's: quantizing would replace what they wrap
            adapter = getattr(self.model, "peft_config", None) is not None
            quantize = DEFAULT_QUANTIZE_ON_CPU and on_cpu and int8_available() and not adapter
        if not quantize:
            return self.model
        if not on_cpu:
            raise ValueError(f"quantize=True runs int8 weights on CPU only; this pipeline is on {self.device}")
        if self._int8_model is None:
            self._int8_model = quantize_int8(self.model)
        return self._int8_model

    # --- postprocess: one dict per variation -------------------------------------------------------
    def postprocess(self, model_outputs):
        request: MusicRequest = model_outputs["request"]
        eos = self.tokenizer.musenet_vocab.token_to_id[EOS]
        names = self.tokenizer.instruments
        results = []
        for events in model_outputs["events"]:
            ids = request.header + events + [eos]
            decoded = self.tokenizer.decode_events(ids)
            results.append({
                "midi": self.tokenizer.decode_midi(ids),
                "ids": ids,
                "seconds": decoded.steps * self.tokenizer.musenet_vocab.config.step_seconds,
                "notes": len(decoded.notes),
                "instruments": [names[f] for f in sorted({n.family for n in decoded.notes})],
                "notes_per_instrument": {
                    names[f]: sum(n.family == f for n in decoded.notes)
                    for f in request_families(request, self.tokenizer.musenet_vocab, decoded.notes)
                },
                "style": request.style,
            })
        return results


def request_families(request: MusicRequest, vocab, notes: list[Note]) -> list[int]:
    """The families of the request's header and of the notes, ascending."""
    asked = {vocab.header_value(t) for t in request.header if vocab.kinds(t) == vocab.KIND_INST}
    return sorted(asked | {n.family for n in notes})


@contextlib.contextmanager
def _threads(num_threads: int | None):
    if num_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _progress(enabled: bool, request: MusicRequest, vocab):
    """A tqdm bar of seconds of music generated by the slowest unfinished variation."""
    if not enabled:
        yield None
        return
    step = vocab.config.step_seconds
    total = (request.target_steps - request.primer_steps) * step
    bar = tqdm(total=round(total, 2), unit="s", desc="music", bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]")

    def update(steps: torch.Tensor) -> None:
        done = min(int(steps.min()), request.target_steps) - request.primer_steps
        bar.update(round(max(done * step, bar.n), 2) - bar.n)

    try:
        yield update
        bar.update(round(total, 2) - bar.n)  # an early end (allow_early_end) still completes the bar
    finally:
        bar.close()
