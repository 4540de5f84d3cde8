"""The real Hugging Face Hub: push a tiny checkpoint to a new private repo, load it back by repo id
(with the package, and without it through trust_remote_code), then delete the repo.

Runs only with a token (HF_TOKEN) and a reachable huggingface.co; everywhere else it is skipped.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest
from hub_fixtures import BLOCK_PACKAGE, REPO_ROOT, child_env, fingerprint, make_checkpoint, run_child

HUB_HOST = "huggingface.co"
CONNECT_TIMEOUT_S = 3.0


def hub_reachable() -> bool:
    try:
        socket.create_connection((HUB_HOST, 443), timeout=CONNECT_TIMEOUT_S).close()
        return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("HF_TOKEN"), reason="needs HF_TOKEN (a write token) for the real Hub"),
]


def test_push_and_load_on_the_real_hub(tmp_path):
    if not hub_reachable():
        pytest.skip(f"{HUB_HOST}:443 is not reachable")
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    name = f"musenet-hf-test-{uuid.uuid4().hex[:8]}"
    env = child_env(None, tmp_path / "home", os.environ["HF_TOKEN"])
    push_and_load = f"""
        import json, sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from huggingface_hub import HfApi
        from push_to_hub import main
        repo_id = HfApi().whoami()["name"] + "/{name}"
        code = main([{str(checkpoint)!r}, "--repo-id", repo_id, "--private", "--sample-seconds", "1"])
        import musenet_hf
        from transformers import AutoModelForCausalLM, pipeline
        model = AutoModelForCausalLM.from_pretrained(repo_id)
        piece = pipeline("midi-generation", model=repo_id)(seconds=1, seed=0)[0]
        print(json.dumps({{"code": code, "repo_id": repo_id, "notes": piece["notes"],
                          "main": float(model.transformer.wte.weight.double().sum())}}))
    """
    delete = f"""
        import json
        from huggingface_hub import HfApi
        api = HfApi()
        api.delete_repo(api.whoami()["name"] + "/{name}", missing_ok=True)
        print(json.dumps("deleted"))
    """
    try:
        out = run_child(push_and_load, env, tmp_path)
        assert out["code"] == 0 and out["main"] == pytest.approx(fingerprint(checkpoint))
        no_package = BLOCK_PACKAGE + f"""
from transformers import pipeline
piece = pipeline("midi-generation", model={out["repo_id"]!r}, trust_remote_code=True)(seconds=1, seed=0)[0]
print(json.dumps({{"notes": piece["notes"]}}))
"""
        no_package_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
        remote = run_child("import json\n" + no_package, no_package_env, tmp_path)
        assert remote["notes"] == out["notes"]  # same weights, same seed, same code: same music
    finally:
        run_child(delete, env, tmp_path)
