"""Folders of MIDI -> a tokenized ``datasets.DatasetDict`` on disk (train / validation / test).

``build_corpus`` walks the inputs recursively, hashes every file, drops exact duplicates, labels each
piece with a style, tokenizes in parallel (``datasets.map(num_proc=...)``) and saves::

    out/dataset/           DatasetDict.save_to_disk: one row per piece, columns
                           path, sha256, style, instruments, seconds, notes, input_ids
    out/tokenizer/         the tokenizer, with every style the corpus added (see below)
    out/corpus_card.json   per-source files, hours, notes, styles, licence; skip counts
    out/skipped.jsonl      one {"path", "reason"} per file left out (unreadable, empty, duplicate)
    out/build_info.json    the fingerprint of the inputs: a rebuild with the same inputs is a no-op

Decisions, each deliberate:

- Splits come from the content hash (``sha256`` mapped to [0, 1)), so a file never changes split
  when others are added, and a copy of a file can never sit in two splits.
- Style names the tokenizer does not know are appended with ``MuseNetTokenizer.add_styles`` (ids go
  after every existing id, so a trained model keeps its embeddings) and the extended tokenizer is
  saved in ``out/tokenizer``: train and generate with that one.
- A bad file is skipped with its reason, never fatal; the build fails only when nothing usable is left.
- ``path`` is stored relative to the parent of its input folder (``pop909/001/001.mid``), so a saved
  corpus names its files the same on every machine.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..utils import sha256_file

MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".smf")
SPLITS = ("train", "validation", "test")
DEFAULT_STYLE = "unknown"
BUILD_FORMAT = 1  # bump when the row layout changes, so old caches are not reused
# ids are stored in the smallest integer type that holds the vocabulary: int16 halves the corpus on disk
# (the default vocabulary has ~12k ids); vocabularies past 32767 ids fall back to int32.
INT16_MAX_VOCAB = 32767
TOKENIZE_BATCH = 16  # files per map batch: small, so one slow file does not hold back a whole batch


@dataclass
class CorpusResult:
    """What a build produced (``out`` is the folder passed to ``build_corpus``)."""

    out: Path
    rows: dict[str, int] = field(default_factory=dict)  # split -> pieces
    skipped: int = 0
    added_styles: list[str] = field(default_factory=list)
    reused: bool = False  # True when the inputs matched the previous build and nothing was redone
    card: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


@dataclass
class _File:
    path: Path  # on disk
    name: str  # relative to the parent of its input folder; its first part names the source
    sha256: str = ""
    style: str = DEFAULT_STYLE


# --- finding files and styles ----------------------------------------------------------------------
def find_midi_files(root: Path) -> list[Path]:
    """Every MIDI file under ``root`` (recursive, suffix case-insensitive), sorted; a file is itself."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())


def load_style_map(styles: dict | str | os.PathLike | None) -> dict[str, str]:
    """A style mapping as ``{path or folder: style}``, from a dict, a ``.json`` object or a ``.csv``.

    The CSV has two columns, path and style (a header row ``path,style`` is allowed).
    """
    if styles is None:
        return {}
    if isinstance(styles, dict):
        mapping = dict(styles)
    else:
        path = Path(styles)
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8") as fh:
                rows = [r for r in csv.reader(fh) if r and not r[0].startswith("#")]
            if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "style"]:
                rows = rows[1:]
            bad = [r for r in rows if len(r) < 2]
            if bad:
                raise ValueError(f"{path}: every row needs a path and a style, got {bad[0]}")
            mapping = {r[0].strip(): r[1].strip() for r in rows}
        else:
            mapping = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(mapping, dict):
                raise ValueError(f"{path}: a style map is a JSON object {{path or folder: style}}")
    out = {}
    for key, style in mapping.items():
        if not isinstance(style, str) or not style or any(ch.isspace() for ch in style):
            raise ValueError(f"style for {key!r} must be a non-empty name without spaces, got {style!r}")
        out[os.path.normpath(str(key))] = style
    return out


def resolve_style(f: _File, root: Path, mapping: dict[str, str]) -> str:
    """The most specific mapping entry for a file: the file itself, then each folder up to its input root.

    Keys may be absolute, relative to the input folder's parent (``pop909/001``) or relative to the
    input folder itself (``001``).
    """
    if not mapping:
        return DEFAULT_STYLE
    root_abs = _absolute(root)
    base = root_abs.parent
    node = _absolute(f.path)
    while True:
        keys = [str(node), os.path.relpath(node, base)]
        if node != root_abs and root_abs.is_dir():
            keys.append(os.path.relpath(node, root_abs))
        for key in keys:
            if os.path.normpath(key) in mapping:
                return mapping[os.path.normpath(key)]
        if node == root_abs or node == node.parent:
            return DEFAULT_STYLE
        node = node.parent


