"""pipeline("midi-generation") with a tiny random model: every option, the length control, the sliding window."""

from __future__ import annotations

import io

import mido
import numpy as np
import pytest
import torch
from pipeline_fixtures import TINY_CONTEXT, save_tiny_checkpoint
from transformers import pipeline

import musenet_hf
from musenet_hf.core.codec import Header, encode_notes, header_ids
from musenet_hf.core.logits_processors import AllowedVocabHead, allowed_vocab_head, forbidden_event_mask
from musenet_hf.core.midi_io import Note
from musenet_hf.core.pipeline_midi_generation import MidiGenerationPipeline, cut_primer
from musenet_hf.core.sliding_window import trim_to_steps, unfinished_voices

STEP = 0.01  # seconds per wait step


@pytest.fixture(scope="module")
def gen(tiny_model_dir):
    return pipeline("midi-generation", model=str(tiny_model_dir))


def primer_midi(notes=((0.0, 0.5, 60), (0.5, 1.0, 64), (1.0, 1.5, 67), (1.5, 2.0, 72), (2.0, 3.0, 76))) -> mido.MidiFile:
    """A piano line at 120 BPM (480 ticks per beat, so 960 ticks per second)."""
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack([mido.Message("program_change", program=0, time=0)])
    events = sorted([(round(s * 960), 1, p) for s, _, p in notes] + [(round(e * 960), 0, p) for _, e, p in notes])
    last = 0
    for tick, on, pitch in events:
        track.append(mido.Message("note_on", note=pitch, velocity=80 if on else 0, time=tick - last))
        last = tick
    midi.tracks.append(track)
    return midi


def events_of(result, header_len):
    return np.asarray(result["ids"][header_len:-1])


def test_registered_task_loads_the_pipeline_class(gen):
    assert isinstance(gen, MidiGenerationPipeline)
    assert "midi-generation" in __import__("transformers").pipelines.PIPELINE_REGISTRY.get_supported_tasks()


def test_output_dict_and_midi_file(gen):
    out = gen(style="bach", instruments=["piano", "violin"], seconds=2, seed=0)
    assert len(out) == 1
    result = out[0]
    assert set(result) >= {"midi", "ids", "seconds", "notes", "instruments"}
    assert result["ids"][:5] == header_ids(gen.tokenizer.musenet_vocab, Header("bach", [0, 1], 120))
    assert result["ids"][-1] == gen.tokenizer.eos_token_id
    assert set(result["instruments"]) <= {"piano", "violin"}
    buf = io.BytesIO()
    result["midi"].save(file=buf)
    reread = mido.MidiFile(file=io.BytesIO(buf.getvalue()))
    names = {m.name for t in reread.tracks for m in t if m.type == "track_name"}
    programs = {m.program for t in reread.tracks for m in t if m.type == "program_change"}
    assert names == set(result["instruments"])
    assert programs <= {0, 40}  # GM piano and violin
    assert abs(reread.length - result["seconds"]) < 0.02
    assert result["notes"] == len(gen.tokenizer.decode_events(result["ids"]).notes)


def test_tempo_reaches_the_header_and_the_midi_file(gen):
    result = gen(style="waltz", instruments=["harp"], seconds=1, bpm=96, seed=0)[0]
    vocab = gen.tokenizer.musenet_vocab
    assert result["ids"][3] == vocab.tempo_id(96)
    tempos = [m.tempo for t in result["midi"].tracks for m in t if m.type == "set_tempo"]
    assert len(tempos) == 1 and round(mido.tempo2bpm(tempos[0])) == 96


def test_same_seed_same_music_other_seed_other_music(gen):
    kwargs = dict(style="pop", instruments=["piano"], seconds=1.5, num_return_sequences=2)
    a, b, c = gen(seed=3, **kwargs), gen(seed=3, **kwargs), gen(seed=4, **kwargs)
    assert [r["ids"] for r in a] == [r["ids"] for r in b]
    assert [r["ids"] for r in a] != [r["ids"] for r in c]


def test_unseeded_calls_seed_each_call_afresh(gen):
    # the guards draw per call from torch.initial_seed() (the grid guard's tightness of each piece): without a
    # seed, each call must bring its own, or every unseeded call would draw the same tightness
    kwargs = dict(style="pop", instruments=["piano"], seconds=0.5)
    torch.manual_seed(0)
    gen(**kwargs)
    first = torch.initial_seed()
    gen(**kwargs)
    assert torch.initial_seed() != first
    gen(seed=7, **kwargs)
    assert torch.initial_seed() == 7


