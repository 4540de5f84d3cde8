"""The MuseNet-style playground: a Gradio app over ``pipeline("midi-generation")``.

Pick a style (optionally blended with a second one), instruments and an optional primer; "Generate" makes four
variations as one batch, each with its piano roll, an audio player and a MIDI download. "Continue this one"
primes the next four on the chosen variation and extends it by the same length; "Step back" returns to the
variations before the last continuation (MuseTree's tree in its simplest form: the path walked so far).

``build_app`` returns the ``gr.Blocks``; the top-level ``app.py`` launches it (locally and on a Space).
Under load the queue runs at most ``concurrency`` generations at once and holds at most ``max_queue``
waiting requests; every request is bounded by ``max_seconds`` of music, and only the newest
``KEPT_REQUESTS`` requests' files are kept on disk.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

from transformers.utils import logging

from ..core.errors import MidiError
from .audio import AudioError, find_fluidsynth, find_soundfont
from .pieces import save_piece

logger = logging.get_logger(__name__)

VARIATIONS = 4  # MuseNet showed four continuations at a time
DEFAULT_SECONDS = 20.0
MAX_SECONDS = 60.0  # a request's music, per variation: ~1 min of CPU per 10 s with the bundled model on 2 cores
DEFAULT_CONCURRENCY = 1  # generations at once; each uses every CPU thread torch is given
MAX_QUEUE = 16  # waiting requests beyond this are refused with "queue full" instead of piling up
KEPT_REQUESTS = 32  # request folders of MIDI/audio/PNG kept on disk (Gradio serves copies from its cache)
CACHE_CLEANUP = (600, 3600)  # Gradio's cache: every 10 min, delete files older than an hour
NO_STYLE = "none"  # the second style's "no blend" choice
RANDOM_SEED = -1  # the seed field's "random" (any negative seed): 0 and up repeat their pieces
AUDIO_FORMAT = "ogg"  # ~10x smaller than WAV, played by every current browser


class Playground:
    """The app's state outside the browser: the pipeline, the files it wrote, the generation options.

    Args:
        model (`str`, *optional*, defaults to the bundled checkpoint): a checkpoint directory or Hub id.
        max_seconds (`float`, *optional*, defaults to 60): the longest piece a request may ask for, per step.
        soundfont (`str`, *optional*, defaults to the system's): a GM soundfont; without a synthesizer the app
            still generates, shows piano rolls and downloads, and says why there is no audio.
        workdir (`str`, *optional*, defaults to a new temporary folder): where request folders are written.
        num_threads (`int`, *optional*, defaults to torch's choice): torch's CPU threads, set once for the process
            (``torch.set_num_threads`` is process-wide: setting and restoring it per call would let one request's
            restore change the threads of another still running when ``concurrency`` > 1).
    """

    def __init__(self, model=None, max_seconds: float = MAX_SECONDS, soundfont=None, workdir=None, num_threads=None):
        from .. import load_pipeline

        self.pipe = load_pipeline(model)
        self.model_name = str(model) if model else "the bundled model (musenet_hf/default_model)"
        self.max_seconds = float(max_seconds)
        self.num_threads = num_threads
        if num_threads:
            import torch

            torch.set_num_threads(int(num_threads))
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="musenet-app-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._requests: list[Path] = []
        self._count = 0
        try:
            find_fluidsynth()
            self.soundfont = find_soundfont(soundfont)
            self.audio_problem = None
        except AudioError as exc:
            self.soundfont, self.audio_problem = None, str(exc)
            logger.warning("the app runs without audio: %s", exc)

    @property
    def styles(self) -> list[str]:
        return list(self.pipe.tokenizer.musenet_vocab.config.styles)

    @property
    def instruments(self) -> list[str]:
        return list(self.pipe.tokenizer.instruments)

    def _request_dir(self) -> Path:
        """A fresh folder for one request; the oldest beyond ``KEPT_REQUESTS`` are deleted."""
        with self._lock:
            self._count += 1
            path = self.workdir / f"request-{self._count:06d}"
            path.mkdir()
            self._requests.append(path)
            stale, self._requests = self._requests[:-KEPT_REQUESTS], self._requests[-KEPT_REQUESTS:]
        for old in stale:
            shutil.rmtree(old, ignore_errors=True)
        return path

    def generate(self, style, style2=None, blend=0.0, instruments=(), strict=True, primer=None, primer_seconds=None,
                 primer_notes=None, seconds=DEFAULT_SECONDS, temperature=1.0, top_p=0.95, seed=None) -> list[dict]:
        """Four variations as files: ``[{"midi": path, "audio": path or None, "roll": path, "label": str}]``.

        Raises ``ValueError`` / ``MidiError`` / ``AudioError`` with a message for the page.
        """
        if not instruments:
            raise ValueError("choose at least one instrument")
        if not seconds or not 0 < float(seconds) <= self.max_seconds:
            raise ValueError(f"length must be between 0 and {self.max_seconds:g} seconds, got {seconds}")
        if style2 not in (None, "", NO_STYLE) and style2 != style and blend and float(blend) > 0:
            style = {style: 1.0 - float(blend), style2: float(blend)}
        results = self.pipe(
            primer, style=style, instruments=list(instruments), strict_instruments=bool(strict),
            primer_seconds=_positive_or_none(primer_seconds), primer_notes=_int_or_none(_positive_or_none(primer_notes)),
            seconds=float(seconds), num_return_sequences=VARIATIONS, seed=_seed_or_none(seed),
            temperature=float(temperature), top_p=float(top_p), progress_bar=True,
        )
        folder = self._request_dir()
        pieces = []
        for i, result in enumerate(results, start=1):
            files = save_piece(result, self.pipe.tokenizer, folder / f"variation-{i}", roll=True,
                               audio=AUDIO_FORMAT if self.soundfont else None, soundfont=self.soundfont)
            pieces.append({
                "midi": str(files["midi"]), "audio": str(files["audio"]) if "audio" in files else None,
                "roll": str(files["roll"]),
                "label": f"{result['seconds']:.1f} s, {result['notes']} notes: {', '.join(result['instruments']) or 'silence'}",
            })
        return pieces


def _positive_or_none(value):
    """An empty or zero number field means "not set" (Gradio sends 0 or None for an empty gr.Number)."""
    return float(value) if value not in (None, "") and float(value) > 0 else None


def _seed_or_none(value):
    """A seed, or None (random) for an empty field or ``RANDOM_SEED``: the browser shows and sends 0 for an empty
    gr.Number, so "empty" cannot mean random there (every Generate would repeat seed 0's four pieces)."""
    return int(value) if value not in (None, "") and int(value) >= 0 else None


def _int_or_none(value):
    return int(value) if value not in (None, "") else None


def build_app(model=None, concurrency: int = DEFAULT_CONCURRENCY, max_seconds: float = MAX_SECONDS,
              max_queue: int = MAX_QUEUE, soundfont=None, workdir=None, num_threads=None, playground=None):
    """The playground as a ``gr.Blocks`` with its queue configured (call ``.launch()`` on it).

    Args:
        model (`str`, *optional*, defaults to the bundled checkpoint): a checkpoint directory or Hub id.
        concurrency (`int`, *optional*, defaults to 1): generations running at once; more requests wait.
        max_seconds (`float`, *optional*, defaults to 60): the longest piece per request.
        max_queue (`int`, *optional*, defaults to 16): requests that may wait; more are refused.
        soundfont (`str`, *optional*): see ``Playground``.
        workdir (`str`, *optional*): see ``Playground``.
        num_threads (`int`, *optional*): torch's CPU threads, process-wide (see ``Playground``).
        playground (`Playground`, *optional*): an existing one (then the options above it are ignored).

    Returns:
        `gr.Blocks`
    """
    import gradio as gr

    play = playground or Playground(model, max_seconds, soundfont, workdir, num_threads)
    styles, instruments = play.styles, play.instruments

    def run(style, style2, blend, chosen, strict, primer, primer_seconds, primer_notes, seconds, temperature, top_p,
            seed, history, continue_from=None, progress=gr.Progress(track_tqdm=True)):
        try:
            if continue_from is not None:
                if not history:
                    raise ValueError("generate something before continuing it")
                primer, primer_seconds, primer_notes = history[-1]["pieces"][continue_from]["midi"], None, None
                step_seconds = history[-1]["seconds"]
            else:
                step_seconds = seconds
            pieces = play.generate(style, style2, blend, chosen, strict, primer, primer_seconds, primer_notes,
                                   step_seconds, temperature, top_p, seed)
        except (MidiError, ValueError, AudioError, OSError) as exc:
            return [f"**Error:** {exc}", history, _history_text(history)] + [gr.skip()] * (4 * VARIATIONS)
        note = "" if play.soundfont else f"No audio: {play.audio_problem}"
        step = {"pieces": pieces, "seconds": step_seconds,
                "how": "generated" if continue_from is None else f"continued variation {continue_from + 1}"}
        history = list(history or []) + [step]
        return [note, history, _history_text(history)] + _piece_outputs(pieces)

    def back(history):
        if not history or len(history) < 2:
            return ["Nothing to step back to.", history, _history_text(history)] + [gr.skip()] * (4 * VARIATIONS)
        history = history[:-1]
        return ["", history, _history_text(history)] + _piece_outputs(history[-1]["pieces"])

    def _piece_outputs(pieces):
        out = []
        for p in pieces:
            out += [gr.update(value=p["roll"], label=p["label"]), p["audio"], p["midi"], gr.update(interactive=True)]
        return out

    with gr.Blocks(title="musenet_hf playground", delete_cache=CACHE_CLEANUP) as demo:
        gr.Markdown("# musenet_hf playground\nA style, instruments, maybe a primer: four variations to hear, "
                    f"see and download. Continue the one you like.\n\nModel: `{play.model_name}`", elem_id="intro")
        history = gr.State([])
        with gr.Row():
            with gr.Column():
                style = gr.Dropdown(styles, value="pop" if "pop" in styles else styles[0], label="style", elem_id="style")
                with gr.Row():
                    style2 = gr.Dropdown([NO_STYLE] + styles, value=NO_STYLE, label="blend with", elem_id="style2")
                    blend = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="blend weight", elem_id="blend")
                chosen = gr.CheckboxGroup(instruments, value=["piano"], label="instruments", elem_id="instruments")
                strict = gr.Checkbox(value=True, label="only these instruments (off: a suggestion, as in MuseNet)",
                                     elem_id="strict")
            with gr.Column():
                primer = gr.File(label="primer (MIDI, optional)", file_types=[".mid", ".midi"], type="filepath",
                                 elem_id="primer")
                with gr.Row():
                    primer_seconds = gr.Number(value=0, label="primer seconds (0: all)", elem_id="primer-seconds")
                    primer_notes = gr.Number(value=0, label="primer notes (0: all)", precision=0, elem_id="primer-notes")
                seconds = gr.Slider(1.0, play.max_seconds, value=min(DEFAULT_SECONDS, play.max_seconds), step=1.0,
                                    label="length (seconds of new music)", elem_id="seconds")
                with gr.Row():
                    temperature = gr.Slider(0.5, 1.5, value=1.0, step=0.05, label="temperature", elem_id="temperature")
                    top_p = gr.Slider(0.5, 1.0, value=0.95, step=0.01, label="top-p", elem_id="top-p")
                    seed = gr.Number(value=RANDOM_SEED, label=f"seed ({RANDOM_SEED}: random)", precision=0, elem_id="seed")
        with gr.Row():
            generate = gr.Button("Generate", variant="primary", elem_id="generate")
            step_back = gr.Button("Step back", elem_id="back")
        message = gr.Markdown("", elem_id="message")
        trail = gr.Markdown("", elem_id="history")
        outputs, continues = [], []
        with gr.Row():
            for i in range(VARIATIONS):
                with gr.Column(min_width=240):
                    roll = gr.Image(label=f"variation {i + 1}", type="filepath", interactive=False, elem_id=f"roll-{i}")
                    audio = gr.Audio(label="listen", type="filepath", interactive=False, elem_id=f"audio-{i}")
                    midi = gr.File(label="MIDI", interactive=False, elem_id=f"midi-{i}")
                    more = gr.Button("Continue this one", interactive=False, elem_id=f"continue-{i}")
                    outputs += [roll, audio, midi, more]
                    continues.append(more)
        inputs = [style, style2, blend, chosen, strict, primer, primer_seconds, primer_notes, seconds, temperature,
                  top_p, seed, history]
        results = [message, history, trail] + outputs
        # api names: what gradio_client calls (bench/app_load.py posts to /generate)
        generate.click(run, inputs, results, concurrency_limit=concurrency, concurrency_id="generation",
                       api_name="generate")
        for i, more in enumerate(continues):
            more.click(_continuer(run, i, gr), inputs, results, concurrency_limit=concurrency, concurrency_id="generation",
                       api_name=f"continue_{i + 1}")
        step_back.click(back, [history], results, api_name="step_back")
    demo.queue(max_size=max_queue, default_concurrency_limit=concurrency)
    demo.playground = play
    return demo


def _continuer(run, index: int, gr):
    """The handler of variation ``index``'s "Continue this one" (an explicit signature, so Gradio passes progress)."""

    def go(style, style2, blend, chosen, strict, primer, primer_seconds, primer_notes, seconds, temperature, top_p,
           seed, history, progress=gr.Progress(track_tqdm=True)):
        return run(style, style2, blend, chosen, strict, primer, primer_seconds, primer_notes, seconds, temperature,
                   top_p, seed, history, continue_from=index, progress=progress)

    return go


def _history_text(history) -> str:
    if not history:
        return ""
    steps = [f"{i + 1}. {step['how']} ({step['seconds']:g} s)" for i, step in enumerate(history)]
    return "**Path so far:** " + " → ".join(steps)