def _absolute(path: Path) -> Path:
    """An absolute path with ``..`` folded but symlinks kept, so a linked file is named where it is linked."""
    return Path(os.path.abspath(path))


def split_of(sha256: str, validation: float, test: float) -> str:
    """The split of a piece, from its content hash alone: [0, test) test, [test, test+validation) validation."""
    u = int(sha256[:15], 16) / 16**15
    return "test" if u < test else "validation" if u < test + validation else "train"


def collect_files(inputs, mapping: dict[str, str]) -> tuple[list[_File], list[dict]]:
    """(unique files with hash and style, skipped entries) for the input folders; the first copy of a file wins."""
    files, skipped, seen = [], [], {}
    for root in map(Path, inputs):
        if not root.exists():
            skipped.append({"path": str(root), "reason": "input does not exist"})
            continue
        base = _absolute(root).parent
        for path in find_midi_files(root):
            name = os.path.relpath(_absolute(path), base)
            f = _File(path, name)
            try:
                f.sha256 = sha256_file(path)
            except OSError as exc:
                skipped.append({"path": name, "reason": f"cannot read file ({exc.strerror or exc})"})
                continue
            if f.sha256 in seen:
                skipped.append({"path": name, "reason": f"duplicate of {seen[f.sha256]}"})
                continue
            seen[f.sha256] = name
            f.style = resolve_style(f, root, mapping)
            files.append(f)
    return files, skipped


# --- tokenizing (runs in datasets.map workers) ------------------------------------------------------
_WORKER_VOCAB: dict[str, object] = {}


def _vocab_for(config_json: str):
    """One Vocabulary per worker process (building it takes ~20 ms; a batch takes longer)."""
    from ..core.vocabulary import EncodingConfig, Vocabulary

    if config_json not in _WORKER_VOCAB:
        _WORKER_VOCAB.clear()
        _WORKER_VOCAB[config_json] = Vocabulary(EncodingConfig.from_dict(json.loads(config_json)))
    return _WORKER_VOCAB[config_json]


def _tokenize_batch(batch: dict, config_json: str, id_dtype: str) -> dict:
    from ..core.codec import encode_score
    from ..core.errors import MidiError
    from ..core.midi_io import read_midi

    vocab = _vocab_for(config_json)
    out = {"instruments": [], "seconds": [], "notes": [], "input_ids": [], "error": []}
    for disk_path, style in zip(batch["disk_path"], batch["style"]):
        try:
            score = read_midi(disk_path, vocab=vocab)
            if not score.notes:
                raise MidiError(disk_path, "no notes")
            families = sorted({n.family for n in score.notes})
            ids = encode_score(score, vocab, style)
            row = ([vocab.families[i] for i in families], score.seconds, len(score.notes), np.asarray(ids, dtype=id_dtype), "")
        except MidiError as exc:
            row = ([], 0.0, 0, np.zeros(0, dtype=id_dtype), exc.reason)
        except Exception as exc:  # a build never dies on one file: anything else is recorded as that file's reason
            row = ([], 0.0, 0, np.zeros(0, dtype=id_dtype), f"encoding failed ({type(exc).__name__}: {exc})")
        for key, value in zip(("instruments", "seconds", "notes", "input_ids", "error"), row):
            out[key].append(value)
    return out


def _features(id_dtype: str):
    from datasets import Features, List, Value

    return Features(
        {
            "path": Value("string"),
            "sha256": Value("string"),
            "style": Value("string"),
            "instruments": List(Value("string")),
            "seconds": Value("float32"),
            "notes": Value("int32"),
            "input_ids": List(Value(id_dtype)),
        }
    )


