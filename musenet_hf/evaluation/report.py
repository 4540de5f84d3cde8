"""An ``EvaluationResult`` as files: ``report.json`` (every figure), ``report.md`` (the tables) and PNGs.

The Markdown is rendered from the same dict that is written to ``report.json`` (``result.to_dict()``), so every
number it shows is in the JSON. Pictures: per case, real-vs-generated histograms of every statistic; per
style, the piano rolls of a few generated pieces under a real one of that style (one its first case was
compared with).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from matplotlib.figure import Figure

from .evaluate import EvaluationResult
from .plots import plot_histograms, plot_piano_roll, save_figure
from .statistics import SCALAR_STATISTICS, piece_statistics

ROLLS_PER_STYLE = 3  # generated pieces drawn under the real one
ROLL_ROW_INCHES = 2.6


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_")


def render_markdown(data: dict) -> str:
    """The report's Markdown from ``EvaluationResult.to_dict()``."""
    lines = [f"# Evaluation of `{data['model']}`", "", f"Reference: {data['reference']}.", ""]
    s = data["settings"]
    lines += [f"{len(s['cases'])} cases x {s['pieces_per_case']} pieces x {_fmt(s['seconds'])} s, seed {s['seed']}.", ""]
    lines += summary_table(data)
    lik = data.get("likelihood") or {}
    if lik.get("model"):
        lines += ["", "## Likelihood (reference test pieces)", "",
                  f"{lik['pieces']} pieces, the first {lik['window_tokens']} tokens of each.", "",
                  "| style | model bits/token | model bits/note | model bits/s | bigram bits/token | bigram bits/note | bigram bits/s |",
                  "|---|---|---|---|---|---|---|"]
        rows = [("all", {"model": lik["model"], "bigram": lik["bigram"]})] + list(lik["per_style"].items())
        for style, r in rows:
            m, b = r["model"], r["bigram"]
            lines.append(f"| {style} | {_fmt(m['bits_per_token'])} | {_fmt(m['bits_per_note'])} | {_fmt(m['bits_per_second'])} "
                         f"| {_fmt(b['bits_per_token'])} | {_fmt(b['bits_per_note'])} | {_fmt(b['bits_per_second'])} |")
    elif lik.get("skipped"):
        lines += ["", f"Likelihood skipped: {lik['skipped']}."]
    for case in data["cases"]:
        lines += ["", f"## {case['name']}", ""]
        if case["comparison"]:
            rule = case.get("reference_rule", f"{case['case']['style']}, any instruments")
            lines += [f"Against {case['real_pieces']} real clips ({rule}). Overlap: histogram overlapping area (1 = same spread); "
                      "real sample: as many real clips as were generated against the other real clips (mean of "
                      "the draws; the most a generator of real-like pieces would reach).", "",
                      "| statistic | real-vs-real overlap | real sample vs real | generated-vs-real overlap | real median "
                      "| real IQR | generated median | gap / IQR |",
                      "|---|---|---|---|---|---|---|---|"]
            for c in case["comparison"]:
                lines.append(f"| {c['name']} | {_fmt(c['real_vs_real'])} | {_fmt(c.get('real_sample_vs_real'))} "
                             f"| {_fmt(c['generated_vs_real'])} "
                             f"| {_fmt(c['real_median'])} | {_fmt(c['real_iqr'])} | {_fmt(c['generated_median'])} "
                             f"| {_fmt(c['gap_in_iqr'])} |")
        else:
            lines.append("No real pieces of this style in the reference: no comparison.")
        d, a = case["degeneracy"], case["adherence"]
        lines += ["", "| degeneracy and control | value |", "|---|---|",
                  f"| notes held past the family's real 99.9th percentile | {_fmt(d.get('held_past_real'))} |",
                  f"| busiest single drum, hits/s (max) | {_fmt(d.get('busiest_drum_hits_per_second_max'))} |",
                  f"| silences over 4 s | {_fmt(d.get('silences_over_4s'))} |",
                  f"| token-loop share (mean) | {_fmt(d.get('loop_share_mean'))} |",
                  f"| notes outside the asked instruments (mean share) | {_fmt(a['outside_share_mean'])} |",
                  f"| pieces with an asked instrument under 5 notes | {a['pieces_with_silent_asked']} of {a['pieces']} |",
                  f"| generation wall seconds | {_fmt(case['generation_wall_seconds'])} |"]
    sa = data.get("style_adherence") or {}
    lines += ["", "## Style adherence", ""]
    if sa.get("skipped"):
        lines.append(f"Classifier not run: {sa['skipped']}.")
    elif sa:
        lines += ["| pieces | accuracy | chance |", "|---|---|---|",
                  f"| real, held out ({sa['real_heldout_pieces']}) | {_fmt(sa['real_heldout_accuracy'])} | {_fmt(sa['chance'])} |",
                  f"| generated ({sa['generated_pieces']}) | {_fmt(sa['generated_accuracy'])} | {_fmt(sa['chance'])} |",
                  "", f"Styles: {', '.join(sa['styles'])}; trained on {sa['train_pieces']} real pieces."]
    if data.get("primer_continuity"):
        lines += ["", "## Primer continuity", "",
                  "| primer | style | inter-onset ratio | density ratio | primer key | continuation key | continuation in primer key |",
                  "|---|---|---|---|---|---|---|"]
        for p in data["primer_continuity"]:
            lines.append(f"| {p['piece']} | {p['style']} | {_fmt(p['inter_onset_ratio'])} | {_fmt(p['density_ratio'])} "
                         f"| {p['primer_key']} | {p['continuation_key']} | {_fmt(p['continuation_in_primer_key'])} |")
    sp = data.get("speed") or {}
    if sp:
        lines += ["", "## Speed", "", "| measure | value |", "|---|---|",
                  f"| estimated run (min) | {_fmt(sp['estimate']['estimate_minutes'])} |",
                  f"| generation wall seconds | {_fmt(sp.get('generation_wall_seconds'))} |",
                  f"| notes per second | {_fmt(sp.get('notes_per_second'))} |",
                  f"| tokens per second | {_fmt(sp.get('tokens_per_second'))} |",
                  f"| seconds of music per second | {_fmt(sp.get('music_seconds_per_second'))} |"]
    return "\n".join(lines) + "\n"


