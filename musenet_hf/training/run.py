"""Training and fine-tuning of MuseNet models with Accelerate: one loop from one CPU to many GPUs.

The loop, and why it is shaped this way:

- Data order is a pure function of (seed, epoch): every process builds the same length-grouped batch
  plan and takes its own slice, so a resume only needs (epoch, micro-batches consumed) to continue
  with exactly the batches an uninterrupted run would have seen, on any number of processes.
- The loss is the sum of next-token NLL over the step's real tokens on all processes divided by
  their global count (one all-reduce of a counter): padding never dilutes it, and micro-batches or
  processes with fewer tokens do not weigh more.
- Batches are right-padded, so causal attention needs no padding mask (``attention_mask=None``):
  SDPA then takes its fused causal kernels instead of a materialised [B, 1, T, T] mask.
- The learning rate is a closed-form function of the step (warmup + cosine), so the schedule
  resumes from the step alone, and can be fitted to a wall-clock budget once the step time is known.
- SIGINT/SIGTERM set a flag checked between steps: the run saves a checkpoint and exits cleanly.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import signal
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..evaluation.likelihood import IGNORE_INDEX, BigramBaseline, EvalTotals, note_on_table, shifted_nll, summed_nll
from ..modeling.presets import ATTENTION, build_model, default_generation_config
from . import checkpointing, lora
from .arguments import GPU_LOADER_WORKERS, DataArguments, ModelArguments, TrainingArguments, is_corpus_dir, validate_arguments

METRICS_FILE = "metrics.jsonl"
RECORD_FILE = "training_record.json"
BEST_PREFIX = "best-step-"  # OUTPUT_DIR/best-step-N: save_pretrained weights of the best evaluation so far
# Windows are sorted by length inside groups of this many batches: neighbours in length share a batch
# (little padding) while the order of batches across the epoch stays random.
LENGTH_GROUP_BATCHES = 64
# Multi-process runs agree on stopping (signal, time budget) with one all-reduce every this many steps;
# on a GPU each such check waits for the step to finish, so it is not done every step.
CONTROL_INTERVAL = 8
# The time budget fits the schedule from the mean step time over these steps (after the first ones,
# which include compilation and allocator warm-up).
TIME_PROBE_STEPS = (10, 40)
PAD_MULTIPLE_GPU = 64  # tensor-core friendly sequence lengths; also bounds torch.compile's shape variants
EVAL_BATCH_FACTOR = 2  # no activations are kept for backward, so evaluation fits twice the batch


@dataclass
class LoopState:
    """Where the loop is; saved in every checkpoint manifest (JSON, never pickled)."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    micro_in_epoch: int = 0  # micro-batches of this epoch this process has consumed
    tokens: int = 0  # real (non-padding) tokens trained on, all processes
    train_seconds: float = 0.0  # wall-clock time spent in the loop (evaluations included)
    total_steps: int = 0  # length of the learning-rate schedule
    best_step: int = -1  # step of the lowest validation loss so far (its weights are in OUTPUT_DIR/best-step-N)
    best_metrics: dict | None = None
    initial_metrics: dict | None = None  # validation before the first step (the base, for a LoRA fine-tune)


