"""The training loop: data order, learning-rate schedule, optimizer, one step, and the loop around it.

Why it is shaped this way:

- Data order is a pure function of (seed, epoch): every process builds the same length-grouped batch
  plan and takes its own slice, so a resume only needs (epoch, micro-batches consumed) to continue
  with exactly the batches an uninterrupted run would have seen, on any number of processes.
- The loss is the sum of next-token NLL over the step's real tokens on all processes divided by
  their global count (one all-reduce of a counter): padding never dilutes it, and micro-batches or
  processes with fewer tokens do not weigh more.
- Batches are right-padded, so causal attention needs no padding mask (see ``data.windows.to_device``).
- The learning rate is a closed-form function of the step (warmup + cosine), so the schedule
  resumes from the step alone, and can be fitted to a wall-clock budget once the step time is known.
- SIGINT/SIGTERM set a flag checked between steps: the run saves a checkpoint and exits cleanly.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from transformers.utils import logging

from ..data.windows import LABEL_IGNORE, to_device
from ..evaluation.likelihood import summed_nll
from .accelerator import StopOnSignal, loader_workers
from .arguments import TrainingArguments
from .checkpointing import LoopState, save_checkpoint
from .lora import save_weights
from .metrics import MetricsLog
from .record import best_dir

logger = logging.get_logger(__name__)

# Windows are sorted by length inside groups of this many batches: neighbours in length share a batch
# (little padding) while the order of batches across the epoch stays random.
LENGTH_GROUP_BATCHES = 64
# Multi-process runs agree on stopping (signal, time budget) with one all-reduce every this many steps;
# on a GPU each such check waits for the step to finish, so it is not done every step.
CONTROL_INTERVAL = 8
# The time budget fits the schedule from the mean step time over these steps (after the first ones,
# which include compilation and allocator warm-up).
TIME_PROBE_STEPS = (10, 40)
WORKER_SEED_STRIDE = 1_000_003  # a prime: (seed, epoch) pairs map to distinct DataLoader generator seeds


def plan_batches(lengths, batch_size: int, seed: int, epoch: int, num_processes: int = 1, process_index: int = 0) -> list[list[int]]:
    """This process's micro-batches (lists of window indices) for one epoch.

    Shuffled by (seed, epoch), then sorted by length inside groups of ``LENGTH_GROUP_BATCHES``
    batches, and the batches shuffled again; process ``p`` takes batches ``p, p + n, ...`` and every
    process gets the same count (the remainder is dropped), so collective calls stay in step.

    Args:
        lengths (`Sequence[int]`): every window's length in tokens.
        batch_size (`int`): windows per micro-batch.
        seed (`int`) and epoch (`int`): fix the order.
        num_processes (`int`, defaults to 1) and process_index (`int`, defaults to 0): which share.
    """
    rng = np.random.default_rng([seed, epoch])
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    group = batch_size * LENGTH_GROUP_BATCHES
    chunks = []
    for start in range(0, len(order), group):
        part = order[start : start + group]
        part = part[np.argsort(-lengths[part], kind="stable")]
        chunks += [part[i : i + batch_size].tolist() for i in range(0, len(part), batch_size)]
    chunks = [chunks[i] for i in rng.permutation(len(chunks))]
    per_process = len(chunks) // num_processes
    return chunks[process_index::num_processes][:per_process]


def learning_rate_at(step: int, total: int, warmup: int, peak: float, min_ratio: float) -> float:
    """Linear warmup over ``warmup`` steps, then cosine decay from ``peak`` to ``peak * min_ratio`` at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def make_optimizer(model, args: TrainingArguments, device: torch.device) -> torch.optim.Optimizer:
    """AdamW without decay on biases and LayerNorm gains; fused kernels on CUDA and CPU.

    Args:
        model: the model to train (parameters with ``requires_grad`` only).
        args (`TrainingArguments`): learning rate, betas and weight decay.
        device (`torch.device`): where the parameters live.
    """
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = {"fused": True} if device.type in ("cuda", "cpu") else {}
    return torch.optim.AdamW(groups, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), **fused)


