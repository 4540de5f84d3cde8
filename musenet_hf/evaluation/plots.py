"""Pictures a person reads at a glance: the piano roll of a piece, and real-vs-generated histograms.

``plot_piano_roll`` is the project's only piano-roll drawing (the evaluation report, the app and
``generate --roll`` all call it). Figures are drawn with matplotlib's object API on the Agg backend, so
nothing needs a display and nothing touches pyplot's global state.
"""

from __future__ import annotations

import math
import os

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from ..core.midi_io import Note

DRUM_FAMILY = "drums"
# One fixed colour per family name, so a family looks the same in every picture (matplotlib's tab10).
FAMILY_COLOURS = {
    "piano": "#1f77b4", "violin": "#ff7f0e", "cello": "#8c564b", "bass": "#2ca02c", "guitar": "#d62728",
    "flute": "#17becf", "clarinet": "#9467bd", "trumpet": "#bcbd22", "harp": "#e377c2", "drums": "#7f7f7f",
}
FALLBACK_COLOURS = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")  # families outside the defaults
MIN_NOTE_SECONDS = 0.03  # notes shorter than this are drawn this long, so they stay visible
DRUM_LANE_RATIO = 0.25  # height of the drum lane relative to the pitched lane
PITCH_MARGIN = 2  # semitones of space above and below the played range
ROLL_SIZE_INCHES = (12.0, 5.0)
ROLL_DPI = 100


def family_colour(name: str) -> str:
    """The colour ``name`` is drawn in (a fixed one for the default families, a stable fallback otherwise)."""
    if name in FAMILY_COLOURS:
        return FAMILY_COLOURS[name]
    return FALLBACK_COLOURS[sum(map(ord, name)) % len(FALLBACK_COLOURS)]


def plot_piano_roll(notes: list[Note], instruments: list[str], title: str | None = None,
                    path: str | os.PathLike | None = None, ax=None, seconds: float | None = None) -> Figure:
    """Draws a piece as a piano roll: pitch over time, one colour per instrument, drums in a lane of their own.

    Pitched notes are bars from start to end at their MIDI pitch; drum hits are ticks in a separate lane
    below, at their GM drum pitch. The legend names every family that plays, with its note count.

    Args:
        notes (`list[Note]`): the piece, times in seconds, ``family`` indexing ``instruments``
            (e.g. ``tokenizer.decode_events(ids).notes`` or ``tokenizer.read_score(path).notes``).
        instruments (`list[str]`): family names, e.g. ``tokenizer.instruments``.
        title (`str`, *optional*): the figure title, e.g. ``"pop: piano, bass, drums"``.
        path (`str` or `os.PathLike`, *optional*): where to save a PNG (folders are created).
        ax (`matplotlib.axes.Axes`, *optional*): draw the pitched notes into this axes (the drum lane then
            shares it, drums below the lowest pitch); default: a new figure with two lanes.
        seconds (`float`, *optional*): the time axis' end in seconds; default: the last note's end.

    Returns:
        `matplotlib.figure.Figure`: the figure drawn into (``ax.figure`` when ``ax`` was given).
    """
    drum = instruments.index(DRUM_FAMILY) if DRUM_FAMILY in instruments else -1
    pitched = [n for n in notes if n.family != drum]
    drums = [n for n in notes if n.family == drum]
    end = seconds if seconds is not None else max((max(n.end, n.start) for n in notes), default=1.0)
    end = max(end, MIN_NOTE_SECONDS)
    if ax is None:
        fig = Figure(figsize=ROLL_SIZE_INCHES, dpi=ROLL_DPI, layout="constrained")
        if drums:
            top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1.0, DRUM_LANE_RATIO])
        else:
            top, bottom = fig.subplots(1, 1), None
    else:
        fig, top, bottom = ax.figure, ax, None
    counts: dict[int, int] = {}
    for n in notes:
        counts[n.family] = counts.get(n.family, 0) + 1

    lo = min((n.pitch for n in pitched), default=60) - PITCH_MARGIN
    hi = max((n.pitch for n in pitched), default=72) + PITCH_MARGIN
    for n in pitched:
        top.add_patch(Rectangle((n.start, n.pitch - 0.4), max(n.end - n.start, MIN_NOTE_SECONDS), 0.8,
                                color=family_colour(instruments[n.family]), alpha=0.8, linewidth=0))
    top.set_xlim(0, end)
    top.set_ylim(lo, hi)
    top.set_ylabel("pitch (MIDI)")
    if drums:
        # Each drum that plays gets a row of its own, lowest GM pitch at the bottom, labelled with its pitch.
        kinds = sorted({n.pitch for n in drums})
        row = {p: i for i, p in enumerate(kinds)}
        if bottom is None:  # one shared axes: the drum rows go below the pitched notes
            base = lo - len(kinds)
            top.set_ylim(base - 1, hi)
        else:
            base = 0
            bottom.set_ylim(-1, len(kinds))
            bottom.set_yticks(range(len(kinds)), [str(p) for p in kinds], fontsize="x-small")
            bottom.set_ylabel("drum (GM)")
        (bottom or top).scatter([n.start for n in drums], [base + row[n.pitch] for n in drums], marker="|", s=40,
                                color=family_colour(DRUM_FAMILY), linewidths=1.2)
    (bottom or top).set_xlabel("time (s)")
    handles = [
        Line2D([], [], color=family_colour(instruments[f]), linewidth=6, label=f"{instruments[f]} ({counts[f]})")
        for f in sorted(counts)
    ]
    if handles:
        top.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.8)
    if title:
        if ax is None:
            fig.suptitle(title)
        else:
            top.set_title(title)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_histograms(real: dict[str, list[float]], generated: dict[str, list[float]], title: str | None = None,
                    path: str | os.PathLike | None = None, bins: int = 20) -> Figure:
    """One small histogram per statistic, real and generated overlaid (each normalised to a density).

    Args:
        real (`dict[str, list[float]]`): statistic name -> one value per real piece.
        generated (`dict[str, list[float]]`): statistic name -> one value per generated piece.
        title (`str`, *optional*): the figure title.
        path (`str` or `os.PathLike`, *optional*): where to save a PNG.
        bins (`int`, *optional*, defaults to 20): bins over the range both sets span.

    Returns:
        `matplotlib.figure.Figure`
    """
    names = [k for k in real if k in generated]
    cols = min(4, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig = Figure(figsize=(3.2 * cols, 2.4 * rows), dpi=ROLL_DPI, layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, name in zip(axes, names):
        r = np.asarray([v for v in real[name] if np.isfinite(v)], dtype=float)
        g = np.asarray([v for v in generated[name] if np.isfinite(v)], dtype=float)
        both = np.concatenate([r, g])
        if len(both):
            lo, hi = float(both.min()), float(both.max())
            edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
            if len(r):
                ax.hist(r, bins=edges, density=True, alpha=0.5, color="#1f77b4", label="real")
            if len(g):
                ax.hist(g, bins=edges, density=True, alpha=0.5, color="#d62728", label="generated")
        ax.set_title(name, fontsize="small")
        ax.tick_params(labelsize="x-small")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    if names:
        axes[0].legend(fontsize="x-small")
    if title:
        fig.suptitle(title)
    if path is not None:
        save_figure(fig, path)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> None:
    """Saves ``fig`` as a PNG at ``path``, creating its folder."""
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, format="png")
