"""musenet_hf.hub.push: staging a repo folder and pushing it, through huggingface_hub's real client
against the local Hub of ``hub_server.py`` (see hub_fixtures.py for why the Hub talk runs in children);
then loading by repo id, with and without the package, online and offline."""

from __future__ import annotations

import json
import re

import mido
import pytest
from hub_fixtures import (
    BLOCK_PACKAGE,
    CHILD_TIMEOUT_S,
    OTHER_TOKEN,
    REPO_ROOT,
    SAMPLE_SECONDS,
    TOKEN,
    USER,
    child_env,
    fingerprint,
    make_checkpoint,
    offline_env,
    run_child,
)
from huggingface_hub import ModelCard

from musenet_hf.core.configuration_musenet_remote import REMOTE_PIPELINES_KEY
from musenet_hf.hub.checkpoint import TRAINING_RECORD
from musenet_hf.hub.push import stage_repo
from musenet_hf.hub.sample import SampleOptions

REPO = f"{USER}/musenet-tiny"
PRIVATE_REPO = f"{USER}/musenet-private"
CLI_REPO = f"{USER}/musenet-cli"


# --- staging (no Hub) -----------------------------------------------------------------------------
def test_stage_repo_from_a_config_saved_by_a_pipeline(tmp_path):
    """Pipeline.save_pretrained leaves custom_pipelines in config.json: staging (whose sample loads the
    checkpoint with the package's pipeline) still works and moves it out of the uploaded config."""
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    config = json.loads((checkpoint / "config.json").read_text())
    config["custom_pipelines"] = {"midi-generation": {"impl": "pipeline_midi_generation.MidiGenerationPipeline",
                                                      "pt": ["AutoModelForCausalLM"], "type": "text"}}
    (checkpoint / "config.json").write_text(json.dumps(config))
    files = stage_repo(checkpoint, tmp_path / "staged", "a/b", SampleOptions(seconds=SAMPLE_SECONDS))
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
    record = json.loads((tmp_path / "run" / TRAINING_RECORD).read_text())
    stage_repo(tmp_path / "run", tmp_path / "staged", "a/songs", SampleOptions(seconds=SAMPLE_SECONDS))
    card = ModelCard.load(tmp_path / "staged" / "README.md")
    assert card.data.datasets == [s["name"] for s in record["corpus"]["sources"]]
    assert {r.metric_type: r.metric_value for r in card.data.eval_results}["bits_per_note"] == record["metrics"]["bits_per_note"]
    assert f"| bits per note | {record['metrics']['bits_per_note']:.3f} |" in card.text
    assert "not recorded" not in card.text
    assert (tmp_path / "staged" / "sample.mid").stat().st_size > 0



# --- round trips through the local Hub ------------------------------------------------------------
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
        from musenet_hf.cli import main as cli_main
        common = ["--sample-seconds", "{SAMPLE_SECONDS}"]
        codes = [main([{str(v1)!r}, "--repo-id", {REPO!r}, *common]),
                 main([{str(v2)!r}, "--repo-id", {REPO!r}, "--commit-message", "v2: second seed", *common]),
                 main([{str(v1)!r}, "--repo-id", {REPO!r}, "--revision", "dev", "--sample-style", "jazz",
                       "--sample-instruments", "bass, piano", "--sample-seed", "3", *common]),
                 main([{str(v1)!r}, "--repo-id", {PRIVATE_REPO!r}, "--private", *common]),
                 main([{str(v1)!r}, "--repo-id", "bare-name", *common]),
                 cli_main(["push", {str(v1)!r}, "--repo-id", {CLI_REPO!r}, *common])]
        print(json.dumps(codes))
    """
    assert run_child(code, child_env(hub_server, root / "home", TOKEN), root) == [0, 0, 0, 0, 0, 0]
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


def test_musenet_hf_push_uploads_the_same_files_as_push_to_hub(pushed, hub_server):
    via_cli = hub_server.state.repos[CLI_REPO].resolve("main")
    via_script = pushed["repo"].resolve(pushed["commit_v1"])
    assert set(via_cli.files) == set(via_script.files)
    assert via_cli.files["model.safetensors"] == via_script.files["model.safetensors"]
    assert via_cli.files["sample.mid"] == via_script.files["sample.mid"]  # same checkpoint, same seed: same sample


# --- push errors: one line on stderr, exit status 1, nothing created -------------------------------
@pytest.fixture(scope="module")
def alices_repo(hub_server):
    """A repo of alice's on the local Hub, for the pushes of other users."""
    repo_id = f"{USER}/existing"
    if repo_id not in hub_server.state.repos:
        hub_server.state.create_repo(USER, "existing", USER, private=False)
    return repo_id


def push_in_child(server, home, argv: list[str], token: str | None) -> list:
    """push_to_hub.py's main() in a child with HF_TOKEN set to ``token`` (or unset): [exit status, stderr]."""
    code = f"""
        import contextlib, io, json, sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from push_to_hub import main
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            status = main({argv!r} + ["--sample-seconds", "{SAMPLE_SECONDS}"])
        print(json.dumps([status, err.getvalue()]))
    """
    home.mkdir(parents=True, exist_ok=True)
    return run_child(code, child_env(server, home, token), home)


@pytest.mark.slow
@pytest.mark.parametrize("scenario, token, message", [
    ("no_token", None, "needs a Hugging Face write token"),
    ("bad_token", "hf_wrong", "token was rejected (invalid or expired)"),
    ("not_yours", OTHER_TOKEN, "token has no write access"),
    ("incomplete", TOKEN, "tokenizer.json is missing"),
])
def test_push_errors_are_one_clear_line(hub_server, alices_repo, tmp_path, scenario, token, message):
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    if scenario == "incomplete":
        (checkpoint / "tokenizer.json").unlink()
    repo_id = alices_repo if scenario == "not_yours" else f"{USER}/new-{scenario.replace('_', '-')}"
    commits_before = len(hub_server.state.repos[alices_repo].commits)
    status, stderr = push_in_child(hub_server, tmp_path / "home", [str(checkpoint), "--repo-id", repo_id], token)
    assert status == 1 and stderr.startswith("push_to_hub.py: error: ") and message in stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert f"{USER}/new-{scenario.replace('_', '-')}" not in hub_server.state.repos  # nothing was created
    assert len(hub_server.state.repos[alices_repo].commits) == commits_before
