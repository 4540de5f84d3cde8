"""Arguments of ``train.py``: three dataclasses (model, data, training) read by ``HfArgumentParser``.

``validate_arguments`` checks the whole configuration once, in the launching process, before any
distributed start or data work: a typo costs a second, not a corpus build and a process group.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..modeling.presets import MODEL_PRESETS
from ..utils import parse_dataclass_args

MIXED_PRECISION_CHOICES = ("auto", "no", "bf16", "fp16")
SAVE_DTYPE_CHOICES = ("float32", "bfloat16", "float16")
# Cutting and collating a batch of 32 windows of 1024 ids took ~30 ms of Python on one (shared) core, ~70 ms
# with augmentation: as long as a GPU step of the base preset or longer, so GPU runs need several workers.
# On CPU, workers would compete with the training threads.
GPU_LOADER_WORKERS = 8  # at most; fewer when the machine has fewer cores per GPU


@dataclass
class ModelArguments:
    preset: str = field(
        default="small",
        metadata={"help": f"model size when training from scratch: one of {', '.join(MODEL_PRESETS)}"},
    )
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "a checkpoint directory written by train.py (save_pretrained + tokenizer) to fine-tune"},
    )
    context_length: int | None = field(
        default=None,
        metadata={"help": "tokens per training window (default: the preset's, or the checkpoint's n_positions)"},
    )
    dropout: float = field(default=0.1, metadata={"help": "dropout on embeddings, attention and residuals (from scratch)"})
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={"help": "tokenizer directory for a MIDI folder trained from scratch (default: the built-in encoding)"},
    )
    lora: bool = field(
        default=False,
        metadata={"help": "fine-tune --model_name_or_path with LoRA (PEFT): train low-rank updates and the new styles' "
                  "embedding rows only; writes an adapter folder (pip install 'musenet_hf[lora]')"},
    )
    lora_rank: int = field(default=8, metadata={"help": "LoRA rank r"})
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA alpha: updates are scaled by alpha / r"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA branch's input"})
    lora_target_modules: str = field(
        default="c_attn,c_proj,c_fc",
        metadata={"help": "comma-separated module names to adapt (GPT-2: c_attn = fused QKV, c_proj = attention and MLP "
                  "output, c_fc = MLP input)"},
    )
    merge: bool = field(
        default=False,
        metadata={"help": "with --lora: write a plain checkpoint with the adapter merged in instead of the adapter"},
    )


@dataclass
class DataArguments:
    data: str = field(
        default=None,
        metadata={"help": "a corpus folder written by build_corpus (has dataset/ and tokenizer/) or a folder of MIDI files"},
    )
    style: str | None = field(
        default=None,
        metadata={"help": "style name for every file of a MIDI folder (added to the tokenizer if new)"},
    )
    corpus_dir: str | None = field(
        default=None,
        metadata={"help": "where a MIDI folder's corpus is built and cached (default: OUTPUT_DIR/corpus)"},
    )
    num_proc: int = field(default=1, metadata={"help": "processes for tokenizing a MIDI folder"})
    max_eval_windows: int = field(
        default=512, metadata={"help": "validation windows scored at each evaluation (the same ones every time)"}
    )
    augment: bool = field(
        default=False,
        metadata={"help": "augment training windows on the fly (AugmentConfig defaults: transposition, velocity, tempo)"},
    )


@dataclass
class TrainingArguments:
    output_dir: str = field(default=None, metadata={"help": "run directory: the final model, metrics.jsonl, checkpoints/"})
    seed: int = field(default=0, metadata={"help": "seed of model init, data order and window starts"})
    per_device_batch_size: int = field(default=8, metadata={"help": "windows per micro-batch on each process"})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    learning_rate: float = field(default=6e-4, metadata={"help": "peak learning rate (after warmup)"})
    min_lr_ratio: float = field(default=0.1, metadata={"help": "final learning rate as a fraction of the peak (cosine floor)"})
    warmup_steps: int = field(default=100, metadata={"help": "linear warmup, in optimizer steps"})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW decoupled weight decay (not on biases and LayerNorms)"})
    adam_beta1: float = field(default=0.9, metadata={"help": "AdamW beta1"})
    adam_beta2: float = field(default=0.95, metadata={"help": "AdamW beta2"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm (0: off)"})
    max_steps: int = field(default=0, metadata={"help": "optimizer steps to run (0: use num_train_epochs)"})
    num_train_epochs: float = field(default=1.0, metadata={"help": "passes over the training windows when max_steps is 0"})
    max_train_minutes: float = field(
        default=0.0,
        metadata={
            "help": "wall-clock budget for the training loop; the run then evaluates, checkpoints and saves "
            "(0: none). The cosine schedule is fitted to the budget once the step time is measured."
        },
    )
    mixed_precision: str = field(
        default="auto",
        metadata={"help": f"one of {', '.join(MIXED_PRECISION_CHOICES)}; auto = bf16 on a GPU that supports it, else fp32"},
    )
    torch_compile: bool = field(default=False, metadata={"help": "compile the model with torch.compile (GPU runs)"})
    save_dtype: str = field(
        default="float32",
        metadata={"help": f"dtype of the published model.safetensors, one of {', '.join(SAVE_DTYPE_CHOICES)}; bfloat16 "
                  "halves the folder (the bundled model ships so); resumable checkpoints always keep float32"},
    )
    cpu: bool = field(default=False, metadata={"help": "train on CPU even if a GPU is present (several processes: gloo)"})
    logging_steps: int = field(default=10, metadata={"help": "log loss, learning rate and tokens/s every N steps"})
    eval_steps: int = field(default=500, metadata={"help": "evaluate every N steps (0: only at the end)"})
    save_steps: int = field(default=500, metadata={"help": "save a resumable checkpoint every N steps (0: only on interrupt)"})
    save_total_limit: int = field(default=3, metadata={"help": "keep the last K checkpoints"})
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "'latest' (newest in OUTPUT_DIR/checkpoints) or a checkpoint path written by this tool"}
    )
    dataloader_num_workers: int = field(
        default=-1,
        metadata={"help": f"DataLoader worker processes per training process (-1: up to {GPU_LOADER_WORKERS} on a GPU, 0 on CPU)"},
    )
    report_to: str = field(
        default="auto",
        metadata={"help": "'auto' (TensorBoard if installed), 'tensorboard' or 'none'; metrics.jsonl is always written"},
    )
    keep_best: bool = field(
        default=True,
        metadata={"help": "publish the weights of the evaluation with the lowest validation loss (the last ones if no "
                  "periodic evaluation beat them): small corpora overfit within minutes on a GPU"},
    )
    bigram_baseline: bool = field(default=True, metadata={"help": "also score a bigram model on the same validation windows"})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "allow an output_dir that already holds a trained model"})
    disable_tqdm: bool = field(default=False, metadata={"help": "no progress bar (logs still go to metrics.jsonl)"})


def _is_midi_folder(path: Path) -> bool:
    from ..data.corpus import MIDI_SUFFIXES

    return path.is_file() and path.suffix.lower() in MIDI_SUFFIXES or path.is_dir() and any(
        p.suffix.lower() in MIDI_SUFFIXES for p in path.rglob("*")
    )


def flat_config(model_args: ModelArguments, data_args: DataArguments, args: TrainingArguments) -> dict:
    """The three argument dataclasses as one flat dict (the form of a JSON config file)."""
    return {**asdict(model_args), **asdict(data_args), **asdict(args)}


def validate_arguments(model_args: ModelArguments, data_args: DataArguments, args: TrainingArguments) -> None:
    """Raise ``ValueError`` listing every problem with the configuration (all of them, not the first)."""
    from ..data.corpus import is_corpus_dir

    problems = []

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    need(args.output_dir is not None, "--output_dir is required")
    need(args.save_dtype in SAVE_DTYPE_CHOICES, f"--save_dtype {args.save_dtype!r} is not one of {', '.join(SAVE_DTYPE_CHOICES)}")
    need(data_args.data is not None, "--data is required (a corpus folder or a folder of MIDI files)")
    if data_args.data is not None:
        data = Path(data_args.data)
        need(data.exists(), f"--data {data} does not exist")
        if data.exists():
            need(is_corpus_dir(data) or _is_midi_folder(data), f"--data {data} is neither a built corpus nor a folder with MIDI files")
            need(data_args.style is None or not is_corpus_dir(data),
                 "--style applies to a MIDI folder; a built corpus already has its styles")
    if data_args.style is not None:
        need(bool(data_args.style) and not any(c.isspace() for c in data_args.style), f"--style {data_args.style!r} must be one word")
    if model_args.model_name_or_path is None:
        need(model_args.preset in MODEL_PRESETS, f"--preset {model_args.preset!r} is not one of {', '.join(MODEL_PRESETS)}")
    else:
        ckpt = Path(model_args.model_name_or_path)
        need((ckpt / "config.json").is_file() and (ckpt / "tokenizer.json").is_file(),
             f"--model_name_or_path {ckpt} is not a checkpoint directory (config.json and tokenizer.json)")
    if model_args.tokenizer_name_or_path is not None:
        need((Path(model_args.tokenizer_name_or_path) / "tokenizer.json").is_file(),
             f"--tokenizer_name_or_path {model_args.tokenizer_name_or_path} has no tokenizer.json")
    need(model_args.context_length is None or model_args.context_length >= 16, "--context_length must be >= 16 tokens")
    need(0.0 <= model_args.dropout < 1.0, "--dropout must be in [0, 1)")
    if model_args.lora:
        need(model_args.model_name_or_path is not None, "--lora fine-tunes a checkpoint: pass --model_name_or_path")
        need(model_args.lora_rank >= 1 and model_args.lora_alpha > 0, "--lora_rank must be >= 1 and --lora_alpha > 0")
        need(0.0 <= model_args.lora_dropout < 1.0, "--lora_dropout must be in [0, 1)")
        need(bool([m for m in model_args.lora_target_modules.split(",") if m.strip()]), "--lora_target_modules names no module")
        try:
            import peft  # noqa: F401
        except ImportError:
            problems.append("--lora needs PEFT: pip install 'musenet_hf[lora]' (or: pip install peft)")
    need(not model_args.merge or model_args.lora, "--merge applies to --lora runs")
    for name in ("per_device_batch_size", "gradient_accumulation_steps", "logging_steps", "num_proc"):
        obj = data_args if name == "num_proc" else args
        need(getattr(obj, name) >= 1, f"--{name} must be >= 1")
    for name in ("max_steps", "warmup_steps", "eval_steps", "save_steps"):
        need(getattr(args, name) >= 0, f"--{name} must be >= 0")
    need(args.dataloader_num_workers >= -1, "--dataloader_num_workers must be >= 0 (or -1: automatic)")
    need(args.save_total_limit >= 1, "--save_total_limit must be >= 1")
    need(data_args.max_eval_windows >= 1, "--max_eval_windows must be >= 1")
    need(args.learning_rate > 0 and 0.0 <= args.min_lr_ratio <= 1.0, "--learning_rate must be > 0 and --min_lr_ratio in [0, 1]")
    need(0.0 <= args.adam_beta1 < 1.0 and 0.0 <= args.adam_beta2 < 1.0, "Adam betas must be in [0, 1)")
    need(args.weight_decay >= 0 and args.max_grad_norm >= 0, "--weight_decay and --max_grad_norm must be >= 0")
    need(args.max_steps > 0 or args.num_train_epochs > 0, "set --max_steps or a positive --num_train_epochs")
    need(args.max_train_minutes >= 0, "--max_train_minutes must be >= 0")
    need(args.mixed_precision in MIXED_PRECISION_CHOICES, f"--mixed_precision must be one of {', '.join(MIXED_PRECISION_CHOICES)}")
    need(args.report_to in ("auto", "tensorboard", "none"), "--report_to must be auto, tensorboard or none")
    if args.report_to == "tensorboard":
        from accelerate.utils import is_tensorboard_available

        need(is_tensorboard_available(), "--report_to tensorboard: install tensorboard first (pip install tensorboard)")
    if args.output_dir is not None:
        out = Path(args.output_dir)
        need(not out.exists() or out.is_dir(), f"--output_dir {out} is a file")
        finished = (out / "model.safetensors").is_file()
        need(not finished or args.overwrite_output_dir or args.resume_from_checkpoint is not None,
             f"--output_dir {out} already holds a trained model; pass --overwrite_output_dir or another folder")
    if args.resume_from_checkpoint not in (None, "latest"):
        need(Path(args.resume_from_checkpoint).is_dir(), f"--resume_from_checkpoint {args.resume_from_checkpoint} is not a folder")
    if problems:
        raise ValueError("invalid training configuration:\n  - " + "\n  - ".join(problems))


def training_parser(description: str | None = None, prog: str | None = None):
    """The ``HfArgumentParser`` of ``ModelArguments``, ``DataArguments`` and ``TrainingArguments``.

    Args:
        description (`str`, *optional*): the ``--help`` text above the options.
        prog (`str`, *optional*): the program name in the usage line (default: the script's).
    """
    from transformers import HfArgumentParser

    return HfArgumentParser((ModelArguments, DataArguments, TrainingArguments), description=description, prog=prog)


def parse_training_args(argv, description: str | None = None,
                        prog: str | None = None) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    """The three argument dataclasses from flags or from one lone ``.json`` config file, validated.

    Validation happens here, in the launching process, before any distributed start or data work.

    Args:
        argv (`Sequence[str]`): the arguments, without the program name.
        description (`str`, *optional*): the ``--help`` text above the options.
        prog (`str`, *optional*): the program name in the usage line.

    Raises:
        ValueError: every problem with the configuration (see ``validate_arguments``).
    """
    model_args, data_args, args = parse_dataclass_args(training_parser(description, prog), argv)
    validate_arguments(model_args, data_args, args)
    return model_args, data_args, args