def test_requested_length_is_reached_exactly(gen):
    for seconds in (0.73, 2.0):
        for result in gen(style="jazz", instruments=["bass", "drums"], seconds=seconds, seed=1, num_return_sequences=2):
            assert abs(result["seconds"] - seconds) <= STEP + 1e-9
            # the clock only stops at the end: no early <eos> without allow_early_end
            assert result["ids"].count(gen.tokenizer.eos_token_id) == 1


def test_strict_instruments_give_only_allowed_families(gen):
    vocab = gen.tokenizer.musenet_vocab
    for result in gen(style="rock", instruments=["guitar", "drums"], seconds=2, seed=0, num_return_sequences=2):
        events = events_of(result, 5)
        families = set(vocab.note_family(events).tolist()) - {-1}
        assert families and families <= {vocab.family_id("guitar"), vocab.family_id("drums")}
        kinds = vocab.kinds(events)
        assert not np.isin(kinds, [vocab.KIND_STYLE, vocab.KIND_INST, vocab.KIND_TEMPO]).any()


def test_loose_instruments_only_suggest(gen):
    vocab = gen.tokenizer.musenet_vocab
    result = gen(style="rock", instruments=["guitar"], seconds=2, seed=0, strict_instruments=False)[0]
    assert result["ids"][2] == vocab.inst_id(vocab.family_id("guitar"))
    # a random model spreads its notes over every family: the header does not constrain it
    families = set(vocab.note_family(events_of(result, 4)).tolist()) - {-1}
    assert len(families) > 1


def test_unknown_names_raise_listing_valid_ones(gen):
    with pytest.raises(ValueError, match="valid styles: unknown, bach"):
        gen(style="polka-metal", seconds=1)
    with pytest.raises(ValueError, match="valid instruments: piano, violin"):
        gen(instruments=["kazoo"], seconds=1)
    with pytest.raises(ValueError, match="valid styles"):
        gen(style={"bach": 0.5, "polka-metal": 0.5}, seconds=1)


def test_bad_lengths_and_managed_arguments_raise(gen):
    with pytest.raises(ValueError, match=r"seconds must be a number in \[0.01, 3600\]"):
        gen(seconds=0)
    with pytest.raises(ValueError, match="pass `seconds` instead"):
        gen(seconds=1, max_new_tokens=10)
    with pytest.raises(ValueError, match="need a primer"):
        gen(seconds=1, primer_seconds=2)


def test_primer_is_kept_at_the_start_in_every_form(gen, tmp_path):
    midi = primer_midi()
    path = tmp_path / "primer.mid"
    midi.save(path)
    vocab = gen.tokenizer.musenet_vocab
    kept, _ = cut_primer(gen.tokenizer.read_score(midi).notes, seconds=1.2)
    expected = encode_notes(kept, vocab, eos=False)
    outputs = [gen(src, style="bach", seconds=1, primer_seconds=1.2, seed=2) for src in (midi, str(path), path.read_bytes())]
    ids = outputs[0][0]["ids"]
    assert all(o[0]["ids"] == ids for o in outputs)  # path, bytes and MidiFile are the same primer
    header = header_ids(vocab, Header("bach", [0], 120))
    assert ids[: len(header) + len(expected)] == header + expected
    assert abs(outputs[0][0]["seconds"] - 2.2) <= STEP + 1e-9  # primer_seconds + seconds
    first = [(n.start, n.pitch) for n in gen.tokenizer.decode_events(ids).notes if n.start < 1.2][:3]
    assert first == [(0.0, 60), (0.5, 64), (1.0, 67)]


def test_primer_voice_order_goes_in_the_header(gen):
    """Legato overlaps of one key favour <voice:fifo>: the marker belongs to the header, which every window keeps."""
    midi = mido.MidiFile(ticks_per_beat=480)  # 960 ticks per second at 120 BPM
    for start, end in ((0, 960), (480, 1440)):
        midi.tracks.append(mido.MidiTrack([
            mido.Message("note_on", note=60, velocity=80, time=start),
            mido.Message("note_off", note=60, time=end - start),
        ]))
    vocab = gen.tokenizer.musenet_vocab
    fifo = vocab.token_to_id["<voice:fifo>"]
    result = gen(midi, style="bach", seconds=3, seed=0)[0]
    header = header_ids(vocab, Header("bach", [0], 120, fifo=True))
    assert result["ids"][: len(header)] == header and result["ids"].count(fifo) == 1
    notes = [(n.start, n.end) for n in gen.tokenizer.decode_events(result["ids"]).notes if n.pitch == 60][:2]
    assert notes == [(0.0, 1.0), (0.5, 1.5)]


