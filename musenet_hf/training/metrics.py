"""What a run measures: the metrics log (``OUTPUT_DIR/metrics.jsonl`` + Accelerate trackers), the
fixed validation windows, the model's evaluation over them, and the bigram baseline on the same ones.

Evaluation always scores the same windows (spread evenly over the validation split), so successive
evaluations of one run, and runs with the same corpus, compare like with like.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..data.windows import to_device
from ..evaluation.likelihood import BigramBaseline, EvalTotals, note_on_table, shifted_nll

METRICS_FILE = "metrics.jsonl"
EVAL_BATCH_FACTOR = 2  # no activations are kept for backward, so evaluation fits twice the training batch


class MetricsLog:
    """JSON lines in ``OUTPUT_DIR/metrics.jsonl`` (main process), mirrored to Accelerate's trackers.

    Args:
        accelerator (`accelerate.Accelerator`): only its main process writes.
        output_dir (`Path`): the run folder.
        resumed_step (`int`, *optional*): the step a resumed run continues from: lines logged after it
            (by a run killed past its last checkpoint) are dropped, since those steps are about to be redone.
    """

    def __init__(self, accelerator, output_dir: Path, resumed_step: int | None):
        self.accelerator = accelerator
        self.path = output_dir / METRICS_FILE
        if accelerator.is_main_process and resumed_step is not None and self.path.is_file():
            kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line).get("step", 0) <= resumed_step]
            self.path.write_text("".join(line + "\n" for line in kept))

    def log(self, step: int, values: dict) -> None:
        """Append ``{"step": step, **values}``; numbers also go to the trackers."""
        if not self.accelerator.is_main_process:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": step, **values}) + "\n")
        if self.accelerator.trackers:
            self.accelerator.log({k: v for k, v in values.items() if isinstance(v, (int, float))}, step=step)


def eval_batches(windows, batch_size: int, limit: int, num_processes: int = 1, process_index: int = 0) -> list[list[int]]:
    """This process's share of the fixed validation windows, as batches of window indices.

    Args:
        windows (`MidiWindows`): the validation windows.
        batch_size (`int`): windows per batch.
        limit (`int`): windows scored in all (spread evenly over the split), longest first.
        num_processes (`int`, defaults to 1) and process_index (`int`, defaults to 0): which share.
    """
    n = len(windows)
    chosen = np.unique(np.linspace(0, n - 1, min(limit, n)).astype(np.int64)) if n else np.zeros(0, np.int64)
    chosen = chosen[np.argsort(-np.asarray(windows.lengths)[chosen], kind="stable")]
    mine = chosen[process_index::num_processes].tolist()
    return [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]


@torch.no_grad()
def evaluate(model, windows, batches, collator, accelerator, note_on: torch.Tensor) -> EvalTotals:
    """Summed NLL, tokens and notes over the fixed validation windows, all processes together.

    Args:
        model: the (prepared or compiled) model; left in train mode afterwards.
        windows (`MidiWindows`): the validation windows.
        batches (`list[list[int]]`): this process's ``eval_batches``.
        collator (`MidiCollator`): batches the windows.
        accelerator (`accelerate.Accelerator`): device, autocast and the sum over processes.
        note_on (`torch.Tensor`): bool ``[V]`` on the device: which ids are note-ons.
    """
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=accelerator.device)
    for idx in batches:
        input_ids, mask, labels = to_device(collator([windows[i] for i in idx]), accelerator.device)
        with accelerator.autocast():
            logits = model(input_ids=input_ids, attention_mask=mask).logits
        sums += shifted_nll(logits, labels, note_on)
    sums = accelerator.reduce(sums, reduction="sum")
    model.train()
    nll, tokens, notes = sums.tolist()
    return EvalTotals(nll, int(tokens), int(notes))


def baseline_metrics(splits, windows, batches: list[list[int]], tokenizer) -> dict:
    """The bigram baseline, fitted on the training pieces, scored on the same validation windows as the model.

    Args:
        splits (`DatasetDict`): the corpus; its ``train`` split is counted.
        windows (`MidiWindows`): the validation windows.
        batches (`list[list[int]]`): every process's ``eval_batches`` together (one process's view).
        tokenizer (`MuseNetTokenizer`): the vocabulary size and note-on ids.
    """
    train = splits["train"].with_format("numpy", columns=["input_ids"])
    model = BigramBaseline.fit_tuned((row["input_ids"] for row in train), len(tokenizer))
    ids = [windows[i]["input_ids"] for idx in batches for i in idx]
    metrics = model.totals(ids, note_on_table(tokenizer.musenet_vocab)).metrics()
    return {"model": "token bigram interpolated with an add-one unigram", "alpha": model.alpha, **metrics}
