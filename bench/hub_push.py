"""Cost of ``push_to_hub.py`` against a bare ``HfApi.upload_folder`` of the same checkpoint.

Both upload to the local Hub of ``tests/hub_server.py`` (127.0.0.1, in memory), so the network is out
of the picture and the difference is what push_checkpoint adds: checking the checkpoint, staging the
remote code and configs, generating ``sample.mid`` and writing the model card. Randomly initialised
checkpoints of each preset; prints one table row per preset and the push / bare-upload ratio.

    python bench/hub_push.py [--presets tiny small] [--sample_seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from hub_server import HubServer  # noqa: E402  (tests/ is not a package)

TOKEN, USER = "hf_bench", "bench"
# A training record with the fields the card reads; the figures are placeholders, not measurements.
RECORD = {"corpus": {"path": "random init (benchmark)"}, "training_args": {}, "preset": None,
          "metrics": {"eval_loss": None, "perplexity": None, "bits_per_note": None, "baseline_bits_per_note": None},
          "train_seconds": 0.0, "hardware": "none", "styles": ["unknown"], "instruments": ["piano"]}


def save_checkpoint(preset: str, out: Path) -> Path:
    from musenet_hf import MuseNetTokenizer
    from musenet_hf.modeling.presets import build_model

    tokenizer = MuseNetTokenizer()
    build_model(preset, tokenizer).save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "training_record.json").write_text(json.dumps({**RECORD, "preset": preset}))
    return out


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--sample_seconds", type=float, default=20.0)
    args = parser.parse_args()
    with HubServer({TOKEN: USER}) as server, tempfile.TemporaryDirectory() as tmp:
        # huggingface_hub reads these at import: set them before anything imports it.
        os.environ.update(HF_ENDPOINT=server.url, HF_HOME=str(Path(tmp) / "home"), HF_TOKEN=TOKEN,
                          HF_HUB_DISABLE_PROGRESS_BARS="1")
        from huggingface_hub import HfApi

        from musenet_hf.hub.push import push_checkpoint

        api = HfApi()
        print(f"sample: {args.sample_seconds:g} s of music; torch threads: {os.environ.get('OMP_NUM_THREADS', 'default')}")
        print("| preset | weights | bare upload_folder | push_to_hub | ratio |")
        print("|---|---:|---:|---:|---:|")
        for preset in args.presets:
            checkpoint = save_checkpoint(preset, Path(tmp) / preset)
            bare = f"{USER}/{preset}-bare"
            api.create_repo(bare)
            bare_s = timed(lambda bare=bare, checkpoint=checkpoint: api.upload_folder(repo_id=bare, folder_path=checkpoint))
            repo = f"{USER}/{preset}"
            push_s = timed(lambda checkpoint=checkpoint, repo=repo: push_checkpoint(checkpoint, repo, sample_seconds=args.sample_seconds))
            size_mb = (checkpoint / "model.safetensors").stat().st_size / 1e6
            print(f"| {preset} | {size_mb:.1f} MB | {bare_s:.2f} s | {push_s:.2f} s | {push_s / bare_s:.1f}x |")


if __name__ == "__main__":
    main()
