"""``evaluate``: how good a checkpoint's music is, in numbers (see ``report`` for the pictures and files).

For any checkpoint ``pipeline("midi-generation", model=...)`` loads, against a reference (a built corpus or a
folder of MIDI files):

1. likelihood of the reference's test pieces: bits per token, per note and per second of music, overall and
   per style, with the bigram baseline of ``likelihood`` on the same positions;
2. per case (a style and its instruments): N generated pieces of S seconds (one seeded batch) against real
   pieces clipped to S seconds, of that style and, where the reference holds enough, with those instruments
   and lasting the whole clip (``reference_clips``): ``statistics`` per piece, ``compare`` (histogram overlap, with real-vs-real halves
   as the reference line), ``degeneracy`` counters;
3. control: instrument adherence, a style classifier (real held-out first, then generated) and primer
   continuity (``control``);
4. speed of the generation it ran.

Reference layouts: a built corpus (``corpus build`` output) gives its train split to the bigram and the
classifier and its test split to likelihood and comparison. A MIDI folder is read whole (all one style,
``reference_style``) and split by position: even-numbered files act as train, odd-numbered as test.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers.utils import logging

from ..core.codec import Header, encode_events, encode_notes, header_ids
from ..core.midi_io import Note
from ..data.windows import LABEL_IGNORE
from . import compare, control, degeneracy
from .likelihood import BITS_PER_NAT, BigramBaseline, EvalTotals, note_on_table, shifted_nll
from .statistics import SCALAR_STATISTICS, PieceStatistics, clip_notes, long_note_share_overall, piece_statistics

logger = logging.get_logger(__name__)

# Default size: 9 cases x 1 piece x 20 s. The bundled model writes ~3 tokens per note and dense music (up to
# ~55 notes/s for bands), so on 2 CPU cores at ~80-100 tokens/s one 20 s band piece takes ~1-2 min; the
# quality issue's full measurement (18 pieces of 30 s: --pieces 2 --seconds 30) takes ~3x the default.
DEFAULT_SECONDS = 20.0
DEFAULT_PIECES = 1  # per case, generated as one batch
# The quality issue's grid: solo piano, solo violin and three bands across pop, rock, jazz, bach and irish,
# each instrumentation in the styles it is usual in (9 cases; with --pieces 2, the issue's 18 pieces).
DEFAULT_CASES = (
    ("pop", ("piano",)), ("pop", ("piano", "bass", "drums")), ("pop", ("piano", "bass", "drums", "guitar")),
    ("rock", ("guitar", "bass", "drums")), ("rock", ("piano", "bass", "drums", "guitar")),
    ("jazz", ("piano", "bass", "drums")), ("bach", ("piano",)), ("irish", ("violin",)), ("bach", ("violin",)),
)
DEFAULT_LIKELIHOOD_PIECES = 48  # test pieces scored (one context-long window each): ~30 s of forward passes
LIKELIHOOD_BATCH = 8
MAX_REAL_PER_STYLE = 200  # real clips compared per case; more adds reading time, not precision
# Fewest real clips a case is compared with before its reference is widened: real-vs-real splits them into
# two halves, and a half under 5 clips gives a histogram too coarse to read.
MIN_MATCHED_CLIPS = 10
# How a case's real clips are chosen (evaluate's ``reference_match``):
# - "instrumentation": clips of the case's style in which exactly the asked instruments play; with fewer than
#   MIN_MATCHED_CLIPS of those, clips with exactly those instruments in any style; with fewer still, the style
#   alone. A band is then compared with bands: the default corpus's "pop" is nearly all POP909 piano, so under
#   "style" a pop piano + bass + drums piece was measured against solo piano.
# - "style": every clip of the case's style, whatever plays in it (the evaluator's first rule).
REFERENCE_MATCHES = ("instrumentation", "style")
# A real piece stands for the style over a clip only if its music lasts the clip (from its first note to the
# end of its last, at least this share of it): a generated piece is asked for the whole clip, but a 12 s
# fiddle tune clipped to 30 s is 18 s of silence, which counted against every generated piece in notes per
# second, empty beats, the longest silence and the groove. Default corpus, 30 s clips: 36 % of the irish
# violin clips, 28 % of bach piano's and 18 % of the solo violins' ended before 27 s; no band's did. Shorter
# pieces are used only where a rule finds fewer than MIN_MATCHED_CLIPS that last.
FULL_CLIP_SHARE = 0.95
MAX_TRAIN_PER_STYLE = 100  # real pieces per style the style classifier is fitted on
MAX_THRESHOLD_PIECES = 1000  # whole real pieces pooled for the per-family long-note thresholds
DEFAULT_PRIMERS = 1  # real test pieces continued for the primer-continuity check
PRIMER_SECONDS = 6.0
CONTINUATION_SECONDS = 10.0
TOKENS_PER_NOTE = 3.0  # note-on + note-off + ~1 wait: for the time estimate
PROBE_SECONDS = 2.0  # music generated once before the run to measure this machine's speed


@dataclass
class Case:
    """A style and the instruments asked for."""

    style: str
    instruments: list[str]

    @property
    def name(self) -> str:
        return f"{self.style}: {', '.join(self.instruments)}"


@dataclass
class RealPiece:
    """A reference piece: its notes (seconds), tempo, style and event ids in the reference's vocabulary."""

    style: str
    notes: list[Note]
    bpm: float
    ids: list[int]
    name: str = ""

    @functools.cached_property
    def families(self) -> frozenset[int]:
        """The families that play in it (read once: every case's reference search asks)."""
        return frozenset(n.family for n in self.notes)


