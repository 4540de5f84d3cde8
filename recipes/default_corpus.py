"""The sources of the default training corpus, staged as folders of MIDI with style labels.

Everything here comes from packages a fresh machine can install (``pip install music21``;
``apt-get install abcmidi mma freedoom openttd-openmsx``) plus the POP909 folder:

- ``music21-folk``: the ABC collections of music21's corpus, converted with ``abc2midi`` (one MIDI per
  tune; the fiddle collections are written for violin, the song collections keep the default piano);
- ``music21-scores``: music21's MusicXML / Humdrum scores, written to MIDI by music21 with GM programs
  taken from the part names (violin / viola / cello ...), repeats stripped where music21 cannot
  expand them, each conversion time-boxed;
- ``freedoom``: the music lumps of the Freedoom WAD files (all of them Standard MIDI Files);
- ``openmsx``: OpenTTD's music set (MIDI files as shipped);
- ``mma-grooves``: every groove of MMA's style libraries rendered over a chord chart, labelled by
  groove family (rock, swing, latin, ...); ``mma-examples``: MMA's example songs rendered.

``stage_all`` writes them under one folder; ``style_map`` and ``LICENCES`` give the labels and the
licence of each source for ``corpus.build_corpus``.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

APT_PACKAGES = {"abc2midi": "abcmidi", "mma": "mma"}  # command -> Debian package
FREEDOOM_WADS = [Path("/usr/share/games/doom/freedoom1.wad"), Path("/usr/share/games/doom/freedoom2.wad")]
OPENMSX_DIR = Path("/usr/share/games/openttd/baseset/openmsx")
MMA_LIB = Path("/usr/share/mma/lib")
MMA_EXAMPLES = Path("/usr/share/doc/mma/examples")
SUBPROCESS_TIMEOUT = 60  # seconds for one abc2midi / mma call; real ones take well under a second

LICENCES = {
    "music21-folk": "music21 corpus (encodings redistributed with permission; see music21/corpus/license.txt; some non-commercial)",
    "music21-scores": "music21 corpus (public-domain works; encodings redistributed with permission; some non-commercial)",
    "pop909": "MIT (POP909 dataset)",
    "freedoom": "BSD-3-Clause (Freedoom licence)",
    "openmsx": "GPL-2.0 (OpenMSX)",
    "mma-grooves": "GPL-2.0+ (MMA style library)",
    "mma-examples": "GPL-2.0+ (MMA examples)",
}

# --- music21's ABC collections ---------------------------------------------------------------------
# collection folder -> (staged sub-folder, style, GM program written into each tune or None for abc2midi's piano)
FIDDLE_PROGRAM = 40  # these collections were published as fiddle music
ABC_COLLECTIONS = {
    "essenFolksong": ("essen", "folk", None),
    "oneills1850": ("oneills", "irish", FIDDLE_PROGRAM),
    "ryansMammoth": ("ryans", "fiddle", FIDDLE_PROGRAM),
    "airdsAirs": ("aird", "scottish", FIDDLE_PROGRAM),
    "miscFolk": ("miscfolk", "folk", None),
    "josquin": ("josquin", "renaissance", None),
}
ESSEN_CHINESE = ("han1", "han2")  # Essen's Han Chinese songs get their own style

# --- music21's scores --------------------------------------------------------------------------------
SCORE_COLLECTIONS = {
    "bach": "bach", "palestrina": "palestrina", "monteverdi": "monteverdi", "beethoven": "beethoven",
    "mozart": "mozart", "haydn": "haydn", "schubert": "schubert", "trecento": "trecento", "ciconia": "trecento",
    "luca": "renaissance", "lusitano": "renaissance", "corelli": "baroque", "cpebach": "baroque", "handel": "baroque",
    "chopin": "romantic", "schumann_clara": "romantic", "schumann_robert": "romantic", "beach": "romantic",
    "verdi": "romantic", "weber": "romantic",
}
SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn")
# Part-name patterns -> GM program (0-based), most specific first: "violoncello" must not read as "violin".
PART_PROGRAMS = [
    (r"cello|violoncell|\bvc\b", 42),
    (r"contrabass|double ?bass|kontrabass|violone", 43),
    (r"viola|\bva\b|bratsche", 41),
    (r"violin|violino|\bvn\b|\bvl\b", 40),
    (r"harp", 46),
    (r"guitar|lute|liuto|theorbo", 24),
    (r"flute|flauto|piccolo|recorder", 73),
    (r"oboe|cor anglais|english horn", 68),
    (r"clarinet", 71),
    (r"bassoon|fagott", 70),
    (r"horn|corno", 60),
    (r"trumpet|tromba|clarino", 56),
    (r"trombone", 57),
    (r"organ|organo", 19),
    (r"harpsichord|cembalo|continuo", 6),
    (r"piano|klavier|clavier|keyboard", 0),
]

# --- MMA groove families: library file-name keywords -> style, first match wins ----------------------
GROOVE_FAMILIES = [
    ("waltz", "waltz"), ("march", "march"), ("polka", "country"),
    ("bossa", "latin"), ("samba", "latin"), ("salsa", "latin"), ("mambo", "latin"), ("rhumba", "latin"),
    ("rumba", "latin"), ("chacha", "latin"), ("cha-cha", "latin"), ("tango", "latin"), ("merengue", "latin"),
    ("bolero", "latin"), ("son", "latin"), ("calypso", "latin"), ("beguine", "latin"), ("latin", "latin"),
    ("afro", "latin"), ("cuba", "latin"), ("cumbia", "latin"), ("reggae", "latin"), ("ska", "latin"),
    ("lfusion", "latin"), ("guaracha", "latin"), ("habanera", "latin"), ("bachata", "latin"), ("conga", "latin"),
    ("blues", "blues"), ("boogie", "blues"), ("boggie", "blues"), ("shuffle", "blues"),
    ("country", "country"), ("bluegrass", "country"), ("western", "country"), ("hillcountry", "country"),
    ("zydeco", "country"), ("bluefolk", "country"),
    ("swing", "swing"), ("bigband", "swing"), ("dixie", "swing"), ("charleston", "swing"), ("foxtrot", "swing"),
    ("quickstep", "swing"), ("jive", "swing"), ("softshoe", "swing"), ("strut", "swing"), ("ragtime", "swing"),
    ("jazz", "jazz"), ("bebop", "jazz"), ("evans", "jazz"),
    ("ballad", "ballad"), ("lullaby", "ballad"), ("hymn", "ballad"), ("spiritual", "ballad"),
    ("funk", "funk"), ("soul", "funk"), ("rb", "funk"), ("disco", "dance"), ("trance", "dance"),
    ("house", "dance"), ("techno", "dance"), ("dance", "dance"), ("hiphop", "dance"),
    ("metal", "rock"), ("punk", "rock"), ("hrk", "rock"), ("beat8", "rock"), ("beat16", "rock"), ("cntry", "country"),
    ("rnb", "funk"), ("r+b", "funk"), ("hip-hop", "dance"), ("rave", "dance"), ("dnb", "dance"), ("trip", "dance"),
    ("ambient", "dance"), ("bald", "ballad"),
    ("rock", "rock"), ("twist", "rock"), ("8beat", "rock"), ("16beat", "rock"), ("boneym", "dance"), ("pop", "pop"),
    ("folk", "folk"), ("showtune", "pop"), ("broadway", "pop"),
]
GROOVE_EXCLUDE = ("metronome", "none")  # click tracks and the empty groove: no music to learn
GROOVE_DEFAULT_FAMILY = "pop"  # libraries named after a keyboard maker's preset number, with no genre in the name
# Chord charts the grooves are rendered over, one per groove in turn (chord per bar): pop, jazz, minor, blues.
CHORD_CHARTS = [
    "C G Am F C G F C C G Am F Dm G C C",
    "Dm7 G7 Cmaj7 Cmaj7 Em7 A7 Dm7 G7 Dm7 G7 Cmaj7 A7 Dm7 G7 C6 C6",
    "Am Am Dm Dm E7 E7 Am Am F F Dm E7 Am Dm E7 Am",
    "F7 Bb7 F7 F7 Bb7 Bb7 F7 F7 C7 Bb7 F7 C7 F7 Bb7 F7 C7",
]
GROOVE_TEMPO = 112  # BPM of the rendered charts; grooves sound natural across roughly 90-140


def style_map() -> dict[str, str]:
    """Folder (relative to the staging folder's sources) -> style, for every staged collection."""
    styles = {f"music21-folk/{sub}": style for sub, style, _ in ABC_COLLECTIONS.values()}
    styles["music21-folk/essen-han"] = "chinese"
    styles.update({f"music21-scores/{name}": style for name, style in SCORE_COLLECTIONS.items()})
    styles.update({"pop909": "pop", "freedoom": "game", "openmsx": "game"})
    styles.update({f"mma-grooves/{fam}": fam for fam in {f for _, f in GROOVE_FAMILIES} | {GROOVE_DEFAULT_FAMILY}})
    styles.update({f"mma-examples/{fam}": fam for fam in {f for _, f in GROOVE_FAMILIES} | {GROOVE_DEFAULT_FAMILY}})
    return styles


def default_styles() -> list[str]:
    """Every style label the default corpus uses, in a fixed order (for the tokenizer's style list)."""
    return sorted(set(style_map().values()))


# --- tools ---------------------------------------------------------------------------------------
def missing_tools() -> list[str]:
    """Debian packages the recipe needs that are not installed."""
    missing = [pkg for cmd, pkg in APT_PACKAGES.items() if shutil.which(cmd) is None]
    if not all(w.is_file() for w in FREEDOOM_WADS):
        missing.append("freedoom")
    if not OPENMSX_DIR.is_dir():
        missing.append("openttd-openmsx")
    return missing


def install_tools(packages: list[str]) -> None:
    """``apt-get install -y`` the packages (needs root; on other machines run the printed command yourself)."""
    subprocess.run(["apt-get", "install", "-y", *packages], check=True)


# --- ABC -----------------------------------------------------------------------------------------
def music21_corpus_dir() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def stage_abc(dest: Path) -> dict:
    """Every tune of the ABC collections -> ``dest/<collection>/<file>_<X>.mid``; returns counts per collection.

    abc2midi writes next to its input, so each .abc is copied into a scratch folder first (never run
    inside site-packages).
    """
    counts = {}
    root = music21_corpus_dir()
    with tempfile.TemporaryDirectory() as tmp:
        for folder, (sub, _, program) in ABC_COLLECTIONS.items():
            for abc in sorted((root / folder).glob("*.abc")):
                target = sub + ("-han" if abc.stem in ESSEN_CHINESE else "")
                n = _abc_to_midi(abc, dest / target, Path(tmp) / abc.stem, program)
                counts[target] = counts.get(target, 0) + n
    return counts


def _abc_to_midi(abc: Path, dest: Path, scratch: Path, program: int | None) -> int:
    scratch.mkdir(parents=True)
    text = abc.read_text(encoding="latin-1")
    if program is not None:  # after each key line (the end of a tune header), choose the instrument
        text = re.sub(r"(?m)^(K:.*)$", lambda m: f"{m.group(1)}\n%%MIDI program {program}", text)
    (scratch / "tunes.abc").write_text(text, encoding="latin-1")
    subprocess.run(["abc2midi", "tunes.abc", "-quiet", "-silent"], cwd=scratch, capture_output=True, timeout=SUBPROCESS_TIMEOUT)
    dest.mkdir(parents=True, exist_ok=True)
    made = sorted(scratch.glob("tunes*.mid"))
    for mid in made:
        shutil.move(mid, dest / f"{abc.stem}_{mid.stem[len('tunes'):]}.mid")
    shutil.rmtree(scratch)
    return len(made)


# --- music21 scores ------------------------------------------------------------------------------
def score_files(limit_per_collection: dict[str, int] | None = None) -> list[tuple[str, Path]]:
    """(collection, score file) for every staged collection; a limit keeps an evenly spread subset."""
    root = music21_corpus_dir()
    out = []
    for name in SCORE_COLLECTIONS:
        files = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in SCORE_SUFFIXES)
        # a work encoded twice (movement1.krn and movement1.mxl): keep the first suffix of SCORE_SUFFIXES
        rank = {suffix: i for i, suffix in enumerate(SCORE_SUFFIXES)}
        best: dict[Path, Path] = {}
        for f in sorted(files, key=lambda f: rank[f.suffix.lower()]):
            best.setdefault(f.with_suffix(""), f)
        files = sorted(best.values())
        limit = (limit_per_collection or {}).get(name)
        if limit and len(files) > limit:
            files = [files[round(i * len(files) / limit)] for i in range(limit)]
        out += [(name, f) for f in files]
    return out


