"""``evaluate`` end to end on a tiny random model and tiny real fixtures; the report files; the CLI."""

import json
import math
import re

import pytest
from corpus_fixtures import write_band, write_song

from musenet_hf.core.midi_io import Note
from musenet_hf.evaluation.evaluate import (
    MIN_MATCHED_CLIPS,
    REFERENCE_MATCHES,
    Case,
    RealPiece,
    Reference,
    evaluate,
    lasts,
    load_cases,
    load_reference,
    reference_clips,
)
from musenet_hf.evaluation.report import write_report

SECONDS = 3.0


def real_folder(root):
    """Eight short diatonic piano tunes (0.25 s notes at 120 BPM) standing in for real music."""
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    for i in range(8):
        tune = [scale[(i + k * (1 + i % 3)) % 8] for k in range(24)]
        write_song(root / f"tune{i}.mid", tune, bpm=120)
    return root


@pytest.fixture(scope="module")
def evaluated(tiny_model_dir, tmp_path_factory):  # noqa: F811
    ref = real_folder(tmp_path_factory.mktemp("real"))
    result = evaluate(str(tiny_model_dir), ref, cases=[Case("pop", ["piano"])], pieces=2, seconds=SECONDS, seed=0,
                      reference_style="pop", likelihood_pieces=4, primers=1, progress_bar=False)
    return result


def test_likelihood_and_speed_figures(evaluated):
    lik = evaluated.likelihood
    assert lik["pieces"] == 4 and set(lik["per_style"]) == {"pop"}
    for who in ("model", "bigram"):
        assert lik[who]["bits_per_note"] > lik[who]["bits_per_token"] > 0
        assert math.isfinite(lik[who]["bits_per_second"]) and lik[who]["bits_per_second"] > 0
    # a random model knows nothing: it spends more bits than a bigram fitted on the real tunes
    assert lik["model"]["bits_per_token"] > lik["bigram"]["bits_per_token"]
    speed = evaluated.speed
    assert speed["notes_per_second"] > 0 and speed["music_seconds_per_second"] > 0
    assert speed["estimate"]["estimate_seconds"] > 0


def test_random_model_scores_clearly_worse_than_real_music(evaluated):
    case = evaluated.cases[0]
    assert case["real_pieces"] == 4 and len(case["pieces"]) == 2
    real = evaluated.real_reference["pop"]["degeneracy"]
    generated = case["degeneracy"]
    # Real tunes hold no note past their own 99.9th percentile; random ids leave notes sounding to the end.
    assert real["held_past_real_share_mean"] <= 0.01
    assert generated["held_past_real_share_mean"] > 0.2
    by_name = {c["name"]: c for c in case["comparison"]}
    for name in ("polyphony", "pitch_range", "scale_consistency"):
        assert by_name[name]["generated_vs_real"] < by_name[name]["real_vs_real"] - 0.3, name
        # ...and below what two real tunes in their place reach (the noise floor of 2 pieces)
        assert by_name[name]["generated_vs_real"] < by_name[name]["real_sample_vs_real"], name
    overall = evaluated.overall
    assert "polyphony" in overall["noise_floor_shortfall_max"]
    assert overall["noise_floor_shortfall_max"].keys() <= overall["overlap_shortfall_max"].keys()
    assert overall["overlap_shortfall_mean"] > overall["noise_floor_shortfall_mean"]


def test_primer_continuity_and_style_adherence_are_reported(evaluated):
    (primer,) = evaluated.primer_continuity
    assert primer["style"] == "pop" and primer["primer_key"]
    assert evaluated.style_adherence["skipped"]  # one style: nothing to tell apart


def test_report_files_and_json_hold_every_markdown_number(evaluated, tmp_path):
    files = write_report(evaluated, tmp_path / "report")
    for key in ("json", "md", "histograms_pop__piano", "rolls_pop"):
        assert files[key].exists() and files[key].stat().st_size > 0, key
    data = json.loads(files["json"].read_text())
    md = files["md"].read_text()
    assert data == evaluated.to_dict()
    known = set()

    def collect(obj):
        if isinstance(obj, dict):
            for v in obj.values():
                collect(v)
        elif isinstance(obj, list):
            for v in obj:
                collect(v)
        elif isinstance(obj, bool) or obj is None:
            return
        elif isinstance(obj, (int, float)):
            from musenet_hf.evaluation.report import _fmt

            known.update({_fmt(float(obj)), _fmt(obj), str(obj)})
        elif isinstance(obj, str):
            known.update(re.findall(r"\d+(?:\.\d+)?", obj))

    collect(data)
    rows = [line for line in md.splitlines() if line.startswith("|") and not line.startswith("|---")]
    numbers = []
    for line in rows:
        for cell in [c.strip() for c in line.strip("|").split("|")][1:]:  # value cells: the first names the row
            numbers += re.findall(r"-?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?", cell)
    assert len(numbers) > 40
    missing = [n for n in numbers if n not in known]
    assert not missing, missing


def test_reference_from_a_built_corpus(tmp_path, tokenizer):
    from musenet_hf.data.corpus import build_corpus

    for i in range(6):
        write_song(tmp_path / "src" / "folk" / f"s{i}.mid", [60 + i, 62, 64, 65, 67 - i], bpm=100)
        write_band(tmp_path / "src" / "band" / f"b{i}.mid", bars=2 + i)
    build_corpus([tmp_path / "src"], tmp_path / "corpus", tokenizer, styles={"src/folk": "folk", "src/band": "rock"},
                 validation_fraction=0.0, test_fraction=0.5)
    ref = load_reference(tmp_path / "corpus", tokenizer)
    pieces = ref.train + ref.test
    assert len(pieces) == 12 and ref.test and ref.train
    assert {p.style for p in pieces} == {"folk", "rock"}
    band = next(p for p in pieces if p.style == "rock")
    assert {tokenizer.instruments[n.family] for n in band.notes} == {"violin", "bass", "drums"}