@dataclass
class Reference:
    train: list[RealPiece]
    test: list[RealPiece]
    instruments: list[str]
    source: str


@dataclass
class GeneratedPiece:
    case: Case
    notes: list[Note]
    bpm: float
    ids: list[int]


@dataclass
class EvaluationResult:
    """Every figure of one evaluation (``report.write_report`` turns it into report.json / report.md / PNGs).

    ``generated`` and ``real_clips`` hold the notes the figures came from (for the pictures); ``to_dict``
    leaves them out.
    """

    model: str
    reference: str
    settings: dict
    likelihood: dict = field(default_factory=dict)
    cases: list[dict] = field(default_factory=list)  # per case: statistics comparison, degeneracy, adherence
    overall: dict = field(default_factory=dict)  # the quality issue's headline figures
    style_adherence: dict = field(default_factory=dict)
    primer_continuity: list[dict] = field(default_factory=list)
    speed: dict = field(default_factory=dict)
    real_reference: dict = field(default_factory=dict)  # real-pieces counters per style (degeneracy, silences)
    generated: list[GeneratedPiece] = field(default_factory=list, repr=False)
    real_clips: dict[str, list[RealPiece]] = field(default_factory=dict, repr=False)  # per case name
    instruments: list[str] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        keep = ("model", "reference", "settings", "likelihood", "cases", "overall", "style_adherence",
                "primer_continuity", "speed", "real_reference")
        return _jsonable({k: getattr(self, k) for k in keep})


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if hasattr(obj, "__dataclass_fields__"):
        return _jsonable(asdict(obj))
    return obj


def load_cases(path: str | Path | None) -> list[Case]:
    """Cases from a JSON file ``[{"style": "pop", "instruments": ["piano", "bass"]}, ...]``, or the defaults."""
    if path is None:
        return [Case(s, list(i)) for s, i in DEFAULT_CASES]
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list) or not all(isinstance(c, dict) and "style" in c and "instruments" in c for c in data):
        raise ValueError(f"{path}: cases are a JSON list of {{\"style\": ..., \"instruments\": [...]}} objects")
    return [Case(str(c["style"]), [str(i) for i in c["instruments"]]) for c in data]


