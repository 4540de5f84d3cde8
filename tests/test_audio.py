"""Rendering MIDI to audio with the real FluidSynth and a real GM soundfont (skipped, with the reason, without them)."""

from __future__ import annotations

import wave

import numpy as np
import pytest
from midi_fixtures import make_midi, to_bytes

from musenet_hf import MidiError
from musenet_hf.cli import main as cli_main
from musenet_hf.listen.audio import (
    RELEASE_SECONDS,
    AudioError,
    find_soundfont,
    render_audio,
    render_samples,
    write_audio,
)

RATE = 22_050  # half the default: the same checks at half the work


def band():
    """3 s: piano (program 0), bass (program 33) and drums on channel 10; the last note ends at 3.0 s."""
    return make_midi([
        (0.0, 1.0, 0, 60, 100, 0), (1.0, 2.0, 0, 64, 100, 0), (2.5, 3.0, 0, 67, 90, 0),
        (0.0, 2.0, 1, 36, 100, 33),
        *[(t * 0.5, t * 0.5 + 0.1, 9, 36 if t % 2 == 0 else 38, 110) for t in range(5)],
    ])


def spectrum(midi, soundfont) -> np.ndarray:
    mono = render_samples(midi, soundfont, RATE).mean(axis=1)[:RATE]
    magnitude = np.abs(np.fft.rfft(mono, n=RATE))
    return magnitude / np.linalg.norm(magnitude)


def test_wav_has_the_midis_length_and_sound(gm_soundfont, tmp_path):
    path = render_audio(band(), tmp_path / "band.wav", soundfont=gm_soundfont, sample_rate=RATE)
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, RATE)
        seconds = w.getnframes() / RATE
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2) / 32768
    assert 3.0 <= seconds <= 3.0 + RELEASE_SECONDS
    # every second of the music sounds (drums play until 2.1 s, the piano from 2.5 s)
    for second in range(3):
        chunk = pcm[second * RATE:(second + 1) * RATE]
        assert np.sqrt((chunk ** 2).mean()) > 0.01, f"second {second} is silent"
    assert 0.85 < np.abs(pcm).max() < 0.9  # normalised to -1 dBFS


def test_drums_sound_as_drums_and_programs_as_their_instruments(gm_soundfont):
    snare_on_drum_channel = spectrum(make_midi([(0, 0.5, 9, 38, 100)]), gm_soundfont)
    same_key_on_piano = spectrum(make_midi([(0, 0.5, 0, 38, 100, 0)]), gm_soundfont)
    piano = spectrum(make_midi([(0, 0.5, 0, 60, 100, 0)]), gm_soundfont)
    violin = spectrum(make_midi([(0, 0.5, 0, 60, 100, 40)]), gm_soundfont)
    assert spectrum(make_midi([(0, 0.5, 0, 60, 100, 0)]), gm_soundfont) @ piano > 0.999  # rendering is deterministic
    assert snare_on_drum_channel @ same_key_on_piano < 0.9
    assert piano @ violin < 0.9


@pytest.mark.parametrize("fmt", ["ogg", "flac"])
def test_compressed_formats_decode_to_the_same_length(gm_soundfont, tmp_path, fmt):
    soundfile = pytest.importorskip("soundfile", reason="ogg/flac need the soundfile package (the app extra)")
    path = render_audio(to_bytes(band()), tmp_path / f"band.{fmt}", soundfont=gm_soundfont, sample_rate=RATE)
    info = soundfile.info(str(path))
    assert info.format == fmt.upper() and info.samplerate == RATE
    assert 3.0 <= info.duration <= 3.0 + RELEASE_SECONDS


def test_silence_stays_silent_and_is_as_long_as_the_midi(gm_soundfont):
    import mido

    midi = make_midi([])
    midi.tracks[0].append(mido.MetaMessage("end_of_track", time=960))  # 1 s of nothing at 120 BPM
    samples = render_samples(midi, gm_soundfont, RATE)
    assert samples.shape == (RATE, 2) and not samples.any()


def test_clear_errors(gm_soundfont, tmp_path, monkeypatch):
    with pytest.raises(AudioError, match="soundfont .*nope.sf2 does not exist"):
        find_soundfont(tmp_path / "nope.sf2")
    with pytest.raises(AudioError, match="cannot write 'mp3'"):
        render_audio(band(), tmp_path / "x.mp3", soundfont=gm_soundfont)
    (tmp_path / "bad.mid").write_bytes(b"MThd garbage")
    with pytest.raises(MidiError, match="bad.mid"):
        render_samples(tmp_path / "bad.mid", gm_soundfont)
    with pytest.raises(AudioError, match="bad.mid is not a SoundFont"):  # fluidsynth itself would render silence
        render_samples(band(), tmp_path / "bad.mid")
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without the synthesizer
    with pytest.raises(AudioError, match="no synthesizer.*apt-get install fluidsynth"):
        render_samples(band(), gm_soundfont)
    with pytest.raises(AudioError, match="cannot write 'aiff'"):
        write_audio(np.zeros((10, 2)), tmp_path / "x.wav", format="aiff")


def test_render_command(gm_soundfont, tmp_path, capsys, monkeypatch):
    band().save(tmp_path / "a.mid")
    (tmp_path / "b.mid").write_bytes(b"not midi")
    rc = cli_main(["render", str(tmp_path / "a.mid"), str(tmp_path / "b.mid"), "--soundfont", str(gm_soundfont),
                   "--format", "flac", "--out", str(tmp_path / "audio"), "--sample-rate", str(RATE)])
    out, err = capsys.readouterr()
    assert rc == 2  # one file failed, the other was still rendered
    assert (tmp_path / "audio" / "a.flac").stat().st_size > 1000 and "a.flac" in out
    assert "b.mid" in err and "Traceback" not in err
    assert cli_main(["render", str(tmp_path / "a.mid"), "--soundfont", str(tmp_path / "none.sf2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.sf2 does not exist" in err