def test_primer_notes_takes_only_the_first_notes(gen):
    result = gen(primer_midi(), seconds=0.5, primer_notes=2, seed=0)[0]
    decoded = gen.tokenizer.decode_events(result["ids"])
    assert [(n.start, n.pitch) for n in decoded.notes[:2]] == [(0.0, 60), (0.5, 64)]
    assert abs(result["seconds"] - 1.5) <= STEP + 1e-9  # the two notes end at 1.0 s


def test_strict_primer_in_other_families_is_refused(gen):
    with pytest.raises(ValueError, match="strict_instruments=False"):
        gen(primer_midi(), instruments=["violin"], seconds=1)
    result = gen(primer_midi(), instruments=["violin"], seconds=0.5, strict_instruments=False, primer_seconds=1, seed=0)[0]
    assert "piano" in result["instruments"]


def test_primer_in_one_style_continued_in_another(gen):
    vocab = gen.tokenizer.musenet_vocab
    result = gen(primer_midi(), style="jazz", seconds=0.5, seed=0)[0]
    assert result["ids"][1] == vocab.style_id("jazz")


def test_style_blending_feeds_the_interpolated_style_embedding(gen):
    vocab = gen.tokenizer.musenet_vocab
    table = gen.model.get_input_embeddings().weight.detach()
    expected = 0.25 * table[vocab.style_id("bach")] + 0.75 * table[vocab.style_id("pop")]
    prompts = []
    decoder = gen._decoding_model(None)  # the int8 copy on CPU: its float embeddings equal the model's
    hook = decoder.register_forward_pre_hook(lambda m, a, kw: prompts.append(kw.get("inputs_embeds")), with_kwargs=True)
    try:
        # generate() receives the embeddings as an argument (the lean loop gives the same ids: test_decoding.py)
        blend = gen(style={"bach": 1, "pop": 3}, instruments=["piano"], seconds=1.5, seed=5, lean_decoding=False)[0]
    finally:
        hook.remove()
    assert blend["ids"][1] == vocab.style_id("pop")  # the ids record the dominant style
    assert blend["style"] == {"bach": 1, "pop": 3}
    first = prompts[0]
    assert first is not None and torch.allclose(first[0, 1], expected, atol=1e-6)
    assert torch.allclose(first[0, 0], table[vocab.token_to_id["<bos>"]])
    assert abs(blend["seconds"] - 1.5) <= STEP + 1e-9


def test_single_style_dict_is_that_style(gen):
    kwargs = dict(instruments=["piano"], seconds=1, seed=5)
    assert gen(style={"bach": 1.0}, **kwargs)[0]["ids"] == gen(style="bach", **kwargs)[0]["ids"]
    with pytest.raises(ValueError, match="style weights must be finite numbers >= 0"):
        gen(style={"bach": -1.0, "pop": 2.0}, seconds=1)


def test_sliding_window_goes_past_the_context(gen):
    # a random model writes ~15 tokens per second of music for two instruments: 20 s is ~300 tokens, many windows
    results = gen(style="pop", instruments=["piano", "drums"], seconds=20, seed=0, num_return_sequences=2)
    for result in results:
        assert len(result["ids"]) > 3 * TINY_CONTEXT
        assert abs(result["seconds"] - 20) <= STEP + 1e-9


def test_sliding_window_with_blend_and_static_cache(gen):
    result = gen(style={"bach": 0.3, "jazz": 0.7}, seconds=12, seed=0, cache_implementation="static", window_stride=8)[0]
    assert len(result["ids"]) > 2 * TINY_CONTEXT
    assert abs(result["seconds"] - 12) <= STEP + 1e-9


def test_variations_are_generated_as_one_batch(gen):
    batch_sizes = []
    decoder = gen._decoding_model(None)  # the int8 copy on CPU
    # the input embeddings see every step's ids, in the lean loop and in generate() alike
    hook = decoder.get_input_embeddings().register_forward_pre_hook(lambda m, args: batch_sizes.append(args[0].shape[0]))
    try:
        results = gen(style="folk", seconds=0.3, seed=0, num_return_sequences=3)
    finally:
        hook.remove()
    assert len(results) == 3
    assert len({tuple(r["ids"]) for r in results}) == 3
    assert batch_sizes[0] == 3


def test_progress_bar_and_threads_options_run(gen, capsys):
    before = torch.get_num_threads()
    gen(style="pop", seconds=0.5, seed=0, progress_bar=True, num_threads=1)
    assert torch.get_num_threads() == before
    assert "/0.5 s" in capsys.readouterr().err