# --- the reference --------------------------------------------------------------------------------------
def load_reference(path: str | Path, tokenizer, reference_style: str = "unknown") -> Reference:
    """A built corpus (``dataset/`` inside) or a folder of MIDI files, as real pieces in two parts.

    Args:
        path (`str` or `Path`): the corpus folder or MIDI folder.
        tokenizer (`MuseNetTokenizer`): the model's tokenizer (reads MIDI files; names the families).
        reference_style (`str`, *optional*, defaults to ``"unknown"``): the style of every piece of a MIDI folder.
    """
    from ..data.corpus import find_midi_files, load_corpus

    path = Path(path)
    if (path / "dataset").is_dir():
        splits, corpus_tok = load_corpus(path)
        if corpus_tok.instruments != tokenizer.instruments:
            raise ValueError(f"{path}: the corpus's families {corpus_tok.instruments} differ from the model's {tokenizer.instruments}")

        def pieces(split: str) -> list[RealPiece]:
            rows = splits[split] if split in splits else []
            out = []
            for row in rows:
                decoded = corpus_tok.decode_events(row["input_ids"])
                out.append(RealPiece(row["style"], decoded.notes, float(decoded.header.bpm), list(row["input_ids"]), row["path"]))
            return out

        return Reference(pieces("train"), pieces("test"), list(tokenizer.instruments), f"corpus {path}")
    files = find_midi_files(path)
    if not files:
        raise FileNotFoundError(f"{path} is neither a built corpus nor a folder with MIDI files")
    pieces = []
    for f in files:
        try:
            score = tokenizer.read_score(f)
        except Exception as exc:  # MidiError: a bad file is skipped with its reason, never fatal
            logger.warning(f"skipping {f}: {exc}")
            continue
        if score.notes:
            ids = tokenizer.encode_score(score, style=reference_style)
            pieces.append(RealPiece(reference_style, score.notes, score.bpm, ids, str(f)))
    return Reference(pieces[0::2], pieces[1::2], list(tokenizer.instruments), f"MIDI folder {path} (style {reference_style})")


def clip_piece(piece: RealPiece, seconds: float) -> RealPiece:
    """The piece's first ``seconds`` from its first note (so a silent lead-in does not count)."""
    start = min((n.start for n in piece.notes), default=0.0)
    return RealPiece(piece.style, clip_notes(piece.notes, start, seconds), piece.bpm, [], piece.name)


def reference_clips(ref: Reference, case: Case, instruments: list[str], seconds: float,
                    match: str = "instrumentation") -> tuple[list[RealPiece], str]:
    """The real clips one case is compared with, and which rule chose them (see ``REFERENCE_MATCHES``).

    Test pieces come before train pieces; at most ``MAX_REAL_PER_STYLE`` clips of ``seconds`` are kept, of
    pieces whose music lasts the clip (``FULL_CLIP_SHARE``); a rule that finds fewer than ``MIN_MATCHED_CLIPS``
    of those takes shorter pieces too (the style rule always does, rather than come back empty).

    Args:
        ref (`Reference`): the reference pieces.
        case (`Case`): the style and the asked instruments.
        instruments (`list[str]`): the model's families, in index order.
        seconds (`float`): clip length.
        match (`str`, *optional*, defaults to ``"instrumentation"``): one of ``REFERENCE_MATCHES``.

    Returns:
        `(clips, rule)`: the clips, and the rule as words, e.g. ``"pop, exactly piano + bass + drums"``.
    """
    if match not in REFERENCE_MATCHES:
        raise ValueError(f"reference_match must be one of {REFERENCE_MATCHES}, got {match!r}")
    if match == "instrumentation":
        asked = {instruments.index(name) for name in case.instruments}
        played = " + ".join(case.instruments)
        for style, rule in ((case.style, f"{case.style}, exactly {played}"), (None, f"any style, exactly {played}")):
            candidates = (p for p in ref.test + ref.train if (style is None or p.style == style) and asked <= p.families)
            clips = _clips(candidates, seconds, keep=lambda clip: clip.families == asked)
            if len(clips) >= MIN_MATCHED_CLIPS:
                return clips, rule
    pool = [p for p in ref.test if p.style == case.style] or [p for p in ref.train if p.style == case.style]
    return _clips(pool, seconds), f"{case.style}, any instruments"