def fit_schedule_to_budget(accelerator, state: LoopState, probe: dict, budget: float, start: float, seconds_before: float,
                           first_step: int) -> None:
    """Shorten the schedule so the cosine ends when the time budget does (measured step time).

    Args:
        accelerator (`accelerate.Accelerator`): every process must run the same number of steps.
        state (`LoopState`): its ``total_steps`` is shortened.
        probe (`dict`): steps since ``first_step`` -> seconds, filled at the ``TIME_PROBE_STEPS``.
        budget (`float`): seconds of training allowed.
        start (`float`): ``time.perf_counter()`` when this process's loop started.
        seconds_before (`float`): seconds trained before a resume.
        first_step (`int`): the step this process's loop started from.
    """
    from accelerate.utils import broadcast_object_list

    if accelerator.device.type == "cuda":
        torch.cuda.synchronize()  # the host runs ahead of the GPU: time finished steps
    elapsed = seconds_before + time.perf_counter() - start
    probe[state.step - first_step] = elapsed
    if len(probe) < 2:
        return
    (a, ta), (b, tb) = sorted(probe.items())
    per_step = (tb - ta) / (b - a)
    fitted = [min(state.total_steps, state.step + int((budget - elapsed) / per_step))]
    if accelerator.num_processes > 1:
        broadcast_object_list(fitted)  # every process must run the same number of steps
    if fitted[0] < state.total_steps and accelerator.is_main_process:
        logger.warning(f"{per_step:.3f} s/step: the schedule ends at step {fitted[0]} to fit the time budget")
    state.total_steps = max(fitted[0], state.step + 1)


