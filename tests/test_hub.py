"""Sharing on the Hub: push_to_hub.py and loading by repo id, through huggingface_hub's real client
against the local Hub of ``hub_server.py`` (127.0.0.1, in memory).

huggingface_hub reads HF_ENDPOINT / HF_HOME / HF_HUB_OFFLINE at import, so everything that talks to the
Hub runs in a fresh ``python`` subprocess with those set; the server runs in a thread of this process,
so tests can also inspect what was committed. Users without the package are simulated by a child whose
import system refuses ``musenet_hf`` (it is pip-installed in editable mode here, so leaving it off
PYTHONPATH is not enough).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import mido
import pytest
from hub_server import HubServer
from huggingface_hub import ModelCard
from pipeline_fixtures import save_tiny_checkpoint
from safetensors.torch import load_file

from musenet_hf.hub import push as hub
from musenet_hf.core.configuration_musenet_remote import REMOTE_PIPELINES_KEY

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN, USER = "hf_test_alice", "alice"
OTHER_TOKEN = "hf_test_bob"  # a valid token of a user who may not write to alice's repos
REPO = f"{USER}/musenet-tiny"
PRIVATE_REPO = f"{USER}/musenet-private"
SAMPLE_SECONDS = 1.0  # keeps the sample generation of each push well under a second for the tiny model
CHILD_TIMEOUT_S = 300
# Makes `import musenet_hf` fail in a child, as for a user who never installed the package.
BLOCK_PACKAGE = """
import sys
class _NoMusenetHf:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "musenet_hf":
            raise ModuleNotFoundError(f"No module named {name!r} (this user does not have the package)")
sys.meta_path.insert(0, _NoMusenetHf())
"""

# A training record as train.py writes it, its corpus being a corpus card as build_corpus writes it.
RECORD = {
    "corpus": {"sources": [{"name": "TinyCorpus", "files": 12, "hours": 0.4, "notes": 9000, "tokens": 50000,
                            "styles": {"pop": 8, "jazz": 4}, "licence": "CC-BY-4.0"}],
               "rows": {"train": 10, "validation": 2}, "skipped": 2, "skipped_reasons": {"no notes": 2},
               "totals": {"files": 12, "hours": 0.4, "notes": 9000, "tokens": 50000}},
    "training_args": {"learning_rate": 0.0006, "seed": 0, "per_device_batch_size": 8, "output_dir": "/home/me/runs/x",
                      "data": "/home/me/midi"},
    "preset": "tiny",
    "metrics": {"eval_loss": 2.75, "perplexity": 15.64, "bits_per_note": 12.34, "baseline_bits_per_note": 20.5},
    "train_seconds": 5400.0,
    "steps": 1200,
    "tokens": 4915200,
    "hardware": "2 CPU cores",
    "styles": ["unknown", "pop", "jazz", "bach"],
    "instruments": ["piano", "bass"],
}


def make_checkpoint(path: Path, seed: int = 0, record: dict | None = None) -> Path:
    """A tiny random checkpoint in train.py's layout, with a training record."""
    save_tiny_checkpoint(path, seed=seed)
    (path / hub.TRAINING_RECORD).write_text(json.dumps(RECORD if record is None else record))
    return path


def fingerprint(checkpoint: Path) -> float:
    """A number that differs between differently seeded checkpoints: the sum of the token embeddings."""
    return float(load_file(checkpoint / "model.safetensors")["transformer.wte.weight"].double().sum())


# --- in-process checks (no Hub) -------------------------------------------------------------------
@pytest.mark.parametrize("missing", ["model.safetensors", "config.json", "tokenizer.json", "generation_config.json",
                                     "training_record.json"])
def test_incomplete_checkpoint_names_the_missing_file(tmp_path, missing):
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    (checkpoint / missing).unlink()
    with pytest.raises(hub.CheckpointIncompleteError, match=re.escape(missing)):
        hub.validate_checkpoint(checkpoint)