def part_program(part_name: str | None) -> int | None:
    """GM program for a part from its name (``Violin I`` -> 40, ``Violoncello`` -> 42); None if it names no instrument."""
    name = (part_name or "").lower()
    for pattern, program in PART_PROGRAMS:
        if re.search(pattern, name):
            return program
    return None


def convert_score(src: Path, out: Path) -> None:
    """Write one score as MIDI with instruments from its part names; strips repeats music21 cannot expand."""
    from music21 import converter, instrument, repeat, spanner

    score = converter.parse(str(src))
    for part in getattr(score, "parts", []):
        program = part_program(part.partName) if part.partName else None
        if program is None:
            current = part.getInstrument(returnDefault=False)
            program = part_program(getattr(current, "instrumentName", None))
        if program is None:
            continue  # a voice or an unnamed part: music21's own choice (the default family, piano)
        for old in list(part.recurse().getElementsByClass(instrument.Instrument)):
            part.remove(old, recurse=True)
        part.insert(0, instrument.instrumentFromMidiProgram(program))
    try:
        score.write("midi", fp=str(out))
    except repeat.ExpanderException:
        for measure in score.recurse().getElementsByClass("Measure"):
            measure.leftBarline = None
            measure.rightBarline = None
        for mark in list(score.recurse().getElementsByClass((repeat.RepeatExpression, spanner.RepeatBracket))):
            score.remove(mark, recurse=True)
        score.write("midi", fp=str(out))