# --- data ------------------------------------------------------------------------------------------
def plan_batches(lengths, batch_size: int, seed: int, epoch: int, num_processes: int = 1, process_index: int = 0) -> list[list[int]]:
    """This process's micro-batches (lists of window indices) for one epoch.

    Shuffled by (seed, epoch), then sorted by length inside groups of ``LENGTH_GROUP_BATCHES``
    batches, and the batches shuffled again; process ``p`` takes batches ``p, p + n, ...`` and every
    process gets the same count (the remainder is dropped), so collective calls stay in step.
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


def default_tokenizer(model_args: ModelArguments):
    from ..core.tokenization_musenet import MuseNetTokenizer

    if model_args.model_name_or_path:
        return MuseNetTokenizer.from_pretrained(model_args.model_name_or_path)
    if model_args.tokenizer_name_or_path:
        return MuseNetTokenizer.from_pretrained(model_args.tokenizer_name_or_path)
    return MuseNetTokenizer()


def load_data(model_args: ModelArguments, data_args: DataArguments, args: TrainingArguments, accelerator):
    """(splits, tokenizer, corpus description) from a built corpus, or from a MIDI folder built here.

    A MIDI folder is built once, by the main process, into ``corpus_dir`` (reused when unchanged).
    When fine-tuning, the data's tokenizer must extend the checkpoint's (same ids, new styles after).
    """
    from ..data.corpus import build_corpus, load_corpus

    data = Path(data_args.data)
    base = default_tokenizer(model_args)
    if is_corpus_dir(data):
        corpus = data
    else:
        corpus = Path(data_args.corpus_dir or Path(args.output_dir) / "corpus")
        styles = {str(data.resolve()): data_args.style} if data_args.style else None
        if accelerator.is_main_process:
            build_corpus([data], corpus, base, styles=styles, num_proc=data_args.num_proc)
        accelerator.wait_for_everyone()
    splits, tokenizer = load_corpus(corpus)
    known = base.musenet_vocab.tokens
    # a built corpus trained from scratch brings its own encoding; a checkpoint or named tokenizer must agree with it
    pinned = model_args.model_name_or_path or model_args.tokenizer_name_or_path
    if pinned and tokenizer.musenet_vocab.tokens[: len(known)] != known:
        raise ValueError(f"the corpus at {corpus} was built with a different encoding than {model_args.model_name_or_path or 'the tokenizer'}; rebuild it with that tokenizer")
    card = corpus / "corpus_card.json"
    description = json.loads(card.read_text()) if card.is_file() else {"path": str(corpus)}
    return splits, tokenizer, description


def make_model(model_args: ModelArguments, tokenizer, seed: int):
    """A new model from a preset, or a checkpoint with its embeddings grown to the tokenizer's size."""
    from transformers import AutoModelForCausalLM, set_seed

    set_seed(seed)  # identical initial weights on every process and every run with this seed
    if model_args.model_name_or_path is None:
        return build_model(model_args.preset, tokenizer, model_args.dropout, model_args.context_length)
    model = AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path, attn_implementation=ATTENTION)
    if len(tokenizer) > model.config.vocab_size:
        # new style ids start from the mean embedding (transformers' mean_resizing), not from noise
        model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    return model


def eval_batches(windows, batch_size: int, limit: int, num_processes: int, process_index: int) -> list[list[int]]:
    """The fixed validation windows (``limit`` of them, spread evenly over the split), this process's share."""
    n = len(windows)
    chosen = np.unique(np.linspace(0, n - 1, min(limit, n)).astype(np.int64)) if n else np.zeros(0, np.int64)
    chosen = chosen[np.argsort(-np.asarray(windows.lengths)[chosen], kind="stable")]
    mine = chosen[process_index::num_processes].tolist()
    return [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]


def validation_split(splits):
    for name in ("validation", "test"):
        if name in splits and len(splits[name]):
            return splits[name]
    return None


# --- the pieces of a step ----------------------------------------------------------------------------
def make_optimizer(model, args: TrainingArguments, device: torch.device) -> torch.optim.Optimizer:
    """AdamW without decay on biases and LayerNorm gains; fused kernels on CUDA and CPU."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = {"fused": True} if device.type in ("cuda", "cpu") else {}
    return torch.optim.AdamW(groups, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), **fused)


def to_device(batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(input_ids, attention mask or None when padding is only on the right, labels) on ``device``."""
    mask = batch["attention_mask"]
    right_padded = not bool((mask[:, 1:] > mask[:, :-1]).any())
    move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
    return move(batch["input_ids"]), None if right_padded else move(mask), move(batch["labels"])


@torch.no_grad()
def evaluate(model, windows, batches, collator, accelerator, note_on: torch.Tensor) -> EvalTotals:
    """Summed NLL, tokens and notes over the fixed validation windows, all processes together."""
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


