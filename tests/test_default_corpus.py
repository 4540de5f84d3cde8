"""The default-corpus recipe's pieces: labels, instrument mapping, WAD extraction, ABC and MMA rendering, and the
CPU-time limit of a score conversion."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import struct
import time

import mido
import pytest
from corpus_fixtures import write_song

from musenet_hf.core.tokenization_musenet import MuseNetTokenizer
from musenet_hf.core.vocabulary import DEFAULT_STYLES
from recipes import default_corpus as dc


def test_every_corpus_style_is_a_default_style():
    assert set(dc.default_styles()) <= set(DEFAULT_STYLES)
    assert dc.style_map()["music21-scores/beethoven"] == "beethoven"


def test_every_source_the_recipe_stages_has_a_licence_that_reaches_the_corpus_card(tmp_path):
    from musenet_hf.data.corpus import build_corpus
    from recipes.build_default_corpus import ALL_SOURCES

    assert set(ALL_SOURCES) <= set(dc.LICENCES)
    inputs = [write_song(tmp_path / name / "a.mid", [60 + k, 64 + k, 67 + k]).parent for k, name in enumerate(ALL_SOURCES)]
    card = build_corpus(inputs, tmp_path / "corpus", MuseNetTokenizer(), licences=dc.LICENCES).card
    assert {row["name"]: row["licence"] for row in card["sources"]} == {name: dc.LICENCES[name] for name in ALL_SOURCES}


@pytest.mark.parametrize(
    "name, program",
    [("Violin I", 40), ("Violino 2", 40), ("Viola", 41), ("Violoncello", 42), ("Cello", 42), ("Contrabass", 43),
     ("Flauto traverso", 73), ("Corno I", 60), ("Soprano", None), ("Canto", None), ("Bass", None), (None, None)],
)
def test_part_names_map_to_gm_programs(name, program):
    assert dc.part_program(name) == program


def test_string_quartet_parts_land_in_violin_and_cello_families():
    fams = MuseNetTokenizer().musenet_vocab
    got = {name: fams.families[int(fams.program_family[dc.part_program(name)])] for name in ("Violin II", "Viola", "Violoncello")}
    assert got == {"Violin II": "violin", "Viola": "violin", "Violoncello": "cello"}


def test_groove_families():
    lib = dc.MMA_LIB
    assert dc.groove_family(lib / "stdlib" / "bossanova.mma") == "latin"
    assert dc.groove_family(lib / "stdlib" / "jazzwaltz.mma") == "waltz"
    assert dc.groove_family(lib / "stdlib" / "bigband.mma") == "swing"
    assert dc.groove_family(lib / "zoom" / "metal1.mma") == "rock"
    assert dc.groove_family(lib / "casio" / "serenade.mma") == dc.GROOVE_DEFAULT_FAMILY


def _wad(path, lumps):
    """A WAD file holding the given (name, bytes) lumps."""
    header_size = dc.WAD_HEADER.size
    data, entries, pos = b"", b"", header_size
    for name, body in lumps:
        entries += dc.WAD_ENTRY.pack(pos, len(body), name.encode().ljust(8, b"\0"))
        data += body
        pos += len(body)
    path.write_bytes(dc.WAD_HEADER.pack(b"IWAD", len(lumps), header_size + len(data)) + data + entries)


def test_wad_music_extracts_midi_lumps(tmp_path, monkeypatch):
    song = write_song(tmp_path / "s.mid", [60, 64, 67]).read_bytes()
    _wad(tmp_path / "a.wad", [("MAP01", b"x" * 10), ("D_RUNNIN", song), ("D_OLD", dc.MUS_MAGIC + b"\0" * 12)])
    assert dc.wad_music(tmp_path / "a.wad") == {"D_RUNNIN": song, "D_OLD": dc.MUS_MAGIC + b"\0" * 12}
    monkeypatch.setattr(dc, "FREEDOOM_WADS", [tmp_path / "a.wad"])
    assert dc.stage_freedoom(tmp_path / "out") == {"midi": 1, "mus_skipped": 1}
    assert mido.MidiFile(tmp_path / "out" / "a_D_RUNNIN.mid").length > 0
    (tmp_path / "bad.wad").write_bytes(struct.pack("<4sii", b"JUNK", 0, 12))
    with pytest.raises(ValueError, match="not a WAD"):
        dc.wad_music(tmp_path / "bad.wad")


@pytest.mark.skipif(shutil.which("abc2midi") is None, reason="abc2midi (Debian package abcmidi) is not installed")
def test_abc_tunes_become_one_midi_each_with_the_chosen_program(tmp_path):
    abc = tmp_path / "src" / "tunes.abc"
    abc.parent.mkdir()
    abc.write_text("X:1\nT:One\nM:4/4\nL:1/8\nK:G\nGABc d2e2|\n\nX:2\nT:Two\nM:3/4\nL:1/8\nK:D\nDEF GAB|\n")
    assert dc._abc_to_midi(abc, tmp_path / "out", tmp_path / "scratch", program=40) == 2
    made = sorted((tmp_path / "out").glob("*.mid"))
    assert [m.name for m in made] == ["tunes_1.mid", "tunes_2.mid"]
    assert list(abc.parent.iterdir()) == [abc]  # nothing written next to the source
    tok = MuseNetTokenizer()
    assert {tok.instruments[n.family] for n in tok.read_score(made[0]).notes} == {"violin"}


@pytest.mark.skipif(shutil.which("mma") is None or not dc.MMA_LIB.is_dir(), reason="mma is not installed")
def test_a_groove_renders_to_a_band(tmp_path):
    out = tmp_path / "g.mid"
    assert dc._render_mma(dc.groove_chart("Swing", dc.MMA_LIB / "stdlib" / "swing.mma", 0), out)
    tok = MuseNetTokenizer()
    score = tok.read_score(out)
    assert {"drums", "bass"} <= {tok.instruments[n.family] for n in score.notes}
    assert score.seconds == pytest.approx(16 * 4 * 60 / dc.GROOVE_TEMPO, rel=0.1)


def _compute(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    os._exit(0)


def _wait(seconds: float) -> None:
    time.sleep(seconds)
    os._exit(0)


def _outcomes(children: dict, cpu_seconds: float) -> dict:
    """Polls ``start_limited`` children, as ``stage_scores`` does, until each has ended: name -> (over, exit code)."""
    out = {}
    while len(out) < len(children):
        for name, (proc, started) in children.items():
            if name not in out:
                done, over = dc.finished(proc, started, cpu_seconds)
                if done:
                    out[name] = (over, proc.exitcode)
        time.sleep(0.05)
    return out


def test_a_conversion_is_limited_in_cpu_time_not_wall_time():
    ctx = multiprocessing.get_context("fork")
    children = {"computes": dc.start_limited(ctx, _compute, (30.0,), 1.0),
                "waits": dc.start_limited(ctx, _wait, (1.5,), 1.0)}  # past 1 s of wall time, not of CPU time
    outcomes = _outcomes(children, 1.0)
    assert outcomes["computes"][0] == "conversion took over 1 s of CPU time"
    assert outcomes["waits"] == (None, 0)  # on a busy machine a long wait is no reason to lose a piece
    # a child that only waits is stopped all the same, past WALL_LIMIT_FACTOR times the limit in wall time
    hangs = _outcomes({"hangs": dc.start_limited(ctx, _wait, (60.0,), 0.1)}, 0.1)["hangs"]
    assert hangs[0] == f"conversion took over {dc.WALL_LIMIT_FACTOR * 0.1:g} s"
