"""Train or fine-tune a MuseNet model with Accelerate, from one CPU to many GPUs: ``train`` reads top to bottom.

The stages, each in its own module:

- ``accelerator``: the processes (Accelerate, mixed precision, hardware, signals);
- ``data.corpus.corpus_for_training``: the corpus (built from a MIDI folder when needed);
- ``modeling.presets.model_for_training``: the model (a preset, or a checkpoint to fine-tune);
- ``checkpointing``: exact resume (signed manifests, the loop state, the resume key);
- ``loop``: data order, schedule, optimizer and the optimizer steps;
- ``metrics``: the metrics log, evaluation, the bigram baseline;
- ``record``: best-weights folders, the published model and ``training_record.json``.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import torch
from transformers.utils import logging

from ..core.guards import CONFIG_KEY, corpus_music_statistics
from ..data.augmentation import AugmentConfig
from ..data.corpus import corpus_for_training, validation_split
from ..data.windows import MidiCollator, MidiWindows
from ..evaluation.likelihood import note_on_table
from ..modeling.presets import base_tokenizer, default_generation_config, model_for_training
from .accelerator import hardware_description, make_accelerator
from .arguments import DataArguments, ModelArguments, TrainingArguments, flat_config, validate_arguments
from .checkpointing import LoopState, load_checkpoint, resume_key
from .loop import TrainingLoop, make_optimizer, plan_batches
from .lora import lora_record, new_token_ids, parameter_counts, weights_file, wrap_model
from .metrics import EVAL_BATCH_FACTOR, MetricsLog, baseline_metrics, eval_batches, evaluate
from .record import best_dir, prepare_output_dir, publish_model, training_record

logger = logging.get_logger(__name__)

PAD_MULTIPLE_GPU = 64  # tensor-core friendly sequence lengths; also bounds torch.compile's shape variants
NO_EVAL_METRICS = {"eval_loss": None, "perplexity": None, "bits_per_note": None}  # a corpus without validation pieces


def train(model_args: ModelArguments, data_args: DataArguments, args: TrainingArguments) -> dict:
    """Train (or fine-tune) and save; returns the training record (also written to the output dir).

    If interrupted (signal), a checkpoint is saved, no final model is written and the result is
    ``{"interrupted": True, "step": N}``; ``--resume_from_checkpoint latest`` continues it.

    Args:
        model_args (`ModelArguments`): the preset or checkpoint, context length, dropout, tokenizer.
        data_args (`DataArguments`): the corpus or MIDI folder, evaluation windows, augmentation.
        args (`TrainingArguments`): optimisation, schedule, precision, logging, checkpoints, output.

    Raises:
        ValueError: an invalid configuration (every problem listed), or a corpus too small for one step.
        CheckpointError: a resume from a folder that is not this user's, or with changed settings.
    """
    validate_arguments(model_args, data_args, args)
    out = Path(args.output_dir)
    accelerator = make_accelerator(args)
    if accelerator.is_main_process:
        prepare_output_dir(out)

    # data and model
    pinned = model_args.model_name_or_path or model_args.tokenizer_name_or_path
    start_tokenizer = base_tokenizer(model_args.model_name_or_path, model_args.tokenizer_name_or_path)
    splits, tokenizer, corpus = corpus_for_training(
        data_args.data, data_args.corpus_dir or out / "corpus", start_tokenizer,
        pinned=pinned, style=data_args.style, num_proc=data_args.num_proc,
        is_main_process=accelerator.is_main_process, wait_for_everyone=accelerator.wait_for_everyone,
    )
    model = model_for_training(tokenizer, model_args.preset, model_args.dropout, model_args.context_length,
                               model_args.model_name_or_path, seed=args.seed)
    context = model_args.context_length or model.config.n_positions
    if context > model.config.n_positions:
        raise ValueError(f"--context_length {context} exceeds the model's {model.config.n_positions} positions")
    model.generation_config = default_generation_config(tokenizer, model.config.n_positions)
    # the musical guards' limits, learned from this training split: every saved checkpoint carries its own
    setattr(model.config, CONFIG_KEY, corpus_music_statistics(splits["train"], tokenizer.musenet_vocab).to_dict())
    new_styles = [s for s in tokenizer.styles if s not in start_tokenizer.styles] if model_args.model_name_or_path else []
    if model_args.lora:
        # the rows of the styles the data adds are trained whole; every other weight of the base stays frozen
        model = wrap_model(model, model_args.lora_rank, model_args.lora_alpha, model_args.lora_dropout,
                           model_args.lora_target_modules, new_token_ids(start_tokenizer, tokenizer))

    # training and validation windows
    windows = MidiWindows(splits["train"], tokenizer, context, seed=args.seed, augment=AugmentConfig() if data_args.augment else None)
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

    # optimizer, distribution, resume
    optimizer = make_optimizer(model, args, accelerator.device)
    model, optimizer = accelerator.prepare(model, optimizer)
    forward = torch.compile(model) if args.torch_compile else model
    key = resume_key(args, n, context, len(tokenizer))
    state = LoopState(total_steps=args.max_steps or math.ceil(args.num_train_epochs * steps_per_epoch))
    resumed = args.resume_from_checkpoint is not None
    if resumed:
        saved = load_checkpoint(accelerator, args, key)
        state = LoopState(**{**asdict(saved), "total_steps": args.max_steps or saved.total_steps})
    if accelerator.trackers == [] and accelerator.log_with:
        accelerator.init_trackers("musenet", config=flat_config(model_args, data_args, args))
    log = MetricsLog(accelerator, out, state.step if resumed else None)
    trainable, n_params = parameter_counts(accelerator.unwrap_model(model))
    if accelerator.is_main_process:
        logger.info(f"training {trainable / 1e6:.3f}M of {n_params / 1e6:.1f}M parameters on {hardware_description(accelerator)}; "
                    f"{len(windows)} windows of <= {context} tokens, {steps_per_epoch} steps/epoch, {state.total_steps} steps")

    # the loop
    run_eval = lambda: evaluate(forward, val_windows, my_eval, collator, accelerator, note_on) if val_windows else None  # noqa: E731
    if model_args.lora and not resumed and val_windows is not None:
        state.initial_metrics = run_eval().metrics()  # LoRA starts as the base (B = 0): the base on the new data
        log.log(0, {"initial": True, **state.initial_metrics})
    interrupted = TrainingLoop(accelerator, forward, model, optimizer, windows, collator, args, state, log, key, run_eval).run()

    # the final evaluation and the published model
    record = None
    if not interrupted:
        final = run_eval()
        metrics = final.metrics() if final else dict(NO_EVAL_METRICS)
        log.log(state.step, {"final": True, **metrics})
        # the last weights were worse on validation than an earlier evaluation's: publish those
        use_best = (final is not None and state.best_metrics is not None and state.best_metrics["eval_loss"] < metrics["eval_loss"]
                    and (best_dir(out, state.best_step) / weights_file(model_args.lora)).is_file())
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
            record["lora"] = lora_record(model_args, trainable, n_params, new_styles)
        publish_model(accelerator, model, tokenizer, out, record, state.best_step if use_best else None, args.save_dtype,
                      lora_base=model_args.model_name_or_path if model_args.lora else None, merge=model_args.merge)
    accelerator.wait_for_everyone()  # before end_training: without it a process can abort at exit
    accelerator.end_training()
    return record or {"interrupted": True, "step": state.step}