def baseline_metrics(splits, windows, batches_all: list[list[int]], tokenizer) -> dict:
    """The bigram baseline, fitted on the training pieces, scored on the same validation windows."""
    train = splits["train"].with_format("numpy", columns=["input_ids"])
    model = BigramBaseline.fit_tuned((row["input_ids"] for row in train), len(tokenizer))
    ids = [windows[i]["input_ids"] for idx in batches_all for i in idx]
    metrics = model.totals(ids, note_on_table(tokenizer.musenet_vocab)).metrics()
    return {"model": "token bigram interpolated with an add-one unigram", "alpha": model.alpha, **metrics}


# --- signals, logging ------------------------------------------------------------------------------------
class StopOnSignal:
    """SIGINT/SIGTERM set ``requested`` (the loop then checkpoints and exits); a second SIGINT aborts."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class MetricsLog:
    """JSON lines in ``OUTPUT_DIR/metrics.jsonl`` (main process), mirrored to Accelerate's trackers."""

    def __init__(self, accelerator, output_dir: Path, resumed_step: int | None):
        self.accelerator = accelerator
        self.path = output_dir / METRICS_FILE
        if accelerator.is_main_process and resumed_step is not None and self.path.is_file():
            # a killed run may have logged past its last checkpoint: those steps are about to be redone
            kept = [l for l in self.path.read_text().splitlines() if l and json.loads(l).get("step", 0) <= resumed_step]
            self.path.write_text("".join(l + "\n" for l in kept))

    def log(self, step: int, values: dict) -> None:
        if not self.accelerator.is_main_process:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": step, **values}) + "\n")
        if self.accelerator.trackers:
            self.accelerator.log({k: v for k, v in values.items() if isinstance(v, (int, float))}, step=step)


def hardware_description(accelerator) -> str:
    device = accelerator.device
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return f"{accelerator.num_processes} x {name}"


def resolve_mixed_precision(args: TrainingArguments) -> str:
    if args.mixed_precision != "auto":
        return args.mixed_precision
    on_gpu = torch.cuda.is_available() and not args.cpu
    return "bf16" if on_gpu and torch.cuda.is_bf16_supported() else "no"


def make_accelerator(args: TrainingArguments):
    from accelerate import Accelerator
    from accelerate.utils import is_tensorboard_available

    use_tb = args.report_to == "tensorboard" or (args.report_to == "auto" and is_tensorboard_available())
    # without a GPU, accelerate must be told it is a CPU run, or torchrun starts unconnected copies
    cpu = args.cpu or not torch.cuda.is_available()
    if not cpu:
        torch.backends.cuda.matmul.allow_tf32 = True  # the few fp32 matmuls outside autocast (TF32 keeps 10 mantissa bits)
        torch.backends.cudnn.allow_tf32 = True
    return Accelerator(
        cpu=cpu,
        mixed_precision=resolve_mixed_precision(args),
        log_with="tensorboard" if use_tb else None,
        project_dir=str(Path(args.output_dir) / "runs"),
    )


def resume_key(args: TrainingArguments, accelerator, context_length: int, vocab_size: int) -> dict:
    """What must not change across a resume for it to continue the same run exactly."""
    return {
        "seed": args.seed,
        "per_device_batch_size": args.per_device_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "num_processes": accelerator.num_processes,
        "context_length": context_length,
        "vocab_size": vocab_size,
    }


def save_checkpoint(accelerator, args: TrainingArguments, state: LoopState, key: dict) -> Path:
    folder = checkpointing.checkpoint_dir(args.output_dir, state.step)
    accelerator.save_state(str(folder))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        checkpointing.write_manifest(folder, {"loop": asdict(state), "resume_key": key})
        checkpointing.rotate(args.output_dir, args.save_total_limit)
        # only now may older best weights go: until this manifest, a resume would go back to them
        remove_best_dirs(Path(args.output_dir), keep=state.best_step)
    accelerator.wait_for_everyone()
    return folder


def load_checkpoint(accelerator, args: TrainingArguments, key: dict) -> LoopState:
    folder = checkpointing.resolve(args.output_dir, args.resume_from_checkpoint)
    saved = checkpointing.verify(folder)  # before anything in the folder is unpickled
    if saved["resume_key"] != key:
        changed = {k: (saved["resume_key"].get(k), v) for k, v in key.items() if saved["resume_key"].get(k) != v}
        raise checkpointing.CheckpointError(f"cannot continue {folder} exactly: settings changed (saved, now): {changed}")
    accelerator.load_state(str(folder))
    return LoopState(**saved["loop"])


