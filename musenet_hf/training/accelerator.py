"""The processes a training run runs in: the Accelerate setup, mixed precision, a description of the
hardware, DataLoader workers, and the SIGINT/SIGTERM flag the loop checks between steps."""

from __future__ import annotations

import os
import platform
import signal
from pathlib import Path

import torch

from .arguments import GPU_LOADER_WORKERS, TrainingArguments


def resolve_mixed_precision(args: TrainingArguments) -> str:
    """``args.mixed_precision``, with ``auto`` resolved: bf16 on a GPU that supports it, else ``no`` (fp32).

    Args:
        args (`TrainingArguments`): reads ``mixed_precision`` and ``cpu``.
    """
    if args.mixed_precision != "auto":
        return args.mixed_precision
    on_gpu = torch.cuda.is_available() and not args.cpu
    return "bf16" if on_gpu and torch.cuda.is_bf16_supported() else "no"


def make_accelerator(args: TrainingArguments):
    """The run's ``accelerate.Accelerator``: CPU or GPU, mixed precision, TensorBoard under ``OUTPUT_DIR/runs``.

    Args:
        args (`TrainingArguments`): reads ``cpu``, ``mixed_precision``, ``report_to`` and ``output_dir``.
    """
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


def hardware_description(accelerator) -> str:
    """``"<processes> x <device>"``, e.g. ``"1 x NVIDIA H200"`` or ``"2 x CPU (x86_64, 1 threads)"``."""
    device = accelerator.device
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return f"{accelerator.num_processes} x {name}"


def loader_workers(device: torch.device) -> int:
    """Automatic DataLoader workers: none on CPU; on a GPU, the cores per GPU less one, at most ``GPU_LOADER_WORKERS``."""
    if device.type != "cuda":
        return 0
    per_gpu = (os.cpu_count() or 2) // max(1, torch.cuda.device_count())
    return max(1, min(GPU_LOADER_WORKERS, per_gpu - 1))


class StopOnSignal:
    """SIGINT/SIGTERM set ``requested`` (the loop then checkpoints and exits); a second SIGINT aborts.

    A context manager: the previous handlers are restored on exit.
    """

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