# --- the build ----------------------------------------------------------------------------------
def build_corpus(
    inputs,
    out,
    tokenizer,
    styles: dict | str | os.PathLike | None = None,
    num_proc: int = 1,
    validation_fraction: float = 0.05,
    test_fraction: float = 0.05,
    licences: dict[str, str] | None = None,
    force: bool = False,
) -> CorpusResult:
    """Build (or reuse) a tokenized corpus from folders or files of MIDI. See the module docstring.

    Args:
        inputs: folders (searched recursively) or single MIDI files.
        out: output folder; created, and overwritten when the inputs changed.
        tokenizer: a ``MuseNetTokenizer``; it is not modified (the corpus's own copy is saved in ``out/tokenizer``).
        styles: ``{file or folder: style}``, or a .json / .csv file of the same; unmapped files are ``unknown``.
        num_proc: worker processes for tokenization.
        validation_fraction, test_fraction: shares of the content-hash space for those splits.
        licences: ``{source folder name: licence}`` recorded in the corpus card.
        force: rebuild even when the fingerprint matches the previous build.

    Raises:
        ValueError: nothing usable was found (every file skipped), or a style map is malformed.
    """
    from ..core.tokenization_musenet import MuseNetTokenizer

    out = Path(out)
    if not (validation_fraction >= 0 and test_fraction >= 0 and validation_fraction + test_fraction < 1):
        raise ValueError("validation_fraction and test_fraction must be >= 0 and sum to less than 1")
    mapping = load_style_map(styles)
    files, skipped = collect_files(inputs, mapping)
    tok = MuseNetTokenizer(musenet=tokenizer.encoding_config.to_dict())
    added = tok.add_styles(sorted({f.style for f in files}))
    id_dtype = "int16" if len(tok) <= INT16_MAX_VOCAB else "int32"
    fingerprint = _fingerprint(files, skipped, tok, validation_fraction, test_fraction, licences, id_dtype)
    if not force and _previous_fingerprint(out) == fingerprint:
        card = json.loads((out / "corpus_card.json").read_text())
        return CorpusResult(out, dict(card["rows"]), card["skipped"], added, reused=True, card=card)
    if not files:
        raise ValueError(f"no MIDI files found in {', '.join(map(str, inputs))}")

    work = out / ".work"
    shutil.rmtree(work, ignore_errors=True)
    for stale in ("dataset", "tokenizer", "corpus_card.json", "skipped.jsonl", "build_info.json"):
        target = out / stale
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    work.mkdir(parents=True)
    splits, failed = _tokenize(files, tok, work, num_proc, id_dtype, validation_fraction, test_fraction)
    skipped += failed
    rows = {name: len(ds) for name, ds in splits.items()}
    if not sum(rows.values()):
        _write_skipped(out, skipped)
        raise ValueError(f"no usable MIDI: all {len(files)} files were skipped (reasons in {out / 'skipped.jsonl'})")
    # an empty split must still be written as one (empty) shard, or load_from_disk cannot read it back
    splits.save_to_disk(str(out / "dataset"), num_shards={name: 1 for name, n in rows.items() if n == 0})
    tok.save_pretrained(str(out / "tokenizer"))
    _write_skipped(out, skipped)
    card = corpus_card(splits, skipped, licences or {}, added, id_dtype)
    (out / "corpus_card.json").write_text(json.dumps(card, indent=2) + "\n")
    (out / "build_info.json").write_text(json.dumps({"fingerprint": fingerprint, "format": BUILD_FORMAT}) + "\n")
    del splits
    shutil.rmtree(work, ignore_errors=True)
    return CorpusResult(out, rows, len(skipped), added, reused=False, card=card)


def _tokenize(files, tok, work: Path, num_proc: int, id_dtype: str, validation: float, test: float):
    """Tokenize every file in ``num_proc`` workers; returns (DatasetDict of good rows, skipped entries)."""
    from datasets import Dataset, DatasetDict, Value, load_from_disk

    table = {
        "disk_path": [str(f.path) for f in files],
        "path": [f.name for f in files],
        "sha256": [f.sha256 for f in files],
        "style": [f.style for f in files],
        "split": [split_of(f.sha256, validation, test) for f in files],
    }
    # on disk first, so the tokenized rows are written to (and memory-mapped from) Arrow files, not RAM
    Dataset.from_dict(table).save_to_disk(str(work / "files"))
    listing = load_from_disk(str(work / "files"))
    features = _features(id_dtype).copy()
    features.update({"error": Value("string"), "disk_path": Value("string"), "split": Value("string")})
    encoded = listing.map(
        _tokenize_batch,
        batched=True,
        batch_size=TOKENIZE_BATCH,
        num_proc=max(1, min(num_proc, len(files))),
        fn_kwargs={"config_json": json.dumps(tok.encoding_config.to_dict(), sort_keys=True), "id_dtype": id_dtype},
        features=features,
        cache_file_name=str(work / "encoded" / "data.arrow"),
        desc="tokenizing MIDI",
    )
    meta = encoded.select_columns(["path", "error", "split"])
    errors = np.asarray(meta["error"], dtype=object)
    split_col = np.asarray(meta["split"], dtype=object)
    paths = meta["path"]
    failed = [{"path": paths[i], "reason": errors[i]} for i in np.flatnonzero(errors != "")]
    keep = errors == ""
    cols = encoded.remove_columns(["disk_path", "error", "split"])
    splits = DatasetDict({name: cols.select(np.flatnonzero(keep & (split_col == name))) for name in SPLITS})
    return splits, failed


