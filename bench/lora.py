"""LoRA against a full fine-tune of the same base, on the same data and steps, side by side in one run.

Each variant is ``train.py`` in its own child process (so neither inherits the other's allocator), with
the same seed, windows, batch size, steps and threads. Reported per variant: trainable parameters, peak
resident memory of the training process, real (non-padding) tokens per second after the first logging
window, size of what the run publishes (the adapter, or the full ``model.safetensors``), and bits per note
on the corpus's validation pieces before (the base: LoRA's step-0 evaluation) and after.

Build the corpus with the base's tokenizer and the default 5 % / 5 % hash split, so its validation and test
pieces are ones the bundled model never trained on either:

    musenet-hf corpus build ../shared/midi/pop909 --out /tmp/cpop --styles styles.json \\
        --tokenizer musenet_hf/default_model
    nice python bench/lora.py --data /tmp/cpop [--steps 30 --batch_size 4 --context 256 --threads 2]

Both train float32 master weights; the full fine-tune is published in bf16, as the bundled model ships.
``bench/lora_style.py`` reuses these runs for a new style learned from one groove family.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("full", "lora")


def train_argv(opts, variant: str, out: Path) -> list[str]:
    flags = {
        "model_name_or_path": opts.base, "data": opts.data, "output_dir": out, "max_steps": opts.steps,
        "per_device_batch_size": opts.batch_size, "context_length": opts.context, "warmup_steps": opts.warmup,
        "learning_rate": opts.lr_lora if variant == "lora" else opts.lr_full, "logging_steps": opts.logging_steps,
        "eval_steps": 0, "save_steps": 0, "keep_best": False, "bigram_baseline": False, "max_eval_windows": opts.eval_windows,
        "mixed_precision": "no", "cpu": True, "disable_tqdm": True, "report_to": "none", "seed": 0,
    }
    if variant == "lora":
        flags.update(lora=True, lora_rank=opts.rank, lora_alpha=2.0 * opts.rank)
    else:
        flags.update(save_dtype="bfloat16")  # published as the bundled model is (training itself keeps float32)
    argv = [sys.executable, str(REPO / "train.py")]
    for key, value in flags.items():
        argv += [f"--{key}", str(value)]
    return argv


def run_variant(opts, variant: str, root: Path) -> dict:
    out = root / variant
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=str(opts.threads), MKL_NUM_THREADS=str(opts.threads))
    log = open(root / f"{variant}.log", "w")
    proc = subprocess.Popen(train_argv(opts, variant, out), env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)  # the rusage of this child alone: its peak resident set
    proc.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    if proc.returncode != 0:
        raise SystemExit(f"{variant} run failed ({proc.returncode}); see {root / f'{variant}.log'}")
    record = json.loads((out / "training_record.json").read_text())
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    speeds = [line["tokens_per_second"] for line in lines if "tokens_per_second" in line][1:]  # first window: warm-up
    published = out / ("adapter_model.safetensors" if variant == "lora" else "model.safetensors")
    lora = record.get("lora") or {}
    return {
        "variant": variant,
        "trainable_parameters": lora.get("trainable_parameters") or total_parameters(out),
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "tokens_per_second": sum(speeds) / len(speeds) if speeds else None,
        "train_seconds": record["train_seconds"],
        "published_mb": published.stat().st_size / 2**20,
        "bits_per_note_before": (record.get("initial_metrics") or {}).get("bits_per_note"),
        "bits_per_note_after": record["metrics"]["bits_per_note"],
        "eval_notes": record["eval"]["eval_notes"],
        "out": str(out),
    }


def total_parameters(folder: Path) -> int:
    """Parameters stored in a full checkpoint (the tied output head once): what a full fine-tune trains."""
    import math

    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as fh:
        return sum(math.prod(fh.get_slice(name).get_shape()) for name in fh.keys())


def make_parser(description: str = __doc__) -> argparse.ArgumentParser:
    """The training options both variants share (``lora_style.py`` adds its own)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default=str(REPO / "musenet_hf" / "default_model"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--context", type=int, default=256, help="tokens per training window")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--lr_full", type=float, default=1e-4, help="full fine-tune peak learning rate")
    parser.add_argument("--lr_lora", type=float, default=1e-3, help="LoRA peak learning rate (LoRA takes ~10x)")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval_windows", type=int, default=96, help="validation windows scored before and after")
    parser.add_argument("--logging_steps", type=int, default=5)
    parser.add_argument("--out", default=None, help="keep the runs here (default: a temporary folder)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    parser.add_argument("--data", required=True, help="a corpus built with the base's tokenizer (or a MIDI folder)")
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-lora-") as tmp:
        root = Path(opts.out or tmp)
        root.mkdir(parents=True, exist_ok=True)
        rows = [run_variant(opts, variant, root) for variant in VARIANTS]
    full, lora = rows
    print(f"{opts.steps} steps x {opts.batch_size} windows x {opts.context} tokens, {opts.threads} threads, base {opts.base}")
    print(f"| | full fine-tune | LoRA r={opts.rank} | LoRA / full |")
    print("|---|---:|---:|---:|")
    for key, fmt in (("trainable_parameters", "{:,}"), ("peak_rss_mb", "{:.0f} MB"), ("tokens_per_second", "{:.0f}"),
                     ("train_seconds", "{:.0f} s"), ("published_mb", "{:.2f} MB"), ("bits_per_note_after", "{:.3f}")):
        ratio = lora[key] / full[key] if full[key] else float("nan")
        print(f"| {key} | {fmt.format(full[key])} | {fmt.format(lora[key])} | {ratio:.3f} |")
    print(f"bits/note of the base on the same {lora['eval_notes']} validation notes: {lora['bits_per_note_before']:.3f}")
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
