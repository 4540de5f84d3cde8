"""``musenet-hf render``: MIDI files to audio (WAV, OGG or FLAC) with FluidSynth and a General MIDI soundfont."""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("render", help="render MIDI files to audio with FluidSynth")
    p.add_argument("files", nargs="+", help="MIDI files")
    p.add_argument("--format", choices=("wav", "ogg", "flac"), default="wav", help="audio format (default wav)")
    p.add_argument("--soundfont", default=None,
                   help="a General MIDI .sf2 (default: $MUSENET_SOUNDFONT, else the system's FluidR3 / TimGM6mb)")
    p.add_argument("--sample-rate", type=int, default=44_100, help="samples per second (default 44100)")
    p.add_argument("--out", default=None, help="directory for the audio (default: beside each MIDI file)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..core.errors import MidiError
    from ..listen.audio import AudioError, find_fluidsynth, find_soundfont, render_audio

    try:  # a missing synthesizer or soundfont is one message, before any file
        find_fluidsynth()
        find_soundfont(args.soundfont)
    except AudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for name in args.files:
        src = Path(name)
        dest = (Path(args.out) if args.out else src.parent) / f"{src.stem}.{args.format}"
        try:
            render_audio(src, dest, soundfont=args.soundfont, sample_rate=args.sample_rate)
        except (MidiError, AudioError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"wrote {dest}")
    return 2 if failed else 0
