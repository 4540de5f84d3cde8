"""Piano roll and histograms: real PNG files, with what the legend and lanes promise."""

import matplotlib.image

from musenet_hf import MuseNetTokenizer
from musenet_hf.core.midi_io import Note
from musenet_hf.evaluation.plots import FAMILY_COLOURS, plot_histograms, plot_piano_roll

INSTRUMENTS = MuseNetTokenizer().instruments
PIANO, BASS, DRUMS = (INSTRUMENTS.index(f) for f in ("piano", "bass", "drums"))


def band_notes():
    return ([Note(i * 0.5, i * 0.5 + 0.4, PIANO, 60 + i % 12, 80) for i in range(20)]
            + [Note(i, i + 0.9, BASS, 40, 80) for i in range(10)]
            + [Note(i * 0.25, i * 0.25, DRUMS, 36 + 2 * (i % 2), 100) for i in range(40)])


def test_piano_roll_png_has_legend_drum_lane_and_title(tmp_path):
    path = tmp_path / "rolls" / "band.png"
    fig = plot_piano_roll(band_notes(), INSTRUMENTS, title="pop: piano, bass, drums", path=path)
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 600
    assert fig._suptitle.get_text() == "pop: piano, bass, drums"
    pitched, drums = fig.axes
    assert [t.get_text() for t in pitched.get_legend().get_texts()] == ["piano (20)", "bass (10)", "drums (40)"]
    assert pitched.get_xlabel() == "" and drums.get_xlabel() == "time (s)"
    assert [t.get_text() for t in drums.get_yticklabels()] == ["36", "38"]  # one row per drum that plays
    assert len(pitched.patches) == 30  # one bar per pitched note, none for drums
    colours = {p.get_facecolor()[:3] for p in pitched.patches}
    assert len(colours) == 2  # piano and bass differ
    # the piano colour is visible in the saved picture
    r, g, b = (int(FAMILY_COLOURS["piano"][i:i + 2], 16) / 255 for i in (1, 3, 5))
    assert ((abs(pixels[..., 0] - r) < 0.1) & (abs(pixels[..., 1] - g) < 0.1) & (abs(pixels[..., 2] - b) < 0.1)).any()


def test_piano_roll_without_drums_and_into_given_axes(tmp_path):
    from matplotlib.figure import Figure

    fig = plot_piano_roll([Note(0, 1, PIANO, 60, 80)], INSTRUMENTS)
    assert len(fig.axes) == 1
    host = Figure()
    ax = host.subplots()
    assert plot_piano_roll(band_notes(), INSTRUMENTS, title="shared", ax=ax, seconds=12) is host
    assert ax.get_title() == "shared" and ax.get_xlim() == (0, 12)
    assert ax.get_ylim()[0] < 40 - 2  # the drum rows sit below the lowest pitch (bass, 40) and its margin


def test_histograms_png(tmp_path):
    path = tmp_path / "h.png"
    fig = plot_histograms({"polyphony": [1, 2, 3], "pitch_range": [10, 20]},
                          {"polyphony": [2, 3, 4], "pitch_range": [float("nan"), 30]}, path=path)
    assert path.stat().st_size > 1000
    assert [a.get_title() for a in fig.axes if a.get_visible()] == ["polyphony", "pitch_range"]
