"""Training throughput: our loop (``musenet_hf.training.run.train``) against a plain ``transformers.Trainer``.

Same model preset, same seed, same training windows and collator, same batch size and precision, in
the same invocation (each variant in its own child process, so neither inherits the other's
allocator or compiled state). Prints real (non-padding) tokens per second after a warm-up, the
ratio, the padding share of our length-grouped batches against random batches, and on a GPU the
model FLOPs utilisation (PaLM's 6N + 12·L·d·T FLOPs per token against the card's dense bf16 peak).

    python bench/train.py --data CORPUS_OR_MIDI_DIR [--preset small --batch_size 8 --steps 60 --warmup 10]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Dense bf16 tensor-core peaks (FLOP/s) from NVIDIA's datasheets (SXM parts, without sparsity).
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def flops_per_token(config, context: int) -> float:
    """PaLM appendix B: 6 N + 12 L d T, N = non-embedding weights plus the (tied) output projection."""
    d, layers = config.n_embd, config.n_layer
    n = 12 * layers * d * d + config.vocab_size * d
    return 6 * n + 12 * layers * d * context


def load(data: str, tmp: Path):
    """(splits, tokenizer) of a built corpus, or of a MIDI folder built into ``tmp``."""
    from musenet_hf.core.tokenization_musenet import MuseNetTokenizer
    from musenet_hf.data.corpus import build_corpus, is_corpus_dir, load_corpus

    if not is_corpus_dir(Path(data)):
        build_corpus([data], tmp / "corpus", MuseNetTokenizer(), num_proc=2)
        data = tmp / "corpus"
    return load_corpus(data)


def run_ours(opts, out: Path) -> dict:
    from musenet_hf.training.run import train
    from musenet_hf.training.arguments import DataArguments, ModelArguments, TrainingArguments

    train(
        ModelArguments(preset=opts.preset, context_length=opts.context_length, dropout=0.0),
        DataArguments(data=opts.data, corpus_dir=str(out / "corpus"), max_eval_windows=1),
        TrainingArguments(output_dir=str(out / "ours"), per_device_batch_size=opts.batch_size, max_steps=opts.warmup + opts.steps,
                          logging_steps=math.gcd(opts.warmup, opts.steps), eval_steps=0, save_steps=0,
                          bigram_baseline=False, disable_tqdm=True, report_to="none", torch_compile=opts.compile,
                          warmup_steps=opts.warmup, dataloader_num_workers=opts.workers, seed=0),
    )
    logs = [json.loads(line) for line in (out / "ours" / "metrics.jsonl").read_text().splitlines()]
    at = {e["step"]: e for e in logs if "tokens_per_second" in e}
    first, last = at[opts.warmup], at[opts.warmup + opts.steps]
    return {"tokens": last["tokens"] - first["tokens"], "seconds": last["seconds"] - first["seconds"]}


def run_trainer(opts, out: Path) -> dict:
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from musenet_hf.modeling.presets import build_model
    from musenet_hf.data.windows import MidiCollator, MidiWindows

    splits, tok = load(opts.data, out)
    torch.manual_seed(0)
    model = build_model(opts.preset, tok, dropout=0.0, context_length=opts.context_length)
    windows = MidiWindows(splits["train"], tok, model.config.n_positions, seed=0)
    collator = MidiCollator(tok.pad_token_id, pad_to_multiple_of=64 if torch.cuda.is_available() else None)
    marks = {}

    class CountingTrainer(Trainer):
        """Sums the real tokens of each batch on the device (no per-step host sync)."""

        seen = None

        def training_step(self, model, inputs, *args, **kwargs):
            real = inputs["attention_mask"].sum()
            self.seen = real if self.seen is None else self.seen + real
            return super().training_step(model, inputs, *args, **kwargs)

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in (opts.warmup, opts.warmup + opts.steps):
                marks[state.global_step] = (time.perf_counter(), int(trainer.seen))  # int() waits for the GPU

    args = TrainingArguments(
        output_dir=str(out / "trainer"), per_device_train_batch_size=opts.batch_size, max_steps=opts.warmup + opts.steps,
        learning_rate=6e-4, warmup_steps=opts.warmup, lr_scheduler_type="cosine", weight_decay=0.1, max_grad_norm=1.0,
        bf16=torch.cuda.is_available(), save_strategy="no", report_to="none", logging_steps=opts.warmup, seed=0,
        dataloader_num_workers=opts.workers, torch_compile=opts.compile, disable_tqdm=True,
    )
    trainer = CountingTrainer(model=model, args=args, train_dataset=windows, data_collator=collator, callbacks=[Clock()])
    trainer.train()
    (t0, n0), (t1, n1) = marks[opts.warmup], marks[opts.warmup + opts.steps]
    return {"tokens": n1 - n0, "seconds": t1 - t0, "optim": str(args.optim)}


def padding_shares(opts) -> dict:
    """Share of padded positions in one epoch: our length-grouped plan against random batches."""
    import numpy as np

    from musenet_hf.modeling.presets import MODEL_PRESETS
    from musenet_hf.data.windows import MidiWindows
    from musenet_hf.training.loop import plan_batches

    with tempfile.TemporaryDirectory() as tmp:
        splits, tok = load(opts.data, Path(tmp))
        context = opts.context_length or MODEL_PRESETS[opts.preset].n_positions
        lengths = np.asarray(MidiWindows(splits["train"], tok, context).lengths)

    def share(plan):
        return 1 - sum(lengths[b].sum() for b in plan) / sum(len(b) * lengths[b].max() for b in plan)

    order = np.random.default_rng(0).permutation(len(lengths))
    random_plan = [order[i : i + opts.batch_size] for i in range(0, len(order), opts.batch_size)]
    return {"ours": share(plan_batches(lengths, opts.batch_size, 0, 0)), "random": share(random_plan), "windows": len(lengths)}


def child(opts) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = (run_ours if opts.variant == "ours" else run_trainer)(opts, Path(tmp))
    Path(opts.result).write_text(json.dumps(result))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a built corpus or a folder of MIDI files")
    p.add_argument("--preset", default="small")
    p.add_argument("--context_length", type=int, default=None)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--steps", type=int, default=60, help="timed optimizer steps")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (allocator, compilation)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (both variants)")
    p.add_argument("--compile", action="store_true", help="torch.compile in both variants")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--variant", choices=["ours", "trainer"], help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    opts = p.parse_args()
    if opts.variant:
        return child(opts)

    import torch
    from transformers import GPT2Config

    from musenet_hf.modeling.presets import model_config
    from musenet_hf.core.tokenization_musenet import MuseNetTokenizer

    rows = {}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    for variant in ("trainer", "ours"):
        with tempfile.NamedTemporaryFile(suffix=".json") as fh:
            subprocess.run([sys.executable, __file__, *sys.argv[1:], "--variant", variant, "--result", fh.name], env=env, check=True)
            rows[variant] = json.loads(Path(fh.name).read_text())
    pad = padding_shares(opts)
    config: GPT2Config = model_config(opts.preset, MuseNetTokenizer(), context_length=opts.context_length)
    fpt = flops_per_token(config, config.n_positions)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    peak = next((v for k, v in PEAK_BF16.items() if k in device), None)

    print(f"\n{device}; preset {opts.preset} (context {config.n_positions}), batch {opts.batch_size}, "
          f"{opts.steps} timed steps after {opts.warmup}, compile={opts.compile}")
    print("| loop | real tokens/s | MFU |\n|---|---:|---:|")
    for name, label in (("trainer", f"transformers.Trainer ({rows['trainer'].get('optim')})"), ("ours", "musenet_hf train()")):
        r = rows[name]
        r["tokens_per_second"] = r["tokens"] / r["seconds"]
        mfu = f"{r['tokens_per_second'] * fpt / peak:.1%}" if peak else "-"
        print(f"| {label} | {r['tokens_per_second']:,.0f} | {mfu} |")
    ratio = rows["ours"]["tokens_per_second"] / rows["trainer"]["tokens_per_second"]
    print(f"\nratio ours / Trainer: {ratio:.2f}x")
    print(f"padding in one epoch of {pad['windows']} windows: length-grouped {pad['ours']:.1%}, random batches {pad['random']:.1%}")
    if opts.json:
        Path(opts.json).write_text(json.dumps({"device": device, "rows": rows, "ratio": ratio, "padding": pad,
                                               "flops_per_token": fpt, "options": vars(opts)}, indent=2))


if __name__ == "__main__":
    main()
