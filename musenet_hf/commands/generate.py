"""``musenet-hf generate``: new MIDI in a style and instrumentation, one file per variation."""

from __future__ import annotations

import sys
from pathlib import Path

from ..core.sampling import describe


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate MIDI with the midi-generation pipeline")
    p.add_argument("--style", default="unknown",
                   help="a style name, or a blend like 'bach:0.5,pop:0.5' (see `musenet-hf styles`)")
    p.add_argument("--instruments", default=None,
                   help="comma-separated families, e.g. piano,bass,drums (default: the primer's, else piano)")
    p.add_argument("--primer", default=None, help="a MIDI file whose beginning starts the piece")
    p.add_argument("--primer-seconds", type=float, default=None, help="use only this many seconds of the primer")
    p.add_argument("--primer-notes", type=int, default=None, help="use only the primer's first N notes")
    p.add_argument("--seconds", type=float, default=30.0, help="seconds of new music after the primer")
    p.add_argument("--variations", type=int, default=1, help="how many pieces, generated as one batch")
    model_default = "default: the model's generation config; the bundled model's and train.py's"
    p.add_argument("--temperature", type=float, default=None,
                   help=f"sampling temperature ({model_default}: {describe('temperature')})")
    p.add_argument("--top-k", type=int, default=None,
                   help=f"sample among the k likeliest tokens, 0 for off ({model_default}: {describe('top_k')})")
    p.add_argument("--top-p", type=float, default=None,
                   help=f"nucleus sampling mass, 1.0 for off ({model_default}: {describe('top_p')})")
    p.add_argument("--seed", type=int, default=None, help="same seed, same music")
    p.add_argument("--bpm", type=float, default=None, help="tempo of the output (default: the primer's, else 120)")
    p.add_argument("--loose-instruments", action="store_true",
                   help="let the header only suggest the instruments, as MuseNet did (default: strict)")
    p.add_argument("--allow-early-end", action="store_true", help="let the model end before --seconds")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-quantize", action="store_true",
                   help="decode with the model's float weights (default on CPU: int8 weights, see the README)")
    p.add_argument("--kv-cache", choices=("auto", "float32", "bfloat16"), default=None,
                   help="key/value cache dtype of the CPU decoding loop (default auto: bfloat16 on CPUs with AMX, see the README)")
    p.add_argument("--model", default=None,
                   help="checkpoint or LoRA adapter, a directory or Hub id (default: the bundled model)")
    p.add_argument("--base", default=None,
                   help="for a LoRA adapter: the base checkpoint to apply it to (default: the one the adapter names)")
    p.add_argument("--out", default=".", help="directory for the .mid files")
    p.add_argument("--name", default="musenet", help="file name prefix: NAME-1.mid, NAME-2.mid, ...")
    p.add_argument("--audio", choices=("wav", "ogg", "flac"), default=None,
                   help="also render each piece to audio with FluidSynth (see `musenet-hf render`)")
    p.add_argument("--roll", action="store_true", help="also draw each piece's piano roll as NAME-i.png")
    p.add_argument("--soundfont", default=None, help="General MIDI .sf2 for --audio (default: the system's)")
    from ..core.guards import GUARD_NAMES

    p.add_argument("--no-guard", action="append", default=[], choices=GUARD_NAMES,
                   help="switch one musical guard off (repeatable; all are on by default, see the README)")
    p.set_defaults(func=run)


def parse_style(text: str):
    """'bach' -> 'bach'; 'bach:0.5,pop:0.5' -> {'bach': 0.5, 'pop': 0.5}."""
    if ":" not in text:
        return text
    blend = {}
    for part in text.split(","):
        name, _, weight = part.partition(":")
        try:
            blend[name.strip()] = float(weight)
        except ValueError:
            raise ValueError(f"bad style weight in {part!r}; write a blend as name:weight,name:weight") from None
    return blend


def run(args) -> int:
    from .. import load_pipeline
    from ..core.errors import MidiError
    from ..core.guards import guards_off
    from ..hub.errors import CheckpointLoadError
    from ..modeling.adapters import AdapterBaseError

    options = dict(
        style=None, instruments=args.instruments, seconds=args.seconds, primer_seconds=args.primer_seconds,
        primer_notes=args.primer_notes, bpm=args.bpm, strict_instruments=not args.loose_instruments,
        allow_early_end=args.allow_early_end, num_return_sequences=args.variations, seed=args.seed,
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, num_threads=args.threads,
        progress_bar=True, quantize=False if args.no_quantize else None, kv_cache_dtype=args.kv_cache,
        **guards_off(args.no_guard),
    )
    try:
        if args.audio:  # no synthesizer or soundfont: say so before minutes of generation
            from ..listen.audio import find_fluidsynth, find_soundfont

            find_fluidsynth()
            find_soundfont(args.soundfont)
        options["style"] = parse_style(args.style)
        gen = load_pipeline(args.model, args.base)
        results = gen(args.primer, **{k: v for k, v in options.items() if v is not None})
    except (MidiError, AdapterBaseError, CheckpointLoadError, ValueError, OSError, RuntimeError, ImportError) as exc:  # AudioError is a RuntimeError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i, result in enumerate(results, start=1):
        path = out / f"{args.name}-{i}.mid"
        extras = []
        if args.audio or args.roll:
            from ..listen.audio import AudioError
            from ..listen.pieces import save_piece

            try:
                files = save_piece(result, gen.tokenizer, out / f"{args.name}-{i}", audio=args.audio, roll=args.roll,
                                   soundfont=args.soundfont)
            except AudioError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            extras = [str(files[k]) for k in ("audio", "roll") if k in files]
        else:
            result["midi"].save(path)
        per_instrument = ", ".join(f"{name} {count}" for name, count in result["notes_per_instrument"].items())
        print(f"wrote {path}  {result['seconds']:.1f} s, {result['notes']} notes ({per_instrument or 'silence'})"
              + "".join(f"\n      {e}" for e in extras))
    return 0
