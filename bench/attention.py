"""Where a decoding step's attention time goes: one new query against the key/value cache, per layer, at the
bundled model's shapes, batch 1 against batch 4 (issue 15's four variations).

    python -m bench.attention                     # 6 layers x 6 heads x 64, 900 cached positions
    python -m bench.attention --dtypes float32,bfloat16 --positions 512,900

Every layer has its own cache, and the timed loop walks all of them in turn, as a decoding step does, so
the caches are read from wherever they fit (a step at batch 4 reads four times the bytes of batch 1). Printed
per batch size, dtype and cached length: microseconds per layer for ``F.scaled_dot_product_attention``, the
megabytes of keys and values one step reads over all layers, and the ratio of batch 4 to batch 1. Compare the
megabytes with the CPU's last-level cache (printed from sysfs where Linux exposes it).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import HfArgumentParser


@dataclass
class AttentionArgs:
    layers: int = field(default=6, metadata={"help": "layers (the bundled model has 6)"})
    heads: int = field(default=6, metadata={"help": "attention heads (6)"})
    head_dim: int = field(default=64, metadata={"help": "width per head (64)"})
    positions: str = field(default="900", metadata={"help": "cached lengths, comma-separated (the window slides between 768 and 1024)"})
    batches: str = field(default="1,4", metadata={"help": "batch sizes, comma-separated"})
    dtypes: str = field(default="float32", metadata={"help": "cache and query dtypes, comma-separated (float32, bfloat16, float16)"})
    steps: int = field(default=200, metadata={"help": "timed steps (each walks every layer)"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads"})


def last_level_cache() -> str:
    """The largest CPU cache sysfs lists, e.g. '32768K (L3)', or 'unknown'."""
    best, text = 0, "unknown"
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            size, level = (index / "size").read_text().strip(), (index / "level").read_text().strip()
        except OSError:
            continue
        kib = int(size.rstrip("KMG")) * {"K": 1, "M": 1024, "G": 1024**2}.get(size[-1], 1)
        if kib > best:
            best, text = kib, f"{size} (L{level})"
    return text


def per_layer_us(args: AttentionArgs, batch: int, length: int, dtype: torch.dtype) -> float:
    """Microseconds per layer of one decoding step's attention, all layers' caches walked in turn."""
    caches = [torch.randn(2, batch, args.heads, length + 64, args.head_dim).to(dtype) for _ in range(args.layers)]
    query = torch.randn(batch, args.heads, 1, args.head_dim).to(dtype)

    def step():
        for cache in caches:
            kv = cache[:, :, :, :length]
            F.scaled_dot_product_attention(query, kv[0], kv[1])

    for _ in range(10):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    return (time.perf_counter() - start) / args.steps / args.layers * 1e6


def main() -> int:
    (args,) = HfArgumentParser(AttentionArgs).parse_args_into_dataclasses()
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    print(f"{args.layers} layers x {args.heads} heads x {args.head_dim}; {args.threads} threads; torch {torch.__version__}; "
          f"last-level cache {last_level_cache()}\n")
    print("| dtype | cached positions | batch | us per layer | cache MB read per step | vs batch " + str(batches[0]) + " |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.dtypes.split(","):
        dtype = getattr(torch, name)
        for length in (int(p) for p in args.positions.split(",")):
            base = None
            for batch in batches:
                us = per_layer_us(args, batch, length, dtype)
                base = base or us
                mb = 2 * batch * args.heads * length * args.head_dim * dtype.itemsize * args.layers / 1e6
                print(f"| {name} | {length} | {batch} | {us:.0f} | {mb:.1f} | {us / base:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