@pytest.mark.slow
def test_four_minutes_whatever_the_context(tmp_path):
    """A piece of 4 minutes with a 32-position model (only the window limits how far it can go)."""
    gen = pipeline("midi-generation", model=str(save_tiny_checkpoint(tmp_path, n_positions=32)))
    result = gen(style="ballad", instruments=["flute"], seconds=240, seed=0, top_k=5)[0]
    assert abs(result["seconds"] - 240) <= STEP + 1e-9


def test_allowed_vocab_head_matches_the_masked_full_head(gen):
    vocab = gen.tokenizer.musenet_vocab
    forbidden = forbidden_event_mask(vocab, gen.model.config.vocab_size, [vocab.family_id("piano")])
    full = gen.model.get_output_embeddings()
    hidden = torch.randn(2, 3, gen.model.config.n_embd)
    with torch.no_grad():
        expected = full(hidden).masked_fill(forbidden, float("-inf"))
        torch.testing.assert_close(AllowedVocabHead(full, ~forbidden)(hidden), expected)
    with allowed_vocab_head(gen.model, forbidden):
        assert isinstance(gen.model.get_output_embeddings(), AllowedVocabHead)
    assert gen.model.get_output_embeddings() is full
    decoder = gen._decoding_model(None)  # the model generate runs (the int8 copy on CPU)
    decoder_head = decoder.get_output_embeddings()
    gen(style="pop", instruments=["piano"], seconds=0.5, seed=0)
    assert decoder.get_output_embeddings() is decoder_head  # restored after generating
    assert decoder_head.weight is decoder.get_input_embeddings().weight  # still tied


def test_cut_primer():
    notes = [Note(0.0, 1.0, 0, 60, 80), Note(0.5, 0.7, 0, 62, 80), Note(1.5, 2.0, 0, 64, 80)]
    cut, end = cut_primer(notes, seconds=0.8)
    assert end == 0.8 and [(n.pitch, n.end) for n in cut] == [(60, 0.8), (62, 0.7)]
    assert [n.pitch for n in cut_primer(notes, count=1)[0]] == [60]
    with pytest.raises(ValueError):
        cut_primer(notes, count=-1)


def test_trim_to_steps_shortens_the_crossing_wait():
    vocab = musenet_hf.MuseNetTokenizer().musenet_vocab
    on = vocab.note_on_id(0, 4, 60)
    events = [on, vocab.wait_id(50), on, vocab.wait_id(80), on]
    assert trim_to_steps(events, vocab, 100) == [on, vocab.wait_id(50), on, vocab.wait_id(50)]
    assert trim_to_steps(events, vocab, 50) == [on, vocab.wait_id(50)]
    assert trim_to_steps(events, vocab, 1000) == events


def test_unfinished_voices_end_notes_whose_note_on_left_the_window():
    vocab = musenet_hf.MuseNetTokenizer().musenet_vocab
    on60, on62 = vocab.note_on_id(0, 4, 60), vocab.note_on_id(0, 4, 62)
    events = [on60, on62, vocab.wait_id(10), on60, vocab.wait_id(10)]
    closing = unfinished_voices(events, vocab, before=3)
    skip = vocab.token_to_id["<voice:skip>"]
    assert sorted(closing) == sorted([skip, vocab.note_off_id(0, 60), vocab.note_off_id(0, 62)])
    notes = musenet_hf.core.codec.decode_ids(events + closing + [vocab.wait_id(30)], vocab).notes
    assert sorted((n.pitch, n.start, n.end) for n in notes) == [(60, 0.0, 0.2), (60, 0.1, 0.5), (62, 0.0, 0.2)]
    # first in, first out: the stale voice is the one a note-off ends anyway, no skip needed
    closing = unfinished_voices(events, vocab, before=3, fifo=True)
    assert sorted(closing) == sorted([vocab.note_off_id(0, 60), vocab.note_off_id(0, 62)])
    fifo_events = [vocab.token_to_id["<voice:fifo>"]] + events + closing + [vocab.wait_id(30)]
    notes = musenet_hf.core.codec.decode_ids(fifo_events, vocab).notes
    assert sorted((n.pitch, n.start, n.end) for n in notes) == [(60, 0.0, 0.2), (60, 0.1, 0.5), (62, 0.0, 0.2)]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_pipeline_on_a_gpu(tiny_model_dir):
    gen = pipeline("midi-generation", model=str(tiny_model_dir), device=0)
    vocab = gen.tokenizer.musenet_vocab
    allowed = {vocab.family_id("piano"), vocab.family_id("drums")}
    results = gen(primer_midi(), style={"bach": 0.5, "pop": 0.5}, instruments=["piano", "drums"], seconds=3,
                  primer_seconds=1, seed=0, num_return_sequences=2)
    for result in results:
        assert abs(result["seconds"] - 4) <= STEP + 1e-9
        assert len(result["ids"]) > 2 * TINY_CONTEXT  # the window slid on the GPU too
        assert set(vocab.note_family(events_of(result, 5)).tolist()) - {-1} <= allowed