def _clips(pieces, seconds: float, keep=lambda clip: True) -> list[RealPiece]:
    """The first ``MAX_REAL_PER_STYLE`` clips of ``seconds`` of ``pieces`` (in order) that ``keep`` accepts, of
    pieces that last the clip (``lasts``) where there are ``MIN_MATCHED_CLIPS`` of those, else of any."""
    lasting, every = [], []
    for piece in pieces:
        clip = clip_piece(piece, seconds)
        if not keep(clip):
            continue
        if len(every) < MAX_REAL_PER_STYLE:
            every.append(clip)
        if lasts(piece, seconds):
            lasting.append(clip)
            if len(lasting) == MAX_REAL_PER_STYLE:
                break
    return lasting if len(lasting) >= MIN_MATCHED_CLIPS else every


def lasts(piece: RealPiece, seconds: float) -> bool:
    """Whether ``piece``'s music lasts a clip of ``seconds`` (``FULL_CLIP_SHARE`` of it, from its first note
    to the end of its last)."""
    if not piece.notes:
        return False
    start = min(n.start for n in piece.notes)
    end = max(max(n.end, n.start) for n in piece.notes)
    return end - start >= FULL_CLIP_SHARE * seconds


# --- likelihood -----------------------------------------------------------------------------------------
@torch.no_grad()
def reference_likelihood(model, tokenizer, reference: Reference, max_pieces: int = DEFAULT_LIKELIHOOD_PIECES) -> dict:
    """Bits per token, per note and per second of music on the first context-long window of each test piece.

    The bigram baseline (``BigramBaseline.fit_tuned`` on the reference's train pieces) scores the same
    windows. Bits per second divide by the music the predicted tokens span (their waits, 10 ms each).

    Args:
        model: a causal LM over the tokenizer's ids.
        tokenizer (`MuseNetTokenizer`): the model's tokenizer.
        reference (`Reference`): ids in the same vocabulary as the model.
        max_pieces (`int`, *optional*, defaults to ``DEFAULT_LIKELIHOOD_PIECES``): test pieces scored.
    """
    vocab = tokenizer.musenet_vocab
    context = int(getattr(model.config, "n_positions", None) or model.config.max_position_embeddings)
    windows = reference.test[:max_pieces]
    if not windows:
        return {"skipped": "no test pieces"}
    vocab_size = model.config.vocab_size
    if any(max(p.ids) >= vocab_size for p in windows):
        return {"skipped": "the reference has ids past the model's vocabulary (a corpus with styles the model lacks)"}
    note_on = note_on_table(vocab)
    note_on_t = torch.as_tensor(note_on, device=model.device)
    step_seconds = vocab.config.step_seconds
    model_totals: dict[str, EvalTotals] = {}
    seconds: dict[str, float] = {}
    was_training = model.training
    model.eval()
    for b in range(0, len(windows), LIKELIHOOD_BATCH):
        batch = windows[b: b + LIKELIHOOD_BATCH]
        ids = [p.ids[:context] for p in batch]
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, x in enumerate(ids):
            input_ids[i, : len(x)] = torch.as_tensor(x)
            mask[i, : len(x)] = 1
        labels = input_ids.masked_fill(mask == 0, LABEL_IGNORE)
        logits = model(input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device)).logits
        for i, piece in enumerate(batch):  # per piece, so totals split by style
            nll, tokens, notes = shifted_nll(logits[i: i + 1], labels[i: i + 1].to(model.device), note_on_t).tolist()
            model_totals.setdefault(piece.style, EvalTotals())
            model_totals[piece.style] += EvalTotals(nll, int(tokens), int(notes))
            seconds[piece.style] = seconds.get(piece.style, 0.0) + float(vocab.wait_steps(ids[i][1:]).sum()) * step_seconds
    if was_training:
        model.train()
    bigram = BigramBaseline.fit_tuned([p.ids for p in reference.train] or [p.ids for p in windows], len(tokenizer))
    bigram_totals: dict[str, EvalTotals] = {}
    for p in windows:
        bigram_totals.setdefault(p.style, EvalTotals())
        bigram_totals[p.style] += bigram.totals([p.ids[:context]], note_on)

    def figures(t: EvalTotals, secs: float) -> dict:
        m = t.metrics(prefix="")
        bits = t.nll_nats * BITS_PER_NAT
        return {"bits_per_token": m["bits_per_token"], "bits_per_note": m["bits_per_note"],
                "bits_per_second": bits / secs if secs else math.nan, "tokens": t.tokens, "notes": t.notes}

    def overall(table: dict[str, EvalTotals]) -> EvalTotals:
        total = EvalTotals()
        for t in table.values():
            total += t
        return total

    all_seconds = sum(seconds.values())
    return {
        "pieces": len(windows),
        "window_tokens": context,
        "model": figures(overall(model_totals), all_seconds),
        "bigram": {**figures(overall(bigram_totals), all_seconds), "alpha": bigram.alpha},
        "per_style": {
            s: {"model": figures(model_totals[s], seconds[s]), "bigram": figures(bigram_totals[s], seconds[s])}
            for s in sorted(model_totals)
        },
    }