# A conversion's limit is CPU time, so that a build's pieces do not depend on how busy the machine is (with a
# wall-clock limit of 120 s, a build on a loaded machine lost two Beethoven quartets that an idle one kept).
# Past this many times the limit in wall-clock time a child is killed all the same: one that waits without
# computing would never reach a CPU limit.
WALL_LIMIT_FACTOR = 10


def _convert_child(src: str, out: str) -> None:
    try:
        convert_score(Path(src), Path(out))
    except Exception:
        os._exit(3)  # the parent reads the exit code; the traceback of a broken score is not useful
    os._exit(0)


def _limited_child(target, args: tuple, cpu_seconds: float) -> None:
    """Run ``target(*args)`` in a child whose CPU time is bounded: the kernel stops it with SIGXCPU at
    ``cpu_seconds`` (rounded up to whole seconds, the limit's unit)."""
    limit = max(1, math.ceil(cpu_seconds))
    resource.setrlimit(resource.RLIMIT_CPU, (limit, limit + 1))
    target(*args)


def start_limited(ctx, target, args: tuple, cpu_seconds: float):
    """Start ``target(*args)`` in a forked process limited to ``cpu_seconds`` of CPU time (``finished``
    reads how it ended).

    Args:
        ctx: a ``multiprocessing`` context ("fork").
        target (`callable`), args (`tuple`): what the child runs; it reports failure by its exit code.
        cpu_seconds (`float`): the child's CPU time limit.

    Returns:
        (process, start time on ``time.monotonic``).
    """
    proc = ctx.Process(target=_limited_child, args=(target, args, cpu_seconds))
    proc.start()
    return proc, time.monotonic()