def test_validate_checkpoint_lists_only_safe_files(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    for pickle_file in ("optimizer.bin", "random_states_0.pkl", "pytorch_model.bin"):
        (checkpoint / pickle_file).write_bytes(b"not published")
    files = hub.validate_checkpoint(checkpoint)
    assert "model.safetensors" in files and "training_record.json" in files
    assert not [f for f in files if f.endswith((".bin", ".pkl"))]
    (checkpoint / "model.safetensors").unlink()
    with pytest.raises(hub.CheckpointIncompleteError, match="pytorch_model.bin.*only safetensors"):
        hub.validate_checkpoint(checkpoint)


def test_sharded_checkpoint_names_a_missing_shard(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    (checkpoint / "model.safetensors").rename(checkpoint / "model-00001-of-00002.safetensors")
    index = {"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (checkpoint / hub.WEIGHTS_INDEX).write_text(json.dumps(index))
    with pytest.raises(hub.CheckpointIncompleteError, match="model-00002-of-00002.safetensors"):
        hub.validate_checkpoint(checkpoint)


def test_bad_training_record_and_tokenizer_class_are_named(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    (checkpoint / hub.TRAINING_RECORD).write_text("{not json")
    with pytest.raises(hub.CheckpointIncompleteError, match="training_record.json is not valid JSON"):
        hub.validate_checkpoint(checkpoint)
    make_checkpoint(checkpoint)
    config = json.loads((checkpoint / "tokenizer_config.json").read_text())
    (checkpoint / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": "GPT2Tokenizer"}))
    with pytest.raises(hub.CheckpointIncompleteError, match="GPT2Tokenizer"):
        hub.validate_checkpoint(checkpoint)


def test_shipped_modules_are_valid_remote_code():
    names = {p.name for p in hub.remote_code_files()}
    assert {"pipeline_midi_generation.py", "tokenization_musenet.py", "configuration_musenet_remote.py",
            "vocabulary.py", "codec.py", "midi_io.py", "errors.py"} <= names
    assert "hub.py" not in names and "__init__.py" not in names


@pytest.mark.parametrize("source, problem", [
    ("from . import encoding\n", "from . import"),
    ("import musenet_hf.core.vocabulary\n", "absolute name"),
    ("from musenet_hf import Vocabulary\n", "absolute name"),
    ("def f():\n    import requests\n", "requests"),
])
def test_remote_code_check_rejects_imports_that_break_trust_remote_code(tmp_path, source, problem):
    module = tmp_path / "pipeline_x.py"
    module.write_text("import json\nimport torch\nfrom .encoding import Vocabulary\n" + source)
    with pytest.raises(ValueError, match=re.escape(problem)):
        hub.check_remote_module(module)


def test_hub_config_keeps_custom_pipelines_out_of_config_json():
    saved_by_a_pipeline = {"model_type": "gpt2", "custom_pipelines": {"midi-generation": {"impl": "old.Old"}},
                           "auto_map": {"AutoModelForCausalLM": "x.Y"}}
    config = hub.hub_config(saved_by_a_pipeline)
    assert "custom_pipelines" not in config and config["model_type"] == "gpt2"
    spec = config[REMOTE_PIPELINES_KEY]["midi-generation"]
    assert spec["impl"] == "pipeline_midi_generation.MidiGenerationPipeline" and spec["pt"] == ["AutoModelForCausalLM"]
    assert "default" not in spec  # the registered default is a local path
    remote_config = "configuration_musenet_remote.MuseNetRemoteConfig"
    assert config["auto_map"] == {"AutoModelForCausalLM": "x.Y", "AutoConfig": remote_config}


def test_parse_push_args_positional_and_json(tmp_path):
    args = hub.parse_push_args(["runs/x", "--repo-id", "a/b", "--private", "--revision", "dev", "--commit-message", "hi"])
    parsed = (args.checkpoint_dir, args.repo_id, args.private, args.revision, args.commit_message)
    assert parsed == ("runs/x", "a/b", True, "dev", "hi")
    config = tmp_path / "push.json"
    config.write_text(json.dumps({"checkpoint_dir": "runs/y", "repo_id": "a/c", "sample_seconds": 3}))
    args = hub.parse_push_args([str(config)])
    assert (args.checkpoint_dir, args.repo_id, args.sample_seconds, args.private) == ("runs/y", "a/c", 3.0, False)


def test_card_license_from_the_corpus():
    assert hub.card_license(RECORD) == "cc-by-4.0"
    two = {"corpus": {"sources": [{"licence": "MIT"}, {"licence": "CC-BY-NC-4.0"}]}}
    assert hub.card_license(two) == "other"
    assert hub.card_license({"corpus": {"sources": [{"licence": "research only"}]}}) == "other"
    assert hub.card_license(two, override="apache-2.0") == "apache-2.0"


def test_stage_repo_from_a_config_saved_by_a_pipeline(tmp_path):
    """Pipeline.save_pretrained leaves custom_pipelines in config.json: staging (whose sample loads the
    checkpoint with the package's pipeline) still works and moves it out of the uploaded config."""
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    config = json.loads((checkpoint / "config.json").read_text())
    config["custom_pipelines"] = {"midi-generation": {"impl": "pipeline_midi_generation.MidiGenerationPipeline",
                                                      "pt": ["AutoModelForCausalLM"], "type": "text"}}
    (checkpoint / "config.json").write_text(json.dumps(config))
    files = hub.stage_repo(checkpoint, tmp_path / "staged", "a/b", hub.SampleOptions(seconds=SAMPLE_SECONDS))
    assert {"README.md", "sample.mid", "model.safetensors"} <= set(files)
    assert set(files) == {p.name for p in (tmp_path / "staged").iterdir()}
    staged = json.loads((tmp_path / "staged" / "config.json").read_text())
    assert "custom_pipelines" not in staged and REMOTE_PIPELINES_KEY in staged
    assert json.loads((checkpoint / "config.json").read_text()) == config  # the checkpoint is only read


@pytest.mark.slow
def test_stage_a_checkpoint_written_by_train_py(tmp_path):
    """The real producer: train.py's checkpoint and training record make a complete card."""
    from training_fixtures import build_song_corpus, tiny_args, train_cli

    proc = train_cli(tiny_args(build_song_corpus(tmp_path), tmp_path / "run"), tmp_path / "key")
    log, _ = proc.communicate(timeout=CHILD_TIMEOUT_S)
    assert proc.returncode == 0, log[-3000:]
    record = json.loads((tmp_path / "run" / hub.TRAINING_RECORD).read_text())
    hub.stage_repo(tmp_path / "run", tmp_path / "staged", "a/songs", hub.SampleOptions(seconds=SAMPLE_SECONDS))
    card = ModelCard.load(tmp_path / "staged" / "README.md")
    assert card.data.datasets == [s["name"] for s in record["corpus"]["sources"]]
    assert {r.metric_type: r.metric_value for r in card.data.eval_results}["bits_per_note"] == record["metrics"]["bits_per_note"]
    assert f"| bits per note | {record['metrics']['bits_per_note']:.3f} |" in card.text
    assert "not recorded" not in card.text
    assert (tmp_path / "staged" / "sample.mid").stat().st_size > 0


def test_model_card_from_a_sparse_record():
    record = {"corpus": {"path": "/data/corpus"}, "metrics": {"eval_loss": 3.0}}
    sample = hub.SampleInfo(seconds=1.0, notes=3, instruments=["piano"], style="unknown", seed=0)
    card = hub.build_model_card(record, {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 64}, "a/b", sample, 400_000)
    assert card.data.license == "other" and card.data.datasets is None
    assert "corpus: /data/corpus" in card.text and "| bits per note | not recorded |" in card.text
    assert "Styles in the training data** (pieces): not recorded" in card.text
    assert [r.metric_type for r in card.data.eval_results] == ["eval_loss"]


# --- round trips through the local Hub ------------------------------------------------------------
@pytest.fixture(scope="module")
def hub_server():
    with HubServer({TOKEN: USER, OTHER_TOKEN: "bob"}) as server:
        yield server


def child_env(server: HubServer | None, home: Path, token: str | None = None, **extra) -> dict:
    """Environment of a child process: this worktree's package first, a private HF_HOME, no stray HF_*;
    the local Hub as endpoint (``server=None``: the real Hub)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(home), PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", TRANSFORMERS_VERBOSITY="error", TRANSFORMERS_NO_ADVISORY_WARNINGS="1")
    if server is not None:
        env["HF_ENDPOINT"] = server.url
    if token:
        env["HF_TOKEN"] = token
    env.update(extra)
    return env


def run_child(code: str, env: dict, cwd: Path) -> dict:
    """Run ``code`` in a fresh interpreter; it must print one JSON line last, which is returned."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=CHILD_TIMEOUT_S)
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def usage_snippets(readme: str) -> list[str]:
    """The card's python code blocks, shortened to 1 s of music so they run fast here."""
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert all("seconds=20" in b for b in blocks[:2]), "the card's generation snippets changed: update this test"
    return [b.replace("seconds=20", f"seconds={SAMPLE_SECONDS}") for b in blocks]


@pytest.fixture(scope="module")
def pushed(hub_server, tmp_path_factory):
    """Pushes through push_to_hub.py's main(): v1 to main, v2 on top (a second commit), v1 to branch
    "dev", and a private repo. Returns the checkpoints and commit ids."""
    root = tmp_path_factory.mktemp("push")
    v1, v2 = make_checkpoint(root / "v1", seed=0), make_checkpoint(root / "v2", seed=1)
    (v1 / "optimizer.bin").write_bytes(b"pickled optimizer state that must stay local")
    code = f"""
        import json, sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from push_to_hub import main
        common = ["--sample-seconds", "{SAMPLE_SECONDS}"]
        codes = [main([{str(v1)!r}, "--repo-id", {REPO!r}, *common]),
                 main([{str(v2)!r}, "--repo-id", {REPO!r}, "--commit-message", "v2: second seed", *common]),
                 main([{str(v1)!r}, "--repo-id", {REPO!r}, "--revision", "dev", "--sample-style", "jazz",
                       "--sample-instruments", "bass, piano", "--sample-seed", "3", *common]),
                 main([{str(v1)!r}, "--repo-id", {PRIVATE_REPO!r}, "--private", *common]),
                 main([{str(v1)!r}, "--repo-id", "bare-name", *common])]
        print(json.dumps(codes))
    """
    assert run_child(code, child_env(hub_server, root / "home", TOKEN), root) == [0, 0, 0, 0, 0]
    repo = hub_server.state.repos[REPO]
    commits = list(repo.commits.values())  # insertion order: initial, v1, v2, (dev has its own commit)
    return {"v1": v1, "v2": v2, "commit_v1": commits[1].oid, "commit_v2": repo.branches["main"],
            "dev": repo.branches["dev"], "repo": repo}


def test_push_uploads_model_code_card_and_sample(pushed):
    repo = pushed["repo"]
    main = repo.resolve("main")
    assert main.message == "v2: second seed" and repo.resolve(pushed["commit_v1"]).message.startswith("Upload v1")
    files = set(main.files)
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "training_record.json", "README.md", "sample.mid", "pipeline_midi_generation.py", "tokenization_musenet.py",
            "configuration_musenet_remote.py", "logits_processors.py", "sliding_window.py", "vocabulary.py", "codec.py", "midi_io.py",
            "errors.py"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pkl"))], "pickles must never be published"
    config = json.loads(main.files["config.json"])
    assert "custom_pipelines" not in config and REMOTE_PIPELINES_KEY in config
    tokenizer_auto_map = json.loads(main.files["tokenizer_config.json"])["auto_map"]
    assert tokenizer_auto_map["AutoTokenizer"] == [None, "tokenization_musenet.MuseNetTokenizer"]
    assert main.files["pipeline_midi_generation.py"] == (REPO_ROOT / "musenet_hf" / "core" / "pipeline_midi_generation.py").read_bytes()
    assert repo.resolve("dev").files["model.safetensors"] == (pushed["v1"] / "model.safetensors").read_bytes()
    assert "auto_map" not in json.loads((pushed["v1"] / "config.json").read_text())  # the checkpoint itself is untouched


def test_sample_options_reach_the_sample_and_the_card(pushed):
    readme = pushed["repo"].resolve("dev").files["README.md"].decode()
    described = re.search(r"notes, style jazz, instruments ([a-z, ]+); generated by this model with seed 3", readme)
    assert described and set(described[1].split(", ")) <= {"bass", "piano"}
    assert 'generate(style="jazz"' in readme


def test_push_to_a_bare_name_uses_the_token_owners_namespace(pushed, hub_server):
    readme = hub_server.state.repos[f"{USER}/bare-name"].resolve("main").files["README.md"].decode()
    assert f'model="{USER}/bare-name"' in readme
    assert hub_server.state.repos[PRIVATE_REPO].private and not pushed["repo"].private


def test_model_card_metadata_and_body(pushed, tmp_path):
    main = pushed["repo"].resolve("main")
    card = ModelCard(main.files["README.md"].decode())
    data = card.data
    assert data.license == "cc-by-4.0" and data.library_name == "transformers"
    assert {"music", "midi", "symbolic-music"} <= set(data.tags)
    assert data.datasets == ["TinyCorpus"] and "bits_per_note" in data.metrics
    results = {r.metric_type: r.metric_value for r in data.eval_results}
    assert results == {"eval_loss": 2.75, "perplexity": 15.64, "bits_per_note": 12.34}
    text = card.text
    for expected in ("| TinyCorpus | 12 | 0.40 | 9,000 | 50,000 | pop (8), jazz (4) | CC-BY-4.0 |",
                     "| bits per note | 12.340 |", "| bigram baseline, bits per note | 20.500 |",
                     "(pieces): pop (8), jazz (4)", "accepts** (4): unknown, pop, jazz, bach", "(2 families): piano, bass",
                     "| `learning_rate` | 0.0006 |", "90.0 min (1200 optimizer steps, 4,915,200 tokens)",
                     f'model="{REPO}", trust_remote_code=True', 'generate(style="pop", instruments=['):
        assert expected in text, expected
    assert "/home/me" not in text  # the trainer's local paths stay out of the card
    (tmp_path / "sample.mid").write_bytes(main.files["sample.mid"])
    sample = mido.MidiFile(tmp_path / "sample.mid")
    notes = sum(1 for track in sample.tracks for msg in track if msg.type == "note_on" and msg.velocity > 0)
    described = re.search(r"\[`sample.mid`\]\(sample.mid\): ([\d.]+) s, (\d+) notes, style pop", text)
    assert described and int(described[2]) == notes > 0
    assert abs(float(described[1]) - sample.length) < 0.5


@pytest.fixture(scope="module")
def package_user(hub_server, pushed, tmp_path_factory):
    """A user WITH the package loads by repo id (populating its cache) and runs the card's snippets."""
    home, cwd = tmp_path_factory.mktemp("pkg-home"), tmp_path_factory.mktemp("pkg-cwd")
    mido.MidiFile(type=1).save(cwd / "my_song.mid")  # the file the card's tokenizer snippet encodes
    readme = pushed["repo"].resolve("main").files["README.md"].decode()
    with_package, _, low_level = usage_snippets(readme)
    code = f"""
        import json, sys
        import musenet_hf
        from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
        exec({with_package!r})
        exec({low_level!r})
        pipe = pipeline("midi-generation", model={REPO!r})
        pinned = AutoModelForCausalLM.from_pretrained({REPO!r}, revision={pushed["commit_v1"]!r})
        dev = AutoModelForCausalLM.from_pretrained({REPO!r}, revision="dev")
        out = pipe(seconds={SAMPLE_SECONDS}, seed=1)[0]
        trusting = pipeline("midi-generation", model={REPO!r}, trust_remote_code=True)
        print(json.dumps({{
            "pipeline": type(pipe).__module__, "trusting": type(trusting).__module__, "tokenizer": type(tokenizer).__module__,
            "model": type(model).__name__, "card_piece_notes": piece["notes"], "notes": out["notes"],
            "main": float(model.transformer.wte.weight.double().sum()),
            "pinned": float(pinned.transformer.wte.weight.double().sum()),
            "dev": float(dev.transformer.wte.weight.double().sum()), "encoded": len(ids),
        }}))
    """
    return run_child(code, child_env(hub_server, home), cwd), home, cwd


def test_package_user_needs_no_trust_remote_code(package_user, pushed):
    out, _, cwd = package_user
    assert out["pipeline"] == "musenet_hf.core.pipeline_midi_generation"
    assert out["trusting"].startswith("transformers_modules.")  # trust_remote_code=True runs the repo's copy
    assert out["tokenizer"] == "musenet_hf.core.tokenization_musenet" and out["model"] == "GPT2LMHeadModel"
    assert out["main"] == pytest.approx(fingerprint(pushed["v2"]))
    assert out["pinned"] == pytest.approx(fingerprint(pushed["v1"])) != pytest.approx(out["main"])
    assert out["dev"] == pytest.approx(fingerprint(pushed["v1"]))
    assert out["encoded"] >= 4  # an empty file still encodes to a header and <eos>
    assert len(mido.MidiFile(cwd / "generated.mid").tracks) >= 1


@pytest.fixture(scope="module")
def no_package_user(hub_server, pushed, tmp_path_factory):
    """A user WITHOUT the package runs the card's trust_remote_code snippet in an empty folder."""
    home, cwd = tmp_path_factory.mktemp("nopkg-home"), tmp_path_factory.mktemp("nopkg-cwd")
    readme = pushed["repo"].resolve("main").files["README.md"].decode()
    remote = usage_snippets(readme)[1]
    code = BLOCK_PACKAGE + f"""
import json, importlib.util
try:
    import musenet_hf
    raise SystemExit("the package is importable: this child does not simulate a user without it")
except ModuleNotFoundError:
    pass
exec({remote!r})
from transformers import AutoModelForCausalLM
trusted = AutoModelForCausalLM.from_pretrained({REPO!r}, trust_remote_code=True)  # remote config class, GPT-2 model
plain = AutoModelForCausalLM.from_pretrained({REPO!r})
print(json.dumps({{"pipeline": type(generate).__module__, "tokenizer": type(generate.tokenizer).__module__,
                  "notes": piece["notes"], "loaded": sorted(m for m in sys.modules if m.startswith("musenet_hf")),
                  "models": [type(trusted).__name__, type(plain).__name__],
                  "custom_pipelines": [hasattr(trusted.config, "custom_pipelines"), hasattr(plain.config, "custom_pipelines")]}}))
"""
    env = child_env(hub_server, home)
    env.pop("PYTHONPATH")
    return run_child(code, env, cwd), home, cwd


def test_user_without_package_loads_with_trust_remote_code(no_package_user, package_user):
    out, _, cwd = no_package_user
    assert out["pipeline"].startswith("transformers_modules.") and out["pipeline"].endswith(".pipeline_midi_generation")
    assert out["tokenizer"].startswith("transformers_modules.") and out["loaded"] == []
    assert out["models"] == ["GPT2LMHeadModel", "GPT2LMHeadModel"]
    assert out["custom_pipelines"] == [True, False]  # only a caller trusting remote code sees the pipeline spec
    midi = mido.MidiFile(cwd / "generated.mid")
    notes = sum(1 for track in midi.tracks for msg in track if msg.type == "note_on" and msg.velocity > 0)
    assert notes == out["notes"] > 0
    assert out["notes"] == package_user[0]["card_piece_notes"]  # the repo's code makes the same music as the package


def offline_env(home: Path) -> dict:
    # A closed port as endpoint: any request that slipped past offline mode would fail loudly.
    return child_env(None, home, HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")


def test_offline_from_a_populated_cache(hub_server, package_user, pushed):
    _, home, cwd = package_user
    requests_before = len(hub_server.state.log)
    code = f"""
        import json
        import musenet_hf
        from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
        pipe = pipeline("midi-generation", model={REPO!r})
        tok = AutoTokenizer.from_pretrained({REPO!r})
        pinned = AutoModelForCausalLM.from_pretrained({REPO!r}, revision={pushed["commit_v1"]!r})
        out = pipe(seconds={SAMPLE_SECONDS}, seed=1)[0]
        try:
            AutoModelForCausalLM.from_pretrained("{USER}/never-downloaded")
            missing = "loaded"
        except OSError as err:
            missing = str(err)
        print(json.dumps({{"notes": out["notes"], "tok": type(tok).__name__, "missing": missing,
                          "pinned": float(pinned.transformer.wte.weight.double().sum())}}))
    """
    out = run_child(code, offline_env(home), cwd)
    assert out["tok"] == "MuseNetTokenizer" and out["pinned"] == pytest.approx(fingerprint(pushed["v1"]))
    assert out["notes"] == package_user[0]["notes"]  # same model, same seed: same music as online
    assert "couldn't find them in the cached files" in out["missing"]  # transformers' offline cache miss
    assert len(hub_server.state.log) == requests_before, "offline loading must not contact the Hub"


def test_offline_without_package_from_a_populated_cache(hub_server, no_package_user):
    _, home, cwd = no_package_user
    code = BLOCK_PACKAGE + f"""
import json
from transformers import pipeline
generate = pipeline("midi-generation", model={REPO!r}, trust_remote_code=True)
piece = generate(seconds={SAMPLE_SECONDS}, seed=0)[0]
print(json.dumps({{"notes": piece["notes"], "pipeline": type(generate).__module__}}))
"""
    env = offline_env(home)
    env.pop("PYTHONPATH")
    out = run_child(code, env, cwd)
    assert out["pipeline"].startswith("transformers_modules.") and out["notes"] >= 0


def test_clear_errors(hub_server, pushed, tmp_path):
    incomplete = make_checkpoint(tmp_path / "incomplete")
    (incomplete / "tokenizer.json").unlink()
    complete = pushed["v1"]
    code = f"""
        import contextlib, io, json, os
        from push_to_hub import main
        from transformers import pipeline
        from musenet_hf.hub.push import HubRepoNotFoundError, download_checkpoint

        def push(*argv, token=None):
            os.environ.pop("HF_TOKEN", None)
            if token:
                os.environ["HF_TOKEN"] = token
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = main([*argv, "--sample-seconds", "{SAMPLE_SECONDS}"])
            return [code, err.getvalue()]

        def pull(repo, revision=None, token=None):
            os.environ.pop("HF_TOKEN", None)  # anonymous unless a token is passed
            try:
                download_checkpoint(repo, revision=revision, token=token)
                return "downloaded"
            except HubRepoNotFoundError as err:
                return str(err)

        out = {{
            "no_token": push({str(complete)!r}, "--repo-id", "{USER}/new"),
            "bad_token": push({str(complete)!r}, "--repo-id", "{USER}/new", token="hf_wrong"),
            "not_yours": push({str(complete)!r}, "--repo-id", {REPO!r}, token={OTHER_TOKEN!r}),
            "incomplete": push({str(incomplete)!r}, "--repo-id", "{USER}/new", token={TOKEN!r}),
            "missing_repo": pull("{USER}/does-not-exist"),
            "missing_revision": pull({REPO!r}, revision="no-such-branch"),
            "private_anonymous": pull({PRIVATE_REPO!r}),
            "private_owner": pull({PRIVATE_REPO!r}, token={TOKEN!r}),
        }}
        try:
            pipeline("midi-generation", model="{USER}/does-not-exist")
        except OSError as err:
            out["pipeline_missing"] = str(err)
        print(json.dumps(out))
    """
    out = run_child(code, child_env(hub_server, tmp_path / "home"), REPO_ROOT)
    assert out["no_token"][0] == 1 and "needs a Hugging Face write token" in out["no_token"][1]
    assert out["bad_token"][0] == 1 and "was rejected" in out["bad_token"][1]
    assert out["not_yours"][0] == 1 and "has no write access" in out["not_yours"][1]
    assert out["incomplete"][0] == 1 and "tokenizer.json is missing" in out["incomplete"][1]
    assert f"{USER}/new" not in hub_server.state.repos  # nothing was created by the failed pushes
    assert out["missing_repo"] == f"Hub repo {USER}/does-not-exist not found (or private and your token cannot read it)"
    assert "'no-such-branch' not found" in out["missing_revision"]
    assert "not found" in out["private_anonymous"] and out["private_owner"] == "downloaded"
    assert f"{USER}/does-not-exist" in out["pipeline_missing"]