# --- generation -----------------------------------------------------------------------------------------
def _decode(tokenizer, ids) -> tuple[list[Note], float]:
    decoded = tokenizer.decode_events(ids)
    return decoded.notes, float(decoded.header.bpm)


def estimate_seconds(pipe, cases: list[Case], pieces: int, seconds: float, seed: int = 0,
                     generate_kwargs: dict | None = None) -> dict:
    """Measures this machine's speed on a short batch of the largest case and extrapolates to the whole run.

    Returns ``{"estimate_seconds", "probe_tokens_per_second", "probe_tokens_per_music_second"}``; the estimate
    assumes each case's tokens per second of music scale with its number of instruments.
    """
    probe = max(cases, key=lambda c: len(c.instruments))
    start = time.perf_counter()
    out = pipe(style=probe.style, instruments=probe.instruments, seconds=PROBE_SECONDS, num_return_sequences=pieces,
               seed=seed, **(generate_kwargs or {}))
    wall = max(time.perf_counter() - start, 1e-6)
    tokens = sum(len(o["ids"]) for o in out)
    per_music_second = tokens / pieces / PROBE_SECONDS / len(probe.instruments)
    total_tokens = sum(per_music_second * len(c.instruments) * seconds * pieces for c in cases)
    return {"estimate_seconds": total_tokens / (tokens / wall), "probe_tokens_per_second": tokens / wall,
            "probe_tokens_per_music_second_per_instrument": per_music_second}


def generate_case(pipe, case: Case, pieces: int, seconds: float, seed: int, progress_bar: bool = True,
                  generate_kwargs: dict | None = None) -> tuple[list[GeneratedPiece], float]:
    """``pieces`` variations of one case as one seeded batch; returns them and the wall seconds taken."""
    start = time.perf_counter()
    out = pipe(style=case.style, instruments=case.instruments, seconds=seconds, num_return_sequences=pieces,
               seed=seed, progress_bar=progress_bar, **(generate_kwargs or {}))
    wall = time.perf_counter() - start
    result = []
    for o in out:
        notes, bpm = _decode(pipe.tokenizer, o["ids"])
        result.append(GeneratedPiece(case, notes, bpm, list(o["ids"])))
    return result, wall