def summary_table(data: dict) -> list[str]:
    """The headline table (the quality issue's measures), as Markdown lines."""
    o = data.get("overall") or {}
    if not o:
        return []
    lines = ["| measure | value |", "|---|---|",
             f"| pitched notes held > 8 s (overall) | {_fmt(o['long_note_percent'])} % |",
             f"| pitched notes held > 8 s (worst piece) | {_fmt(o['long_note_percent_max_piece'])} % |",
             f"| pieces where an asked instrument plays < 5 notes | {o['pieces_with_silent_asked']} of {o['pieces']} |",
             f"| busiest single drum, hits/s (worst piece) | {_fmt(o['busiest_drum_hits_per_second_max'])} |",
             f"| notes per second (median piece) | {_fmt(o['notes_per_second_median'])} |"]
    for name, gap in o.get("solo_pop_piano_gap_in_iqr", {}).items():
        lines.append(f"| solo pop piano vs real, {name}: median gap / real IQR | {_fmt(gap)} |")
    floors = o.get("noise_floor_shortfall_max", {})
    for name, short in o.get("overlap_shortfall_max", {}).items():
        floor = f" (real clips in their place: {_fmt(floors[name])})" if name in floors else ""
        lines.append(f"| {name}: real-vs-real minus generated-vs-real overlap (worst case) | {_fmt(short)}{floor} |")
    if "overlap_shortfall_mean" in o:
        floor = o.get("noise_floor_shortfall_mean")
        lines.append(f"| overlap shortfall, mean over cases and statistics | {_fmt(o['overlap_shortfall_mean'])}"
                     + (f" (real clips in their place: {_fmt(floor)})" if floor is not None else "") + " |")
    return lines


def write_report(result: EvaluationResult, out: str | Path) -> dict[str, Path]:
    """Writes report.json, report.md, ``histograms_<case>.png`` and ``rolls_<style>.png`` into ``out``.

    Args:
        result (`EvaluationResult`): from ``evaluate``.
        out (`str` or `Path`): the folder (created).

    Returns:
        `dict[str, Path]`: ``"json"``, ``"md"`` and one entry per PNG.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = result.to_dict()
    files = {"json": out / "report.json", "md": out / "report.md"}
    files["json"].write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    files["md"].write_text(render_markdown(data), encoding="utf-8")
    seconds = result.settings["seconds"]
    instruments = result.instruments
    for case in result.cases:
        clips = result.real_clips.get(case["name"])
        if clips:
            stats = [piece_statistics(p.notes, instruments, seconds, p.bpm) for p in clips]
            real_values = {k: [s.scalars()[k] for s in stats] for k in SCALAR_STATISTICS}
            gen = {k: [p[k] for p in case["pieces"]] for k in SCALAR_STATISTICS}
            name = f"histograms_{_slug(case['name'])}"
            plot_histograms(real_values, gen, title=f"{case['name']}: real (blue) vs generated (red)",
                            path=out / f"{name}.png")
            files[name] = out / f"{name}.png"
    for style in sorted({g.case.style for g in result.generated}):
        pieces = [g for g in result.generated if g.case.style == style][:ROLLS_PER_STYLE]
        # the real roll: a clip the style's first case was compared with
        real = next((p for p in result.real_clips.get(pieces[0].case.name, []) if p.notes), None)
        rows = ([("real: " + (real.name or style), real.notes)] if real else []) + [
            (f"generated: {g.case.name}", g.notes) for g in pieces]
        fig = Figure(figsize=(12, ROLL_ROW_INCHES * len(rows)), layout="constrained")
        axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
        for ax, (title, notes) in zip(axes, rows):
            plot_piano_roll(notes, instruments, title=title, ax=ax, seconds=seconds)
        fig.suptitle(f"{style}: a real piece and generated ones, {seconds:g} s each")
        name = f"rolls_{_slug(style)}"
        save_figure(fig, out / f"{name}.png")
        files[name] = out / f"{name}.png"
    return files