# --- argument limits: checked before any model work ----------------------------------------------------
@pytest.mark.parametrize(
    "name, over, under",
    [
        ("seconds", 3600.5, 3600.0),
        ("seconds", 0.0, 0.01),
        ("num_return_sequences", 65, 64),
        ("num_return_sequences", 0, 1),
        ("temperature", 100.5, 100.0),
        ("primer_notes", 200_001, 200_000),
        ("top_p", 1.01, 1.0),
    ],
)
def test_argument_just_over_its_range_fails_fast_naming_it(gen, name, over, under):
    from musenet_hf.core.pipeline_midi_generation import ARGUMENT_RANGES, check_argument

    assert check_argument(name, under) == under
    with pytest.raises(ValueError, match=f"{name} must be .* in \\[{ARGUMENT_RANGES[name][0]:g}, {ARGUMENT_RANGES[name][1]:g}\\], got"):
        gen(**{name: over})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seconds": "ten"}, "seconds must be a number"),
        ({"seconds": float("nan")}, "seconds must be a number"),
        ({"seconds": 1e9}, "seconds must be a number in"),
        ({"num_return_sequences": 10**6}, "num_return_sequences must be an integer"),
        ({"num_return_sequences": 2.5}, "num_return_sequences must be an integer"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"primer_notes": -1}, "primer_notes must be an integer"),
        ({"style": {"pop": float("inf")}}, "style weights must be finite"),
        ({"style": {"pop": "a lot"}}, "style weights must be finite"),
    ],
)
def test_absurd_values_and_wrong_types_are_value_errors(gen, kwargs, message):
    with pytest.raises(ValueError, match=message):
        gen(**kwargs)


def test_a_call_just_inside_the_ranges_generates(gen):
    out = gen(seconds=0.5, num_return_sequences=1, temperature=100.0, seed=0)
    assert out[0]["midi"] is not None


# --- the primer shares the per-file limits and time bound (issue 14) ---------------------------------------
def _note_bomb(notes: int = 10_000) -> bytes:
    """``notes`` zero-length notes on one key at tick 0, in running status (the shape of issue 14's bomb)."""
    from bench.fuzz import flood_bytes

    return flood_bytes(notes)


@pytest.mark.parametrize("as_", ["path", "bytes", "MidiFile"])
def test_note_bomb_primer_is_a_midi_error_naming_it_before_any_generation(gen, tmp_path, as_):
    data = _note_bomb()
    path = tmp_path / "bomb.mid"
    path.write_bytes(data)
    primer, name = {"path": (str(path), str(path)), "bytes": (data, f"<{len(data)} bytes>"),
                    "MidiFile": (mido.MidiFile(path), str(path))}[as_]
    # 10,000 notes start in the first 10 ms step: the encoder's onset limit stops it, under the primer's own
    # name, because encoding continues the primer's WorkBudget (whose source it is) instead of a new "<notes>" one
    with pytest.raises(musenet_hf.MidiError, match="over 512 notes start in the 10 ms step 0") as info:
        gen(primer, seconds=1)
    assert info.value.source == name


def test_primer_past_the_size_and_message_limits_fails_before_parsing(gen):
    with pytest.raises(musenet_hf.MidiError, match="over the limit of 1000000"):
        gen(_note_bomb(200_000), seconds=1)  # 1.2 MB: rejected by its size, before it is read
    with pytest.raises(musenet_hf.MidiError, match=r"over 50000 messages \(the message limit\)"):
        gen(_note_bomb(30_000), seconds=1)  # 60,002 messages: stopped while mido parses


def test_primer_reading_runs_under_the_tokenizers_time_bound(tiny_model_dir, tmp_path):
    from musenet_hf import MidiLimits, load_pipeline

    pipe = load_pipeline(tiny_model_dir)
    pipe.tokenizer.musenet_vocab.config.limits = MidiLimits(max_cpu_seconds=0.0)  # every file is out of time
    # 2,000 notes: the clock is read once per 1,024 messages, so a file this long meets at least one check
    primer_midi([(0.01 * i, 0.01 * i + 0.5, 40 + i % 40) for i in range(2000)]).save(tmp_path / "primer.mid")
    with pytest.raises(musenet_hf.MidiError, match=r"primer.mid: took over 0 s of CPU time \(the per-file time limit\)"):
        pipe(str(tmp_path / "primer.mid"), seconds=1)