# --- the whole evaluation -------------------------------------------------------------------------------
def evaluate(model: str, reference: str | Path, cases: list[Case] | None = None, pieces: int = DEFAULT_PIECES,
             seconds: float = DEFAULT_SECONDS, seed: int = 0, reference_style: str = "unknown",
             likelihood_pieces: int = DEFAULT_LIKELIHOOD_PIECES, primers: int = DEFAULT_PRIMERS,
             progress_bar: bool = True, on_estimate=None, generate_kwargs: dict | None = None,
             reference_match: str = "instrumentation") -> EvaluationResult:
    """Evaluates a checkpoint against a reference (see the module docstring for what is measured).

    Args:
        model (`str`): anything ``pipeline("midi-generation", model=...)`` loads (a folder or Hub id);
            ``"default"`` for the bundled model.
        reference (`str` or `Path`): a built corpus folder or a folder of MIDI files.
        cases (`list[Case]`, *optional*): default ``DEFAULT_CASES``.
        pieces (`int`, *optional*, defaults to 1): generated pieces per case (one batch).
        seconds (`float`, *optional*, defaults to 20): length of each generated piece and of each real clip.
        seed (`int`, *optional*, defaults to 0): case ``i`` is generated with seed ``seed + i``.
        reference_style (`str`, *optional*): the style of a MIDI-folder reference.
        likelihood_pieces (`int`, *optional*, defaults to 48): test pieces the likelihood is measured on (0: none).
        primers (`int`, *optional*, defaults to 1): real test pieces continued for primer continuity (0: none).
        progress_bar (`bool`, *optional*, defaults to True): a bar per generated batch.
        on_estimate (`callable`, *optional*): called with the time estimate (a dict) before generating.
        generate_kwargs (`dict`, *optional*): sampling arguments passed to every pipeline call.
        reference_match (`str`, *optional*, defaults to ``"instrumentation"``): how each case's real clips are
            chosen (``REFERENCE_MATCHES``; ``"style"`` is the evaluator's first rule).

    Returns:
        `EvaluationResult`
    """
    from transformers import pipeline

    import musenet_hf  # noqa: F401  (registers the task)

    if reference_match not in REFERENCE_MATCHES:
        raise ValueError(f"reference_match must be one of {REFERENCE_MATCHES}, got {reference_match!r}")
    cases = list(cases) if cases is not None else load_cases(None)
    pipe = pipeline("midi-generation", **({} if model in (None, "default") else {"model": str(model)}))
    tok = pipe.tokenizer
    instruments = list(tok.instruments)
    for case in cases:
        unknown = [i for i in case.instruments if i not in instruments]
        if unknown or case.style not in tok.styles:
            raise ValueError(f"case {case.name!r}: unknown {'instruments ' + str(unknown) if unknown else 'style'} "
                             f"(instruments: {instruments}; styles: {tok.styles})")
    gen_kwargs = dict(generate_kwargs or {})
    settings = {"cases": [asdict(c) for c in cases], "pieces_per_case": pieces, "seconds": seconds, "seed": seed,
                "likelihood_pieces": likelihood_pieces, "primers": primers, "generate_kwargs": gen_kwargs,
                "torch_threads": torch.get_num_threads(), "reference_match": reference_match}
    result = EvaluationResult(model=str(model or "default"), reference=str(reference), settings=settings, instruments=instruments)

    ref = load_reference(reference, tok, reference_style)
    result.reference = ref.source
    logger.info(f"reference: {len(ref.train)} train and {len(ref.test)} test pieces from {ref.source}")
    if likelihood_pieces:
        result.likelihood = reference_likelihood(pipe.model, tok, ref, likelihood_pieces)

    # Real clips per style (test pieces, else train pieces when the style has no test piece): the real
    # pieces' own degeneracy counters; and per case, the clips it is compared with (``reference_clips``).
    styles = sorted({c.style for c in cases})
    thresholds = degeneracy.held_thresholds([p.notes for p in (ref.test + ref.train)[:MAX_THRESHOLD_PIECES]], instruments)
    vocab = tok.musenet_vocab
    for style in styles:
        clips, _ = reference_clips(ref, Case(style, []), instruments, seconds, match="style")
        stats = [piece_statistics(p.notes, instruments, seconds, p.bpm) for p in clips]
        degen = [degeneracy.piece_degeneracy(s, _event_ids(p.notes, vocab), thresholds) for s, p in zip(stats, clips)]
        result.real_reference[style] = {"pieces": len(clips), "degeneracy": degeneracy.summarize(degen),
                                        "long_note_share": long_note_share_overall(stats)}
    case_real: dict[str, tuple[list[PieceStatistics], str]] = {}
    for case in cases:
        clips, rule = reference_clips(ref, case, instruments, seconds, reference_match)
        result.real_clips[case.name] = clips
        case_real[case.name] = ([piece_statistics(p.notes, instruments, seconds, p.bpm) for p in clips], rule)

    estimate = estimate_seconds(pipe, cases, pieces, seconds, seed, gen_kwargs)
    # each primer continuation: ~2 instruments for CONTINUATION_SECONDS
    per_second = estimate["probe_tokens_per_music_second_per_instrument"] * 2 / estimate["probe_tokens_per_second"]
    estimate["estimate_seconds"] += primers * CONTINUATION_SECONDS * per_second
    estimate["estimate_minutes"] = estimate["estimate_seconds"] / 60
    result.speed["estimate"] = estimate
    if on_estimate is not None:
        on_estimate(estimate)
    logger.info(f"generating {len(cases)} cases x {pieces} pieces x {seconds:g} s: about {estimate['estimate_seconds'] / 60:.1f} min")

    total_wall = total_notes = total_tokens = 0.0
    generated_stats: list[tuple[GeneratedPiece, PieceStatistics]] = []
    for i, case in enumerate(cases):
        logger.info(f"case {i + 1}/{len(cases)}: {case.name}")
        made, wall = generate_case(pipe, case, pieces, seconds, seed + i, progress_bar, gen_kwargs)
        total_wall += wall
        total_notes += sum(len(g.notes) for g in made)
        total_tokens += sum(len(g.ids) for g in made)
        result.generated.extend(made)
        stats = [piece_statistics(g.notes, instruments, seconds, g.bpm, asked=case.instruments) for g in made]
        generated_stats.extend(zip(made, stats))
        real_stats, rule = case_real[case.name]
        figures = _case_figures(case, made, stats, real_stats, thresholds, instruments, vocab, wall)
        figures["reference_rule"] = rule
        result.cases.append(figures)
    result.speed.update({
        "generation_wall_seconds": total_wall,
        "notes_per_second": total_notes / total_wall if total_wall else math.nan,
        "tokens_per_second": total_tokens / total_wall if total_wall else math.nan,
        "music_seconds_per_second": len(result.generated) * seconds / total_wall if total_wall else math.nan,
    })
    result.overall = _overall(result, generated_stats)
    result.style_adherence = asdict(_style_adherence(ref, generated_stats, instruments, seconds))
    if primers:
        result.primer_continuity = _primer_continuity(pipe, ref, styles, primers, instruments, seed, gen_kwargs)
    return result