# --- the run -----------------------------------------------------------------------------------------------
def train(model_args: ModelArguments, data_args: DataArguments, args: TrainingArguments) -> dict:
    """Train (or fine-tune) and save; returns the training record (also written to the output dir).

    If interrupted (signal), a checkpoint is saved and the record has ``"interrupted": True`` and no
    final model is written; ``--resume_from_checkpoint latest`` continues it.
    """
    from ..data.windows import MidiCollator, MidiWindows

    validate_arguments(model_args, data_args, args)
    out = Path(args.output_dir)
    accelerator = make_accelerator(args)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        # resumable state and caches hold pickles or copies of data: never part of a published model
        (out / ".gitignore").write_text(f"{checkpointing.CHECKPOINTS}/\n{BEST_PREFIX}*/\ncorpus/\nruns/\n")
    splits, tokenizer, corpus = load_data(model_args, data_args, args, accelerator)
    model = make_model(model_args, tokenizer, args.seed)
    new_styles = [s for s in tokenizer.styles if s not in default_tokenizer(model_args).styles] if model_args.model_name_or_path else []
    if model_args.lora:
        # the rows of the styles the data adds are trained whole; every other weight of the base stays frozen
        new_ids = lora.new_token_ids(default_tokenizer(model_args), tokenizer)
        model.generation_config = default_generation_config(tokenizer, model.config.n_positions)
        model = lora.wrap_model(model, model_args.lora_rank, model_args.lora_alpha, model_args.lora_dropout,
                                model_args.lora_target_modules, new_ids)
    context = model_args.context_length or model.config.n_positions
    if context > model.config.n_positions:
        raise ValueError(f"--context_length {context} exceeds the model's {model.config.n_positions} positions")
    if not model_args.lora:
        model.generation_config = default_generation_config(tokenizer, model.config.n_positions)

    augment = augment_config(data_args)
    windows = MidiWindows(splits["train"], tokenizer, context, seed=args.seed, augment=augment)
    # padding past the context would index past the position embeddings
    pad_multiple = PAD_MULTIPLE_GPU if accelerator.device.type == "cuda" and context % PAD_MULTIPLE_GPU == 0 else None
    collator = MidiCollator(tokenizer.pad_token_id, pad_to_multiple_of=pad_multiple)
    n, rank, accum = accelerator.num_processes, accelerator.process_index, args.gradient_accumulation_steps
    steps_per_epoch = len(plan_batches(windows.lengths, args.per_device_batch_size, args.seed, 0, n, rank)) // accum
    if steps_per_epoch == 0:
        raise ValueError(
            f"{len(windows)} training windows make no full step of {n} processes x {accum} x {args.per_device_batch_size}; "
            "lower --per_device_batch_size or --gradient_accumulation_steps"
        )
    val = validation_split(splits)
    val_windows = MidiWindows(val, tokenizer, context, seed=args.seed) if val is not None else None
    eval_bs = args.per_device_batch_size * EVAL_BATCH_FACTOR
    my_eval = eval_batches(val_windows, eval_bs, data_args.max_eval_windows, n, rank) if val_windows else []
    note_on = torch.as_tensor(note_on_table(tokenizer.musenet_vocab), device=accelerator.device)

    optimizer = make_optimizer(model, args, accelerator.device)
    model, optimizer = accelerator.prepare(model, optimizer)
    forward = torch.compile(model) if args.torch_compile else model
    key = resume_key(args, accelerator, context, len(tokenizer))
    state = LoopState(total_steps=args.max_steps or math.ceil(args.num_train_epochs * steps_per_epoch))
    resumed = args.resume_from_checkpoint is not None
    if resumed:
        saved = load_checkpoint(accelerator, args, key)
        state = LoopState(**{**asdict(saved), "total_steps": args.max_steps or saved.total_steps})
    if accelerator.trackers == [] and accelerator.log_with:
        accelerator.init_trackers("musenet", config=flat_config(model_args, data_args, args))
    log = MetricsLog(accelerator, out, state.step if resumed else None)
    trainable, n_params = lora.parameter_counts(accelerator.unwrap_model(model))
    if accelerator.is_main_process:
        print(f"training {trainable / 1e6:.3f}M of {n_params / 1e6:.1f}M parameters on {hardware_description(accelerator)}; "
              f"{len(windows)} windows of <= {context} tokens, {steps_per_epoch} steps/epoch, {state.total_steps} steps", flush=True)

    run_eval = lambda: evaluate(forward, val_windows, my_eval, collator, accelerator, note_on) if val_windows else None  # noqa: E731
    if model_args.lora and not resumed and val_windows is not None:
        before = run_eval()  # LoRA starts as the base (B = 0): this is the base on the new data
        state.initial_metrics = before.metrics()
        log.log(0, {"initial": True, **state.initial_metrics})
    interrupted = TrainingLoop(accelerator, forward, model, optimizer, windows, collator, args, state, log, key, run_eval).run()

    record = None
    if not interrupted:
        final = run_eval()
        metrics = final.metrics() if final else {"eval_loss": None, "perplexity": None, "bits_per_note": None}
        log.log(state.step, {"final": True, **metrics})
        use_best = (final is not None and state.best_metrics is not None and state.best_metrics["eval_loss"] < metrics["eval_loss"]
                    and (best_dir(out, state.best_step) / lora.weights_file(model_args.lora)).is_file())
        if use_best:
            metrics = dict(state.best_metrics)
        baseline = None
        if accelerator.is_main_process and val_windows is not None and args.bigram_baseline:
            all_eval = eval_batches(val_windows, eval_bs, data_args.max_eval_windows, 1, 0)
            baseline = baseline_metrics(splits, val_windows, all_eval, tokenizer)
        metrics["baseline_bits_per_note"] = baseline["bits_per_note"] if baseline else None
        record = training_record(model_args, data_args, args, corpus, metrics, state, accelerator, tokenizer)
        record["baseline"] = baseline
        record["saved_step"] = state.best_step if use_best else state.step
        record["initial_metrics"] = state.initial_metrics
        record["new_styles"] = new_styles
        if model_args.lora:
            record["lora"] = lora.lora_record(model_args, trainable, n_params, new_styles)
        weights = accelerator.get_state_dict(model)  # a collective under FSDP/DeepSpeed: every process calls it
        if accelerator.is_main_process and model_args.lora:
            lora.publish(accelerator.unwrap_model(model), out, weights, model_args.model_name_or_path, model_args.merge,
                         best_dir(out, state.best_step) if use_best else None)
            if model_args.merge and args.save_dtype != "float32":
                cast_saved_weights(out, args.save_dtype)
        elif accelerator.is_main_process:
            accelerator.unwrap_model(model).save_pretrained(out, state_dict=weights)
            if use_best:  # the last weights were worse on validation than an earlier evaluation's: publish those
                shutil.copy2(best_dir(out, state.best_step) / "model.safetensors", out / "model.safetensors")
            if args.save_dtype != "float32":
                cast_saved_weights(out, args.save_dtype)
        if accelerator.is_main_process:
            tokenizer.save_pretrained(out)
            (out / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
            remove_best_dirs(out, keep=record["saved_step"])  # kept so that a longer continuation can still fall back to it
    accelerator.wait_for_everyone()  # before end_training: without it a process can abort at exit
    accelerator.end_training()
    return record or {"interrupted": True, "step": state.step}


def training_record(model_args, data_args, args, corpus, metrics, state: LoopState, accelerator, tokenizer) -> dict:
    """``training_record.json``: what was trained on, how, and how well (see the interfaces)."""
    return {
        "corpus": corpus,
        "training_args": flat_config(model_args, data_args, args),
        "preset": model_args.preset if model_args.model_name_or_path is None else f"fine-tuned from {model_args.model_name_or_path}",
        "metrics": {k: metrics.get(k) for k in ("eval_loss", "perplexity", "bits_per_note", "baseline_bits_per_note")},
        "eval": {k: metrics.get(k) for k in ("eval_tokens", "eval_notes", "bits_per_token")},
        "train_seconds": round(state.train_seconds, 1),
        "steps": state.step,
        "tokens": state.tokens,
        "hardware": hardware_description(accelerator),
        "styles": tokenizer.styles,
        "instruments": tokenizer.instruments,
    }


def best_dir(out: Path, step: int) -> Path:
    return out / f"{BEST_PREFIX}{step:08d}"


def remove_best_dirs(out: Path, keep: int | None) -> None:
    for folder in out.glob(f"{BEST_PREFIX}*"):
        if keep is None or folder != best_dir(out, keep):
            shutil.rmtree(folder, ignore_errors=True)


def augment_config(data_args: DataArguments):
    from ..data.augmentation import AugmentConfig

    return AugmentConfig() if data_args.augment else None


def flat_config(model_args, data_args, args) -> dict:
    return {**asdict(model_args), **asdict(data_args), **asdict(args)}


def loader_workers(device: torch.device) -> int:
    """Automatic DataLoader workers: none on CPU; on a GPU, the cores per GPU less one, at most ``GPU_LOADER_WORKERS``."""
    if device.type != "cuda":
        return 0
    per_gpu = (os.cpu_count() or 2) // max(1, torch.cuda.device_count())
    return max(1, min(GPU_LOADER_WORKERS, per_gpu - 1))


class TrainingLoop:
    """Optimizer steps until ``state.total_steps``, the time budget or a signal (see the module docstring)."""

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
            generator = torch.Generator().manual_seed(args.seed * 1_000_003 + state.epoch)
            loader = DataLoader(self.windows, batch_sampler=plan[state.micro_in_epoch : usable], collate_fn=self.collator,
                                num_workers=self.workers, pin_memory=self.device.type == "cuda",
                                generator=generator)
            yield from loader
            state.epoch, state.micro_in_epoch = state.epoch + 1, 0

    def step(self, micro: list[dict]) -> None:
        """One optimizer step over ``micro`` (this process's micro-batches), loss normalised by global tokens."""
        args, state, n = self.args, self.state, self.n
        state.micro_in_epoch += len(micro)
        targets = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in micro)
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
        values = {"loss": totals[0] / totals[1], "learning_rate": self.lr, "tokens_per_second": totals[2] / max(now - self.window_start, 1e-9),
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
            lora.save_weights(self.accelerator.unwrap_model(self.model), best_dir(Path(self.args.output_dir), self.state.step), weights)

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
                    fit_schedule_to_budget(self.accelerator, state, self.probe, self.budget, self.start, self.seconds_before, self.first_step)
                if args.eval_steps and state.step % args.eval_steps == 0 and state.step < state.total_steps:
                    self.periodic_eval()
                if saving:
                    save_checkpoint(self.accelerator, args, state, self.key)
                reason = self.stop_reason(signals)
        bar.close()
        if reason:
            self.flush_log()
            if self.accelerator.is_main_process:
                print(f"\nstopping at step {state.step} ({reason}); saving a checkpoint", flush=True)
        if reason or args.save_steps:
            save_checkpoint(self.accelerator, args, state, self.key)
        return reason == "signal"


def fit_schedule_to_budget(accelerator, state: LoopState, probe: dict, budget: float, start: float, seconds_before: float, first_step: int) -> None:
    """Shorten the schedule so the cosine ends when the time budget does (measured step time)."""
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
        print(f"\n{per_step:.3f} s/step: the schedule ends at step {fitted[0]} to fit the time budget", flush=True)
    state.total_steps = max(fitted[0], state.step + 1)


def cast_saved_weights(out: Path, dtype: str) -> None:
    """Rewrite ``out/model.safetensors`` in ``dtype`` (e.g. bfloat16: half the bytes) and say so in config.json."""
    from safetensors.torch import load_file, save_file

    path = out / "model.safetensors"
    save_file({k: v.to(getattr(torch, dtype)) for k, v in load_file(path).items()}, path, metadata={"format": "pt"})
    config = json.loads((out / "config.json").read_text())
    config["dtype"] = dtype
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