def finished(proc, started: float, cpu_seconds: float) -> tuple[bool, str | None]:
    """Whether a ``start_limited`` child has ended (it is killed past ``WALL_LIMIT_FACTOR`` x ``cpu_seconds``
    of wall-clock time), and the limit it went over, if any (otherwise ``proc.exitcode`` says how it ended)."""
    if proc.is_alive():
        if time.monotonic() - started < WALL_LIMIT_FACTOR * cpu_seconds:
            return False, None
        proc.kill()
        proc.join()
        return True, f"conversion took over {WALL_LIMIT_FACTOR * cpu_seconds:g} s"
    proc.join()
    if proc.exitcode == -signal.SIGXCPU:
        return True, f"conversion took over {cpu_seconds:g} s of CPU time"
    return True, None


def stage_scores(dest: Path, num_proc: int, timeout: float, limits: dict[str, int] | None = None) -> tuple[dict, list[dict]]:
    """Convert the scores in ``num_proc`` forked processes, each stopped after ``timeout`` seconds of CPU time.

    Returns (converted files per collection, [{"path", "reason"}] for scores that failed or timed out).
    """
    import music21  # noqa: F401  (imported once here, so every forked child starts with it loaded)

    ctx = multiprocessing.get_context("fork")
    jobs = list(score_files(limits))
    running: list[tuple] = []
    counts: dict[str, int] = {}
    failed: list[dict] = []
    root = music21_corpus_dir()
    while jobs or running:
        while jobs and len(running) < num_proc:
            name, src = jobs.pop(0)
            rel = src.relative_to(root / name)
            out = dest / name / (str(rel.with_suffix("")).replace(os.sep, "__") + ".mid")
            out.parent.mkdir(parents=True, exist_ok=True)
            proc, started = start_limited(ctx, _convert_child, (str(src), str(out)), timeout)
            running.append((proc, started, name, src, out))
        time.sleep(0.05)
        for job in list(running):
            proc, started, name, src, out = job
            done, over = finished(proc, started, timeout)
            if not done:
                continue
            reason = over or (None if proc.exitcode == 0 and out.is_file() else "music21 could not convert it")
            running.remove(job)
            if reason:
                out.unlink(missing_ok=True)
                failed.append({"path": str(src.relative_to(root)), "reason": reason})
            else:
                counts[name] = counts.get(name, 0) + 1
    return counts, failed