def _event_ids(notes: list[Note], vocab) -> list[int]:
    """Event ids of notes (no header, no ``<eos>``), one encoding for real and generated pieces alike."""
    return encode_events(notes, vocab)[0]


def _case_figures(case: Case, made: list[GeneratedPiece], stats: list[PieceStatistics], real: list[PieceStatistics],
                  thresholds: dict, instruments: list[str], vocab, wall: float) -> dict:
    real_values = {k: [s.scalars()[k] for s in real] for k in SCALAR_STATISTICS}
    gen_values = {k: [s.scalars()[k] for s in stats] for k in SCALAR_STATISTICS}
    degen = [degeneracy.piece_degeneracy(s, _event_ids(g.notes, vocab), thresholds) for g, s in zip(made, stats)]
    adherence = [control.instrument_adherence(g.notes, instruments, s) for g, s in zip(made, stats)]
    return {
        "case": asdict(case),
        "name": case.name,
        "real_pieces": len(real),
        "comparison": [asdict(c) for c in compare.compare_all(real_values, gen_values)] if real else [],
        "degeneracy": degeneracy.summarize(degen),
        "adherence": {
            "outside_share_mean": float(np.mean([a["outside_share"] for a in adherence])) if adherence else 0.0,
            "pieces": len(adherence),
            "pieces_with_silent_asked": sum(bool(a["silent_asked"]) for a in adherence),
            "silent_asked": [a["silent_asked"] for a in adherence],
        },
        "pieces": [s.summary() for s in stats],
        "generation_wall_seconds": wall,
    }


