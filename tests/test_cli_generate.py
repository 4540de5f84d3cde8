"""``musenet-hf generate / styles / instruments`` against a tiny checkpoint."""

from __future__ import annotations

import mido
import pytest

from musenet_hf.cli import main as cli_main
from musenet_hf.commands.generate import parse_style


def test_generate_writes_one_file_per_variation(tiny_model_dir, tmp_path, capfd):
    out = tmp_path / "out"
    rc = cli_main([
        "generate", "--model", str(tiny_model_dir), "--style", "bach", "--instruments", "piano,violin",
        "--seconds", "2", "--variations", "2", "--seed", "0", "--top-k", "50", "--out", str(out),
    ])
    assert rc == 0
    files = sorted(out.glob("*.mid"))
    assert [f.name for f in files] == ["musenet-1.mid", "musenet-2.mid"]
    captured = capfd.readouterr()  # file descriptors: transformers' log handler holds the real stderr
    assert all(str(f) in captured.out for f in files)
    assert "/2.0 s" in captured.err  # the progress bar counts seconds of music
    # the sliding window passes generate() its attention mask: no transformers warning mid-run
    assert "attention mask" not in captured.err.lower() and "attention_mask" not in captured.err
    for f in files:
        midi = mido.MidiFile(f)
        assert abs(midi.length - 2.0) < 0.02
        assert {m.name for t in midi.tracks for m in t if m.type == "track_name"} <= {"piano", "violin"}


def test_generate_with_primer_and_blend(tiny_model_dir, tmp_path):
    primer = mido.MidiFile()
    primer.tracks.append(mido.MidiTrack([
        mido.Message("note_on", note=60, velocity=80, time=0), mido.Message("note_off", note=60, time=960),
    ]))
    primer.save(tmp_path / "p.mid")
    rc = cli_main([
        "generate", "--model", str(tiny_model_dir), "--primer", str(tmp_path / "p.mid"), "--primer-seconds", "1",
        "--style", "bach:0.5,pop:0.5", "--seconds", "1", "--out", str(tmp_path), "--name", "x",
    ])
    assert rc == 0
    assert abs(mido.MidiFile(tmp_path / "x-1.mid").length - 2.0) < 0.02


def test_generate_reports_bad_input_without_a_traceback(tiny_model_dir, tmp_path, capsys):
    assert cli_main(["generate", "--model", str(tiny_model_dir), "--style", "nope", "--out", str(tmp_path)]) == 2
    assert "valid styles" in capsys.readouterr().err
    (tmp_path / "bad.mid").write_bytes(b"not midi")
    assert cli_main(["generate", "--model", str(tiny_model_dir), "--primer", str(tmp_path / "bad.mid"), "--out", str(tmp_path)]) == 2
    assert "bad.mid" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.mid"))[1:]  # only the bad primer itself


@pytest.mark.parametrize("listing, first", [("styles", "unknown"), ("instruments", "piano")])
def test_listings(tiny_model_dir, capsys, listing, first):
    assert cli_main([listing, "--model", str(tiny_model_dir)]) == 0
    lines = capsys.readouterr().out.split()
    assert lines[0] == first and len(lines) > 5


def test_parse_style():
    assert parse_style("bach") == "bach"
    assert parse_style("bach:0.25,pop:0.75") == {"bach": 0.25, "pop": 0.75}
    with pytest.raises(ValueError, match="name:weight"):
        parse_style("bach:x")


def test_generate_with_audio_and_roll(tiny_model_dir, gm_soundfont, tmp_path, capsys):
    import wave

    import matplotlib.image

    rc = cli_main([
        "generate", "--model", str(tiny_model_dir), "--style", "pop", "--instruments", "piano,drums", "--seconds", "2",
        "--seed", "0", "--out", str(tmp_path), "--audio", "wav", "--roll", "--soundfont", str(gm_soundfont),
    ])
    assert rc == 0
    with wave.open(str(tmp_path / "musenet-1.wav")) as w:
        assert 2.0 <= w.getnframes() / w.getframerate() <= 3.0  # the 2 s piece plus at most 1 s of release
    pixels = matplotlib.image.imread(tmp_path / "musenet-1.png")
    assert pixels.shape[1] > 600 and pixels.std() > 0.01  # a drawn picture, not a blank one
    assert "musenet-1.wav" in capsys.readouterr().out


def test_generate_without_soundfont_fails_before_generating(tiny_model_dir, tmp_path, capsys):
    rc = cli_main(["generate", "--model", str(tiny_model_dir), "--out", str(tmp_path), "--audio", "ogg",
                   "--soundfont", str(tmp_path / "missing.sf2")])
    assert rc == 2 and "missing.sf2 does not exist" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_generate_no_quantize_decodes_with_the_float_weights(tiny_model_dir, tmp_path):
    from transformers import pipeline

    from musenet_hf import MuseNetTokenizer

    rc = cli_main(["generate", "--model", str(tiny_model_dir), "--seconds", "2", "--seed", "0", "--no-quantize",
                   "--out", str(tmp_path)])
    assert rc == 0
    fp32 = pipeline("midi-generation", model=str(tiny_model_dir))(seconds=2.0, seed=0, quantize=False)[0]["midi"]
    fp32.save(tmp_path / "fp32.mid")
    tok = MuseNetTokenizer()
    assert tok.read_score(tmp_path / "musenet-1.mid").notes == tok.read_score(tmp_path / "fp32.mid").notes


def test_generate_kv_cache_picks_the_decoding_cache(tiny_model_dir, tmp_path):
    from transformers import pipeline

    from musenet_hf import MuseNetTokenizer

    tok = MuseNetTokenizer()
    pipe = pipeline("midi-generation", model=str(tiny_model_dir))
    notes = {}
    for name in ("float32", "bfloat16"):
        rc = cli_main(["generate", "--model", str(tiny_model_dir), "--seconds", "4", "--seed", "0", "--kv-cache", name,
                       "--out", str(tmp_path), "--name", name])
        assert rc == 0
        pipe(seconds=4.0, seed=0, kv_cache_dtype=name)[0]["midi"].save(tmp_path / f"{name}-direct.mid")
        notes[name] = tok.read_score(tmp_path / f"{name}-1.mid").notes
        assert notes[name] == tok.read_score(tmp_path / f"{name}-direct.mid").notes
    assert notes["float32"] != notes["bfloat16"]


def test_generate_no_guard_switches_one_guard_off(tiny_model_dir, tmp_path):
    import json
    import shutil

    from musenet_hf import MuseNetTokenizer
    from musenet_hf.core.guards import CONFIG_KEY, MusicStatistics

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config[CONFIG_KEY] = MusicStatistics({"piano": {"soft": 0.3, "hard": 0.6}}).to_dict()
    (model / "config.json").write_text(json.dumps(config))
    tok = MuseNetTokenizer()

    def longest(*flags):
        out = tmp_path / "_".join(flags or ("on",))
        assert cli_main(["generate", "--model", str(model), "--instruments", "piano", "--seconds", "8", "--seed", "0",
                         "--out", str(out), *flags]) == 0
        return max(n.end - n.start for n in tok.read_score(out / "musenet-1.mid").notes)

    assert longest() <= 0.6 + 0.02
    assert longest("--no-guard", "note", "--no-guard", "density") > 0.6 + 0.02