BAND = ["piano", "bass", "drums"]


def band_piece(style: str, families: list[int], name: str, late: int | None = None) -> RealPiece:
    """Eight seconds of quarter notes on each family; ``late`` (a family) only enters after 6 s."""
    notes = [Note(t * 0.5, t * 0.5 + (0.0 if f == 2 else 0.4), f, 40 + 12 * f, 90)
             for f in families for t in range(16) if f != late or t >= 12]
    return RealPiece(style, notes, 120.0, [], name)


def test_reference_clips_match_the_instruments_then_widen(tmp_path):
    n = MIN_MATCHED_CLIPS
    test = [band_piece("pop", [0], f"pop-piano-{i}") for i in range(n)] + [band_piece("pop", [0, 1, 2], "pop-band")]
    train = ([band_piece("rock", [0, 1, 2], f"rock-band-{i}") for i in range(n - 1)]
             + [band_piece("rock", [0, 1, 2], "rock-late-bass", late=1)])  # bass enters after the clip
    ref = Reference(train, test, BAND, "fixture")

    clips, rule = reference_clips(ref, Case("pop", ["piano"]), BAND, seconds=4.0)
    assert rule == "pop, exactly piano" and len(clips) == n
    assert all({note.family for note in c.notes} == {0} for c in clips)
    assert max(note.end for c in clips for note in c.notes) <= 4.0 + 1e-9  # clipped

    # 1 pop band and n-1 rock bands with bass inside 4 s: too few for the style, enough in any style
    clips, rule = reference_clips(ref, Case("pop", BAND), BAND, seconds=4.0)
    assert rule == "any style, exactly piano + bass + drums"
    assert sorted(c.name for c in clips) == sorted(["pop-band"] + [f"rock-band-{i}" for i in range(n - 1)])
    # the late bass plays within 8 s: it is a band clip then, and the pop style has one
    clips, _ = reference_clips(ref, Case("pop", BAND), BAND, seconds=8.0)
    assert "rock-late-bass" in {c.name for c in clips}

    # no jazz anywhere with a matching band, and no jazz piece at all: the style rule, empty
    clips, rule = reference_clips(ref, Case("jazz", ["bass"]), BAND, seconds=4.0)
    assert rule == "jazz, any instruments" and clips == []
    clips, rule = reference_clips(ref, Case("pop", BAND), BAND, seconds=4.0, match="style")
    assert rule == "pop, any instruments" and len(clips) == n + 1  # every pop test piece
    with pytest.raises(ValueError, match="reference_match"):
        reference_clips(ref, Case("pop", BAND), BAND, seconds=4.0, match="genre")


def test_reference_clips_take_pieces_that_last_the_clip(tmp_path):
    n = MIN_MATCHED_CLIPS
    lasting = [band_piece("folk", [0], f"long-{i}") for i in range(n)]  # 8 s of music each
    short = [RealPiece("folk", [note for note in p.notes if note.start < 3.0], 120.0, [], f"short-{i}")
             for i, p in enumerate(lasting)]  # 3 s, then nothing
    assert lasts(lasting[0], 8.0) and not lasts(short[0], 8.0) and lasts(short[0], 3.0)
    ref = Reference([], short + lasting, BAND, "fixture")
    for match in REFERENCE_MATCHES:
        clips, _ = reference_clips(ref, Case("folk", ["piano"]), BAND, seconds=8.0, match=match)
        assert sorted(c.name for c in clips) == sorted(p.name for p in lasting), match
    # too few pieces last the clip: the short ones are taken too, rather than widening or coming back empty
    ref = Reference([], short + lasting[: n - 1], BAND, "fixture")
    for match in REFERENCE_MATCHES:
        clips, rule = reference_clips(ref, Case("folk", ["piano"]), BAND, seconds=8.0, match=match)
        assert len(clips) == 2 * n - 1 and rule.startswith("folk"), match


def test_cases_file(tmp_path):
    path = tmp_path / "cases.json"
    path.write_text(json.dumps([{"style": "jazz", "instruments": ["piano", "bass"]}]))
    assert load_cases(path) == [Case("jazz", ["piano", "bass"])]
    assert len(load_cases(None)) == 9
    path.write_text(json.dumps({"style": "jazz"}))
    with pytest.raises(ValueError, match="JSON list"):
        load_cases(path)


@pytest.mark.slow
def test_cli_writes_the_report(tiny_model_dir, tmp_path, capsys):  # noqa: F811
    from musenet_hf.cli import main

    ref = real_folder(tmp_path / "real")
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps([{"style": "rock", "instruments": ["guitar", "bass", "drums"]}]))
    out = tmp_path / "out"
    assert main(["evaluate", str(tiny_model_dir), "--reference", str(ref), "--reference-style", "rock", "--cases", str(cases),
                 "--pieces", "1", "--seconds", "2", "--likelihood-pieces", "0", "--primers", "0", "--no-progress",
                 "--temperature", "0.9", "--top-k", "12", "--no-guard", "register", "--no-guard", "drum", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "estimated generation time" in printed and "busiest single drum" in printed
    data = json.loads((out / "report.json").read_text())
    assert data["cases"][0]["case"] == {"style": "rock", "instruments": ["guitar", "bass", "drums"]}
    # the sampling flags and the guard switches reach generation
    assert data["settings"]["generate_kwargs"] == {"temperature": 0.9, "top_k": 12, "register_guard": False, "drum_guard": False}
    assert (out / "rolls_rock.png").exists()