def _fingerprint(files, skipped, tok, validation, test, licences, id_dtype) -> str:
    h = hashlib.sha256()
    payload = {
        "format": BUILD_FORMAT,
        "files": [(f.name, f.sha256, f.style) for f in files],
        "skipped": skipped,
        "tokenizer": tok.encoding_config.to_dict(),
        "vocabulary": hashlib.sha256("\n".join(tok.musenet_vocab.tokens).encode()).hexdigest(),
        "encoder": _encoder_source_hash(),
        "splits": [validation, test],
        "licences": licences or {},
        "dtype": id_dtype,
    }
    h.update(json.dumps(payload, sort_keys=True).encode())
    return h.hexdigest()


def _encoder_source_hash() -> str:
    """A hash of the code that turns MIDI into ids: a changed encoder must not reuse ids it did not write."""
    from ..core import codec as events
    from ..core import midi_io
    from ..core import vocabulary as encoding

    h = hashlib.sha256()
    for module in (encoding, events, midi_io):
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()


def _previous_fingerprint(out: Path) -> str | None:
    info = out / "build_info.json"
    if not (info.is_file() and (out / "dataset").is_dir() and (out / "corpus_card.json").is_file()):
        return None
    try:
        return json.loads(info.read_text()).get("fingerprint")
    except (OSError, ValueError):
        return None


def _write_skipped(out: Path, skipped: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "skipped.jsonl", "w", encoding="utf-8") as fh:
        for entry in skipped:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")


# --- the card ------------------------------------------------------------------------------------
def corpus_card(splits, skipped: list[dict], licences: dict[str, str], added_styles: list[str], id_dtype: str) -> dict:
    """Per-source statistics (files, hours, notes, tokens, styles, licence) of a built DatasetDict."""
    sources: dict[str, dict] = {}
    for ds in splits.values():
        meta = ds.select_columns(["path", "style", "seconds", "notes"])
        lengths = row_lengths(ds)
        for path, style, seconds, notes, n_tok in zip(meta["path"], meta["style"], meta["seconds"], meta["notes"], lengths):
            name = path.split("/", 1)[0]
            s = sources.setdefault(name, {"name": name, "files": 0, "seconds": 0.0, "notes": 0, "tokens": 0, "styles": {}})
            s["files"] += 1
            s["seconds"] += float(seconds)
            s["notes"] += int(notes)
            s["tokens"] += int(n_tok)
            s["styles"][style] = s["styles"].get(style, 0) + 1
    rows = []
    for name in sorted(sources):
        s = sources[name]
        rows.append(
            {
                "name": name,
                "files": s["files"],
                "hours": round(s["seconds"] / 3600, 3),
                "notes": s["notes"],
                "tokens": s["tokens"],
                "styles": dict(sorted(s["styles"].items(), key=lambda kv: -kv[1])),
                "licence": licences.get(name, "unknown"),
            }
        )
    reasons: dict[str, int] = {}
    for entry in skipped:
        key = "duplicate" if entry["reason"].startswith("duplicate of") else entry["reason"].split(" (")[0]
        reasons[key] = reasons.get(key, 0) + 1
    return {
        "sources": rows,
        "rows": {name: len(ds) for name, ds in splits.items()},
        "skipped": len(skipped),
        "skipped_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "added_styles": added_styles,
        "input_ids_dtype": id_dtype,
        "totals": {k: round(sum(r[k] for r in rows), 3) for k in ("files", "hours", "notes", "tokens")},
    }