class TrainingLoop:
    """Optimizer steps until ``state.total_steps``, the time budget or a signal (see the module docstring).

    Args:
        accelerator (`accelerate.Accelerator`): the prepared run.
        forward: the model to call (the prepared model, or its ``torch.compile`` wrapper).
        model: the prepared model (gradient sync, clipping, saving).
        optimizer (`torch.optim.Optimizer`): the prepared optimizer; its learning rate is set every step.
        windows (`MidiWindows`): the training windows.
        collator (`MidiCollator`): batches them.
        args (`TrainingArguments`): the run's settings.
        state (`LoopState`): where the loop starts; updated in place.
        log (`MetricsLog`): receives loss, learning rate, speed and evaluations.
        key (`dict`): the resume key saved with each checkpoint.
        run_eval (`Callable[[], EvalTotals | None]`): one evaluation (``None`` without validation windows).
    """

    def __init__(self, accelerator, forward, model, optimizer, windows, collator, args: TrainingArguments,
                 state: LoopState, log: MetricsLog, key: dict, run_eval):
        self.accelerator, self.forward, self.model, self.optimizer = accelerator, forward, model, optimizer
        self.windows, self.collator, self.args, self.state, self.log, self.key = windows, collator, args, state, log, key
        self.run_eval = run_eval
        self.n, self.device = accelerator.num_processes, accelerator.device
        self.budget = args.max_train_minutes * 60.0
        self.start, self.seconds_before, self.first_step = time.perf_counter(), state.train_seconds, state.step
        self.probe: dict[int, float] = {}
        self.running = torch.zeros(3, dtype=torch.float64, device=self.device)  # [nll, targets, real tokens] since the last log
        self.window_start = time.perf_counter()
        self.lr = args.learning_rate
        self.grad_norm = None
        self.workers = args.dataloader_num_workers
        if self.workers < 0:
            self.workers = loader_workers(self.device)

    def micro_batches(self):
        """This process's micro-batches from the loop state on, across epochs, as collated CPU tensors."""
        from torch.utils.data import DataLoader

        args, state, accum = self.args, self.state, self.args.gradient_accumulation_steps
        while True:
            self.windows.set_epoch(state.epoch)
            plan = plan_batches(self.windows.lengths, args.per_device_batch_size, args.seed, state.epoch,
                                self.n, self.accelerator.process_index)
            usable = len(plan) // accum * accum
            # an own generator: otherwise each new iterator draws its worker seed from the global torch RNG,
            # and a resumed run (one iterator more) would see different dropout masks
            generator = torch.Generator().manual_seed(args.seed * WORKER_SEED_STRIDE + state.epoch)
            loader = DataLoader(self.windows, batch_sampler=plan[state.micro_in_epoch : usable], collate_fn=self.collator,
                                num_workers=self.workers, pin_memory=self.device.type == "cuda",
                                generator=generator)
            yield from loader
            state.epoch, state.micro_in_epoch = state.epoch + 1, 0

    def step(self, micro: list[dict]) -> None:
        """One optimizer step over ``micro`` (this process's micro-batches), loss normalised by global tokens."""
        args, state, n = self.args, self.state, self.n
        state.micro_in_epoch += len(micro)
        targets = sum(int((b["labels"][:, 1:] != LABEL_IGNORE).sum()) for b in micro)
        real = sum(int(b["attention_mask"].sum()) for b in micro)
        global_targets = float(targets)  # a Python number: building a CUDA tensor from it would wait for the GPU
        if n > 1:
            pinned = torch.tensor([global_targets], dtype=torch.float64, pin_memory=self.device.type == "cuda")
            global_targets = self.accelerator.reduce(pinned.to(self.device, non_blocking=True), reduction="sum")[0]
        self.lr = learning_rate_at(state.step, state.total_steps, args.warmup_steps, args.learning_rate, args.min_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        for i, batch in enumerate(micro):
            input_ids, mask, labels = to_device(batch, self.device)
            # gradients are all-reduced once per step, on the last micro-batch
            with nullcontext() if i == len(micro) - 1 else self.accelerator.no_sync(self.model):
                logits = self.forward(input_ids=input_ids, attention_mask=mask).logits
                nll = summed_nll(logits, labels)
                # DDP averages gradients over processes: scale by n so the result is sum(nll) / global tokens
                self.accelerator.backward(nll * n / global_targets)
            self.running[0] += nll.detach().double()
        self.running[1] += targets
        self.running[2] += real
        if args.max_grad_norm:
            self.grad_norm = self.accelerator.clip_grad_norm_(self.model.parameters(), args.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        state.step += 1
        state.train_seconds = self.seconds_before + time.perf_counter() - self.start

    def flush_log(self) -> dict:
        """Reduce the running sums over processes, count the tokens, log loss and speed."""
        totals = (self.accelerator.reduce(self.running.clone(), reduction="sum") if self.n > 1 else self.running).tolist()
        self.running.zero_()
        if not totals[1]:
            return {}
        now = time.perf_counter()
        self.state.tokens += int(totals[2])
        speed = totals[2] / max(now - self.window_start, 1e-9)
        values = {"loss": totals[0] / totals[1], "learning_rate": self.lr, "tokens_per_second": speed,
                  "tokens": self.state.tokens, "epoch": self.state.epoch, "seconds": round(self.state.train_seconds, 2)}
        if self.grad_norm is not None:
            values["grad_norm"] = float(self.grad_norm)
        self.window_start = now
        self.log.log(self.state.step, values)
        return values

    def periodic_eval(self) -> None:
        """Evaluate; with ``keep_best``, save the weights when the validation loss is the lowest yet."""
        totals = self.run_eval()
        if totals is None:
            return
        metrics = totals.metrics()
        self.log.log(self.state.step, metrics)
        best = self.state.best_metrics
        if not self.args.keep_best or (best is not None and best["eval_loss"] <= metrics["eval_loss"]):
            return
        self.state.best_step, self.state.best_metrics = self.state.step, metrics
        weights = self.accelerator.get_state_dict(self.model)
        if self.accelerator.is_main_process:
            save_weights(self.accelerator.unwrap_model(self.model), best_dir(Path(self.args.output_dir), self.state.step), weights)

    def stop_reason(self, signals: StopOnSignal) -> str | None:
        """'signal' or 'time budget' once any process has one; checked by all processes at the same steps."""
        over_time = bool(self.budget) and self.state.train_seconds >= self.budget
        flags = [float(signals.requested), float(over_time)]
        if self.n > 1:
            if self.state.step % CONTROL_INTERVAL:
                return None
            flags = self.accelerator.reduce(torch.tensor(flags, device=self.device), reduction="sum").tolist()
        return "signal" if flags[0] else "time budget" if flags[1] else None

    def run(self) -> bool:
        """Train; returns True if a signal stopped the run (a checkpoint is saved either way when stopping early)."""
        from tqdm.auto import tqdm

        args, state, accum = self.args, self.state, self.args.gradient_accumulation_steps
        bar = tqdm(total=state.total_steps, initial=state.step, desc="train", dynamic_ncols=True,
                   disable=not self.accelerator.is_local_main_process or args.disable_tqdm)
        batches = self.micro_batches()
        reason = None
        with StopOnSignal() as signals:
            while state.step < state.total_steps and reason is None:
                self.step([next(batches) for _ in range(accum)])
                bar.update(1)
                saving = args.save_steps and state.step % args.save_steps == 0 and state.step < state.total_steps
                if state.step % args.logging_steps == 0 or saving or state.step == state.total_steps:
                    values = self.flush_log()
                    if values:
                        bar.set_postfix(loss=f"{values['loss']:.3f}", tok_s=f"{values['tokens_per_second']:,.0f}")
                if self.budget and state.step - self.first_step in TIME_PROBE_STEPS:
                    fit_schedule_to_budget(self.accelerator, state, self.probe, self.budget, self.start, self.seconds_before,
                                           self.first_step)
                if args.eval_steps and state.step % args.eval_steps == 0 and state.step < state.total_steps:
                    self.periodic_eval()
                if saving:
                    save_checkpoint(self.accelerator, args, state, self.key)
                reason = self.stop_reason(signals)
        bar.close()
        if reason:
            self.flush_log()
            if self.accelerator.is_main_process:
                logger.warning(f"stopping at step {state.step} ({reason}); saving a checkpoint")
        if reason or args.save_steps:
            save_checkpoint(self.accelerator, args, state, self.key)
        return reason == "signal"
