"""MIDI to audio: FluidSynth with a General MIDI soundfont, written as WAV, OGG (Vorbis) or FLAC.

    from musenet_hf.listen.audio import render_audio
    render_audio("piece.mid", "piece.ogg")                 # the first GM soundfont found on the system
    render_audio(result["midi"], "piece.wav", soundfont="FluidR3_GM.sf2")

The synthesizer is the ``fluidsynth`` program (Debian/Ubuntu: ``apt-get install fluidsynth fluid-soundfont-gm``,
macOS: ``brew install fluid-synth``), run offline in its fast-render mode: General MIDI semantics, so
channel 10 plays the drum kit and every other channel the program its ``program_change`` chose. FluidSynth
keeps rendering seconds of near-silence after the last note while voices fade; the audio is cut to the
MIDI's length plus at most ``RELEASE_SECONDS`` of release, and peak-normalised. WAV needs only the standard
library; OGG and FLAC are encoded with ``soundfile`` (libsndfile, bundled in its wheels; ``pip install
musenet_hf[app]``).

Every failure a user can fix (no synthesizer, no soundfont, an unknown format, a missing encoder) raises
``AudioError`` with a one-line message; unreadable MIDI raises ``MidiError``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import mido
import numpy as np
from transformers.utils import logging

from ..core.errors import MidiError
from ..core.midi_io import load_midi_file
from ..core.vocabulary import MidiLimits

logger = logging.get_logger(__name__)

AUDIO_FORMATS = ("wav", "ogg", "flac")
SOUNDFONT_ENV = "MUSENET_SOUNDFONT"  # a soundfont path that wins over the system ones
# General MIDI soundfonts where distributions install them, best first: FluidR3 (Debian fluid-soundfont-gm,
# 141 MB, the fuller set), TimGM6mb (Debian timgm6mb-soundfont, 6 MB), then the alternatives' default links
# and the Fedora / Arch / Homebrew locations.
SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/freepats-general-midi.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/default.sf2",
)
SF2_HEADER_BYTES = 12  # "RIFF", a 4-byte size, "sfbk": the SoundFont 2 signature (.sf3 shares it)
DEFAULT_SAMPLE_RATE = 44_100  # CD rate; FluidSynth's samples are mostly 44.1 kHz
RELEASE_SECONDS = 1.0  # audio kept after the MIDI's last event, for notes to ring out
SILENCE_LEVEL = 1e-3  # -60 dBFS: quieter tails count as silence and are cut
PEAK_LEVEL = 0.89  # normalise the peak to -1 dBFS, leaving headroom for lossy encoders
FADE_SECONDS = 0.05  # a short fade at a cut end, so the cut does not click
CHANNELS = 2  # FluidSynth renders stereo
# FluidSynth renders about 100x faster than real time on one core; the timeout only stops a hung process.
RENDER_TIMEOUT_FLOOR = 60.0
RENDER_SPEED_FLOOR = 4.0  # seconds of music per second of wall time assumed for the timeout


class AudioError(RuntimeError):
    """Rendering cannot run or cannot write what was asked; the message is one actionable line."""


def find_fluidsynth() -> str:
    """The path of the ``fluidsynth`` program, or ``AudioError`` saying how to install it."""
    path = shutil.which("fluidsynth")
    if path is None:
        raise AudioError(
            "no synthesizer: the `fluidsynth` program is not on PATH (Debian/Ubuntu: apt-get install fluidsynth "
            "fluid-soundfont-gm; macOS: brew install fluid-synth)"
        )
    return path


def find_soundfont(soundfont: str | os.PathLike | None = None) -> Path:
    """The soundfont to render with.

    Args:
        soundfont (`str` or `os.PathLike`, *optional*, defaults to `None`): an explicit ``.sf2``/``.sf3`` file.
            Without it: ``$MUSENET_SOUNDFONT``, else the first of ``SOUNDFONT_CANDIDATES`` that exists.

    Returns:
        `Path`: an existing soundfont file. Raises ``AudioError`` when the given one is missing or none is found.
    """
    if soundfont is None:
        soundfont = os.environ.get(SOUNDFONT_ENV) or None
    if soundfont is not None:
        path = Path(soundfont).expanduser()
        if not path.is_file():
            raise AudioError(f"soundfont {path} does not exist")
        _check_soundfont(path)
        return path
    for candidate in SOUNDFONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise AudioError(
        "no General MIDI soundfont found (Debian/Ubuntu: apt-get install fluid-soundfont-gm or timgm6mb-soundfont); "
        f"pass --soundfont PATH or set {SOUNDFONT_ENV}"
    )


def _check_soundfont(path: Path) -> None:
    """FluidSynth skips a file that is no soundfont with exit status 0 and renders silence: check first."""
    with open(path, "rb") as fh:
        head = fh.read(SF2_HEADER_BYTES)
    if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise AudioError(f"{path} is not a SoundFont (.sf2/.sf3) file")


def audio_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The audio format for ``path``: ``format`` if given, else the file's extension; one of ``AUDIO_FORMATS``."""
    fmt = (format or Path(path).suffix.lstrip(".")).lower()
    fmt = "ogg" if fmt == "oga" else fmt
    if fmt not in AUDIO_FORMATS:
        raise AudioError(f"cannot write {fmt or 'a file without extension'!r} audio; formats: {', '.join(AUDIO_FORMATS)}")
    return fmt