def row_lengths(dataset) -> np.ndarray:
    """Length of every row's ``input_ids`` (shape ``[rows]``), read from Arrow offsets without copying ids."""
    import pyarrow.compute as pc

    col = dataset.with_format("arrow").select_columns(["input_ids"])[:]["input_ids"]
    return pc.list_value_length(col).to_numpy(zero_copy_only=False).astype(np.int64)


def format_card_table(card: dict) -> str:
    """The card's sources as a Markdown table (what the recipe prints and DATA_CARD.md holds)."""
    lines = ["| source | files | hours | notes | tokens | styles | licence |", "|---|---:|---:|---:|---:|---|---|"]
    for r in card["sources"] + [{"name": "**total**", **card["totals"], "styles": {}, "licence": ""}]:
        styles = ", ".join(f"{k} ({v})" for k, v in r["styles"].items())
        lines.append(f"| {r['name']} | {r['files']} | {r['hours']:.2f} | {r['notes']:,} | {r['tokens']:,} | {styles} | {r['licence']} |")
    lines.append(f"\nrows: {card['rows']}; skipped files: {card['skipped']} {card.get('skipped_reasons', {})}")
    return "\n".join(lines)


def load_corpus(path):
    """``(DatasetDict, MuseNetTokenizer)`` of a corpus written by ``build_corpus``."""
    from datasets import load_from_disk

    from ..core.tokenization_musenet import MuseNetTokenizer

    path = Path(path)
    if not (path / "dataset").is_dir():
        raise FileNotFoundError(f"{path} is not a built corpus (no dataset/ folder); build one with `musenet-hf corpus build`")
    return load_from_disk(str(path / "dataset")), MuseNetTokenizer.from_pretrained(str(path / "tokenizer"))


def is_corpus_dir(path) -> bool:
    """Whether ``path`` holds a corpus written by ``build_corpus`` (``dataset/`` and ``tokenizer/``)."""
    path = Path(path)
    return (path / "dataset").is_dir() and (path / "tokenizer").is_dir()


def validation_split(splits):
    """The split a run is evaluated on: ``validation``, else ``test``, else ``None`` when both are empty."""
    for name in ("validation", "test"):
        if name in splits and len(splits[name]):
            return splits[name]
    return None


def corpus_for_training(data, cache_dir, base_tokenizer, pinned: str | None = None, style: str | None = None,
                        num_proc: int = 1, is_main_process: bool = True, wait_for_everyone=None):
    """``(splits, tokenizer, corpus description)`` from a built corpus, or from a MIDI folder built here first.

    A MIDI folder is built once, by the main process, into ``cache_dir`` (a rebuild with unchanged
    inputs is a no-op); the other processes wait and then load the same corpus.

    Args:
        data (`str` or `os.PathLike`): a built corpus folder or a folder of MIDI files.
        cache_dir (`str` or `os.PathLike`): where a MIDI folder's corpus is built.
        base_tokenizer (`MuseNetTokenizer`): the encoding a MIDI folder is tokenized with.
        pinned (`str`, *optional*): the checkpoint or tokenizer the encoding comes from; when set, the
            corpus's vocabulary must start with ``base_tokenizer``'s (same ids, new styles after).
        style (`str`, *optional*): style name for every file of a MIDI folder.
        num_proc (`int`, defaults to 1): processes for tokenizing a MIDI folder.
        is_main_process (`bool`, defaults to `True`): whether this process builds the corpus.
        wait_for_everyone (`Callable`, *optional*): a barrier across processes, called after the build.

    Raises:
        ValueError: the corpus was built with another encoding than the pinned one.
    """
    data = Path(data)
    if is_corpus_dir(data):
        corpus = data
    else:
        corpus = Path(cache_dir)
        styles = {str(data.resolve()): style} if style else None
        if is_main_process:
            build_corpus([data], corpus, base_tokenizer, styles=styles, num_proc=num_proc)
        if wait_for_everyone is not None:
            wait_for_everyone()
    splits, tokenizer = load_corpus(corpus)
    known = base_tokenizer.musenet_vocab.tokens
    # a corpus trained from scratch brings its own encoding; a checkpoint or named tokenizer must agree with it
    if pinned and tokenizer.musenet_vocab.tokens[: len(known)] != known:
        raise ValueError(f"the corpus at {corpus} was built with a different encoding than {pinned}; rebuild it with that tokenizer")
    card = corpus / "corpus_card.json"
    description = json.loads(card.read_text()) if card.is_file() else {"path": str(corpus)}
    return splits, tokenizer, description