# --- Freedoom WADs --------------------------------------------------------------------------------
WAD_HEADER = struct.Struct("<4sii")  # identification, lump count, directory offset
WAD_ENTRY = struct.Struct("<ii8s")  # lump offset, size, name (NUL-padded)
MIDI_MAGIC = b"MThd"
MUS_MAGIC = b"MUS\x1a"


def wad_music(path: Path) -> dict[str, bytes]:
    """The music lumps (``D_*``) of a WAD file that are Standard MIDI Files, by lump name.

    Doom's MUS format lumps would need a converter; Freedoom ships all its music as MIDI, so any
    MUS lump is skipped (and counted by ``stage_freedoom``).
    """
    data = path.read_bytes()
    kind, count, offset = WAD_HEADER.unpack_from(data, 0)
    if kind not in (b"IWAD", b"PWAD"):
        raise ValueError(f"{path} is not a WAD file")
    lumps = {}
    for i in range(count):
        pos, size, raw = WAD_ENTRY.unpack_from(data, offset + i * WAD_ENTRY.size)
        name = raw.rstrip(b"\0").decode("ascii", "replace")
        if name.startswith("D_"):
            lumps[name] = data[pos : pos + size]
    return lumps


def stage_freedoom(dest: Path) -> dict:
    dest.mkdir(parents=True, exist_ok=True)
    counts = {"midi": 0, "mus_skipped": 0}
    for wad in FREEDOOM_WADS:
        for name, lump in wad_music(wad).items():
            if lump.startswith(MIDI_MAGIC):
                (dest / f"{wad.stem}_{name}.mid").write_bytes(lump)
                counts["midi"] += 1
            elif lump.startswith(MUS_MAGIC):
                counts["mus_skipped"] += 1
    return counts


# --- MMA ------------------------------------------------------------------------------------------
def groove_family(lib_file: Path) -> str:
    stem = lib_file.stem.lower()
    return next((fam for key, fam in GROOVE_FAMILIES if key in stem), GROOVE_DEFAULT_FAMILY)


def mma_grooves() -> list[tuple[str, Path]]:
    """(groove name, library file) for every ``DefGroove`` in MMA's libraries."""
    grooves = []
    for lib in sorted(MMA_LIB.rglob("*.mma")):
        if lib.stem.lower().startswith(GROOVE_EXCLUDE):
            continue
        for line in lib.read_text(encoding="latin-1").splitlines():
            m = re.match(r"\s*defgroove\s+(\S+)", line, re.IGNORECASE)
            if m:
                grooves.append((m.group(1), lib))
    return grooves