def _overall(result: EvaluationResult, generated: list[tuple[GeneratedPiece, PieceStatistics]]) -> dict:
    """The quality issue's headline figures over every generated piece."""
    stats = [s for _, s in generated]
    if not stats:
        return {}
    gaps, floors = {}, {}
    for case in result.cases:
        for c in case["comparison"]:
            gaps.setdefault(c["name"], []).append(c["real_vs_real"] - c["generated_vs_real"])  # nan where undefined
            if c.get("real_sample_vs_real_draws"):
                floors.setdefault(c["name"], []).append([c["real_vs_real"] - o for o in c["real_sample_vs_real_draws"]])
    solo_pop_piano = next((c for c in result.cases if c["case"] == {"style": "pop", "instruments": ["piano"]}), None)
    return {
        "pieces": len(stats),
        "long_note_percent": 100 * long_note_share_overall(stats),
        "long_note_percent_max_piece": 100 * max(s.long_note_share for s in stats),
        "pieces_with_silent_asked": sum(bool(s.silent_asked) for s in stats),
        "busiest_drum_hits_per_second_max": max(s.busiest_drum_hits_per_second for s in stats),
        "notes_per_second_median": float(np.median([s.notes_per_second for s in stats])),
        "overlap_shortfall_max": {k: float(np.nanmax(v)) if np.isfinite(v).any() else math.nan for k, v in gaps.items()},
        "overlap_shortfall_mean": float(np.nanmean([x for v in gaps.values() for x in v])) if gaps else math.nan,
        # what real clips in place of the generated ones would show: per draw the worst case, then the mean
        "noise_floor_shortfall_max": {k: float(np.mean(np.nanmax(np.array(v), axis=0))) for k, v in floors.items()},
        "noise_floor_shortfall_mean": float(np.nanmean([x for v in floors.values() for d in v for x in d])) if floors else math.nan,
        "solo_pop_piano_gap_in_iqr": {
            c["name"]: c["gap_in_iqr"] for c in (solo_pop_piano or {}).get("comparison", [])
            if c["name"] in ("notes_per_second", "polyphony", "pitch_class_entropy", "scale_consistency", "pitch_range")
        },
    }


def _style_adherence(ref: Reference, generated, instruments: list[str], seconds: float) -> control.StyleAdherence:
    def features(pieces: list[RealPiece], cap: int) -> list[tuple[str, list[float]]]:
        taken: dict[str, int] = {}
        out = []
        for p in pieces:
            if taken.get(p.style, 0) >= cap:
                continue
            taken[p.style] = taken.get(p.style, 0) + 1
            clip = clip_piece(p, seconds)
            out.append((p.style, control.style_features(piece_statistics(clip.notes, instruments, seconds, p.bpm), instruments)))
        return out

    gen = [(g.case.style, control.style_features(s, instruments)) for g, s in generated]
    return control.style_adherence(features(ref.train, MAX_TRAIN_PER_STYLE), features(ref.test, MAX_REAL_PER_STYLE), gen)


def _primer_continuity(pipe, ref: Reference, styles: list[str], count: int, instruments: list[str], seed: int,
                       gen_kwargs: dict) -> list[dict]:
    """Continues the first ``count`` test pieces (of the cases' styles when there are any) from a real primer."""
    tok = pipe.tokenizer
    vocab = tok.musenet_vocab
    pool = [p for p in ref.test if p.style in styles] or ref.test
    out = []
    for i, piece in enumerate(pool[:count]):
        primer = clip_piece(piece, PRIMER_SECONDS)
        if not primer.notes:
            continue
        families = sorted({n.family for n in primer.notes})
        header = Header(piece.style if piece.style in tok.styles else "unknown", families, round(piece.bpm))
        midi = tok.decode_midi(header_ids(vocab, header) + encode_notes(primer.notes, vocab))
        generated = pipe(midi, style=header.style, seconds=CONTINUATION_SECONDS, primer_seconds=PRIMER_SECONDS,
                         seed=seed + i, **gen_kwargs)[0]
        notes, bpm = _decode(tok, generated["ids"])
        cont = clip_notes(notes, PRIMER_SECONDS, CONTINUATION_SECONDS)
        ps = piece_statistics(primer.notes, instruments, PRIMER_SECONDS, piece.bpm)
        cs = piece_statistics(cont, instruments, CONTINUATION_SECONDS, bpm)
        drum = vocab.drum_index
        out.append({"piece": piece.name, "style": piece.style, **control.primer_continuity(
            ps, [n.pitch for n in primer.notes if n.family != drum], cs, [n.pitch for n in cont if n.family != drum])})
    return out