def midi_seconds(midi: mido.MidiFile) -> float:
    """Length of a MIDI file in seconds (tempo changes applied): the time of its last event."""
    try:
        return float(midi.length)
    except Exception as exc:  # type 2 files and malformed tempo maps
        raise MidiError(getattr(midi, "filename", None) or "<MidiFile>", f"cannot compute its length ({exc})") from None


def render_samples(midi, soundfont: str | os.PathLike | None = None, sample_rate: int = DEFAULT_SAMPLE_RATE,
                   limits: MidiLimits | None = None) -> np.ndarray:
    """Synthesize MIDI to samples.

    Args:
        midi (`str`, `os.PathLike`, `bytes` or `mido.MidiFile`): the music.
        soundfont (`str` or `os.PathLike`, *optional*, defaults to `None`): see ``find_soundfont``.
        sample_rate (`int`, *optional*, defaults to 44100): samples per second.
        limits (`MidiLimits`, *optional*, defaults to `MidiLimits()`): bounds on the file; ``max_seconds``
            bounds the audio too (an hour of stereo float32 at 44.1 kHz is 1.3 GB).

    Returns:
        `np.ndarray` of float32, shape ``[frames, 2]`` (stereo), peak at ``PEAK_LEVEL`` (all zeros for silence),
        ``frames / sample_rate`` between the MIDI's length and that plus ``RELEASE_SECONDS``.
    """
    limits = limits or MidiLimits()
    source = midi
    midi = load_midi_file(midi, limits)
    seconds = midi_seconds(midi)
    if seconds > limits.max_seconds:
        raise MidiError(getattr(midi, "filename", None) or source, f"lasts {seconds:.0f} s, over the limit of {limits.max_seconds:.0f} s")
    program, font = find_fluidsynth(), find_soundfont(soundfont)
    with tempfile.TemporaryDirectory(prefix="musenet-render-") as tmp:
        mid_path, raw_path = Path(tmp) / "in.mid", Path(tmp) / "out.raw"
        midi.save(mid_path)
        # -n -i: no MIDI input, no shell; -F: render offline to a file; raw float32 so loud chords do not clip
        # before normalisation; synth.gain 1.0 instead of 0.2 keeps quiet pieces above float noise.
        cmd = [program, "-n", "-i", "-q", "-F", str(raw_path), "-T", "raw", "-O", "float", "-r", str(int(sample_rate)),
               "-g", "1.0", str(font), str(mid_path)]
        timeout = max(RENDER_TIMEOUT_FLOOR, seconds / RENDER_SPEED_FLOOR)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AudioError(f"fluidsynth did not finish rendering {seconds:.0f} s of music within {timeout:.0f} s") from None
        if proc.returncode != 0 or not raw_path.exists():
            reason = (proc.stderr or proc.stdout).strip().splitlines()
            raise AudioError(f"fluidsynth failed ({reason[-1] if reason else f'exit status {proc.returncode}'})")
        # never read more than the MIDI's length plus the release: FluidSynth's own tail can be long
        keep = int(round((seconds + RELEASE_SECONDS) * sample_rate)) * CHANNELS
        samples = np.fromfile(raw_path, dtype=np.float32, count=keep)
    samples = samples[: len(samples) // CHANNELS * CHANNELS].reshape(-1, CHANNELS)
    return _finish(samples, seconds, sample_rate)


def _finish(samples: np.ndarray, seconds: float, sample_rate: int) -> np.ndarray:
    """Pad to the MIDI's length, cut the silent part of the release, fade a cut end, normalise the peak."""
    music = int(round(seconds * sample_rate))
    if len(samples) < music:
        samples = np.concatenate([samples, np.zeros((music - len(samples), CHANNELS), np.float32)])
    peak = float(np.abs(samples).max(initial=0.0))
    if peak < SILENCE_LEVEL:  # no notes: FluidSynth's float output then holds only rounding noise
        return np.zeros((music, CHANNELS), np.float32)
    samples = samples * (PEAK_LEVEL / peak)
    loud = np.flatnonzero(np.abs(samples[music:]).max(axis=1) > SILENCE_LEVEL)
    end = music + (int(loud[-1]) + 1 if len(loud) else 0)
    cut = end < len(samples)
    samples = samples[:end]
    if cut and end > music:
        fade = min(int(FADE_SECONDS * sample_rate), end - music)
        samples[end - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
    return samples.astype(np.float32, copy=False)


def write_audio(samples: np.ndarray, path: str | os.PathLike, sample_rate: int = DEFAULT_SAMPLE_RATE,
                format: str | None = None) -> Path:
    """Write samples as audio.

    Args:
        samples (`np.ndarray`): float samples in [-1, 1], shape ``[frames, channels]``.
        path (`str` or `os.PathLike`): the file to write (its directory is created).
        sample_rate (`int`, *optional*, defaults to 44100): samples per second.
        format (`str`, *optional*, defaults to the extension of `path`): "wav", "ogg" or "flac".

    Returns:
        `Path`: the file written.
    """
    path, fmt = Path(path), audio_format(path, format)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    if fmt == "wav":
        pcm = np.round(samples * 32767).astype("<i2")
        with wave.open(str(path), "wb") as out:
            out.setnchannels(pcm.shape[1])
            out.setsampwidth(2)
            out.setframerate(int(sample_rate))
            out.writeframes(pcm.tobytes())
        return path
    try:
        import soundfile
    except ImportError:
        raise AudioError(f"writing {fmt} needs the soundfile package (pip install 'musenet_hf[app]'), or write .wav") from None
    subtype = "VORBIS" if fmt == "ogg" else "PCM_16"
    soundfile.write(str(path), samples, int(sample_rate), format=fmt.upper(), subtype=subtype)
    return path


def render_audio(midi, path: str | os.PathLike, soundfont: str | os.PathLike | None = None,
                 sample_rate: int = DEFAULT_SAMPLE_RATE, format: str | None = None) -> Path:
    """Render MIDI to an audio file with FluidSynth.

    Args:
        midi (`str`, `os.PathLike`, `bytes` or `mido.MidiFile`): the music.
        path (`str` or `os.PathLike`): the audio file to write.
        soundfont (`str` or `os.PathLike`, *optional*, defaults to `None`): see ``find_soundfont``.
        sample_rate (`int`, *optional*, defaults to 44100): samples per second.
        format (`str`, *optional*, defaults to the extension of `path`): "wav", "ogg" or "flac".

    Returns:
        `Path`: the file written.
    """
    audio_format(path, format)  # an unsupported format fails before any rendering
    samples = render_samples(midi, soundfont, sample_rate)
    out = write_audio(samples, path, sample_rate, format)
    logger.info("rendered %s: %.2f s", out, len(samples) / sample_rate)
    return out