def _render_mma(text: str, out: Path) -> bool:
    out = out.absolute()  # mma runs in a scratch folder
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "song.mma"
        src.write_text(text, encoding="latin-1")
        try:
            subprocess.run(["mma", str(src), "-f", str(out)], cwd=tmp, capture_output=True, timeout=SUBPROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            return False
    return out.is_file() and out.stat().st_size > 0


def groove_chart(groove: str, lib: Path, index: int) -> str:
    chords = CHORD_CHARTS[index % len(CHORD_CHARTS)].split()
    lines = [f"Tempo {GROOVE_TEMPO}", f"Use {lib.relative_to(MMA_LIB).with_suffix('')}", f"Groove {groove}"]
    lines += [f"{bar} {chord}" for bar, chord in enumerate(chords, start=1)]
    return "\n".join(lines) + "\n"


def stage_mma_grooves(dest: Path, num_proc: int) -> tuple[dict, list[dict]]:
    """Render every groove over a 16-bar chart -> ``dest/<family>/<library>_<groove>.mid``."""
    grooves = mma_grooves()

    def render(job):
        i, (groove, lib) = job
        fam = groove_family(lib)
        out = dest / fam / f"{lib.parent.name}_{lib.stem}_{groove}.mid"
        out.parent.mkdir(parents=True, exist_ok=True)
        return fam, groove, lib, _render_mma(groove_chart(groove, lib, i), out)

    counts, failed = {}, []
    with ThreadPoolExecutor(max(1, num_proc)) as pool:
        for fam, groove, lib, ok in pool.map(render, enumerate(grooves)):
            if ok:
                counts[fam] = counts.get(fam, 0) + 1
            else:
                failed.append({"path": f"{lib.relative_to(MMA_LIB)}:{groove}", "reason": "mma did not render it"})
    return counts, failed


def stage_mma_examples(dest: Path, num_proc: int) -> tuple[dict, list[dict]]:
    """MMA's example songs rendered, labelled with the family of the first groove each one uses."""
    lib_of = {g.lower(): lib for g, lib in mma_grooves()}
    songs = sorted(MMA_EXAMPLES.rglob("*.mma"))

    def render(src: Path):
        text = src.read_text(encoding="latin-1")
        used = re.search(r"(?im)^\s*groove\s+(\S+)", text)
        lib = lib_of.get(used.group(1).lower()) if used else None
        fam = groove_family(lib) if lib else GROOVE_DEFAULT_FAMILY
        out = (dest / fam / f"{src.parent.name}_{src.stem}.mid").absolute()  # mma runs in a scratch folder
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:  # examples include files relative to their folder
            work = Path(tmp) / "ex"
            shutil.copytree(src.parent, work)
            try:
                subprocess.run(["mma", src.name, "-f", str(out)], cwd=work, capture_output=True, timeout=SUBPROCESS_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        return src, fam, out.is_file() and out.stat().st_size > 0

    counts, failed = {}, []
    with ThreadPoolExecutor(max(1, num_proc)) as pool:
        for src, fam, ok in pool.map(render, songs):
            if ok:
                counts[fam] = counts.get(fam, 0) + 1
            else:
                failed.append({"path": str(src.relative_to(MMA_EXAMPLES)), "reason": "mma did not render it"})
    return counts, failed


# --- everything ---------------------------------------------------------------------------------
def stage_all(stage: Path, sources: list[str], num_proc: int, score_timeout: float, score_limits: dict[str, int]) -> dict:
    """Stage the chosen generated sources under ``stage/<source>/``; returns a report (counts, failures, seconds)."""
    path = stage / "staging_report.json"
    report = json.loads(path.read_text()) if path.is_file() else {}  # reused sources keep their entries
    steps = {
        "music21-folk": lambda d: (stage_abc(d), []),
        "music21-scores": lambda d: stage_scores(d, num_proc, score_timeout, score_limits),
        "freedoom": lambda d: (stage_freedoom(d), []),
        "mma-grooves": lambda d: stage_mma_grooves(d, num_proc),
        "mma-examples": lambda d: stage_mma_examples(d, num_proc),
    }
    for name, step in steps.items():
        if name not in sources:
            continue
        dest = stage / name
        shutil.rmtree(dest, ignore_errors=True)
        started = time.monotonic()
        counts, failed = step(dest)
        report[name] = {"files": counts, "failed": failed, "seconds": round(time.monotonic() - started, 1)}
        print(f"staged {name}: {sum(v for k, v in counts.items() if k != 'mus_skipped')} files, "
              f"{len(failed)} failed, {report[name]['seconds']} s", flush=True)
        path.write_text(json.dumps(report, indent=2) + "\n")  # after every step, so an interrupted run keeps its record
    return report
