"""``musenet-hf evaluate``: how good a checkpoint's music is, in numbers and pictures (report.json/.md, PNGs)."""

from __future__ import annotations

import json


def register(sub) -> None:
    from ..core.guards import GUARD_NAMES
    from ..evaluation import evaluate as ev

    p = sub.add_parser("evaluate", help="measure a checkpoint's music against real music (likelihood, statistics, control)")
    p.add_argument("model", nargs="?", default="default",
                   help="checkpoint directory or Hub id (default: the bundled model)")
    p.add_argument("--reference", required=True, help="a built corpus folder (`corpus build` output) or a folder of MIDI files")
    p.add_argument("--reference-style", default="unknown", help="the style of every piece of a MIDI-folder reference")
    p.add_argument("--out", default="report", help="folder for report.json, report.md and the PNGs")
    p.add_argument("--cases", default=None,
                   help='JSON file: [{"style": "pop", "instruments": ["piano", "bass"]}, ...] (default: the quality grid, 9 cases)')
    p.add_argument("--pieces", type=int, default=ev.DEFAULT_PIECES, help="generated pieces per case, one batch")
    p.add_argument("--seconds", type=float, default=ev.DEFAULT_SECONDS, help="seconds per generated piece and real clip")
    p.add_argument("--seed", type=int, default=0, help="case i is generated with seed + i")
    p.add_argument("--likelihood-pieces", type=int, default=ev.DEFAULT_LIKELIHOOD_PIECES,
                   help="test pieces the likelihood is measured on (0: skip)")
    p.add_argument("--primers", type=int, default=ev.DEFAULT_PRIMERS, help="real pieces continued for primer continuity (0: skip)")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: the pipeline's)")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass (default: the pipeline's)")
    p.add_argument("--top-k", type=int, default=None, help="most likely ids kept, 0 for all (default: the pipeline's)")
    p.add_argument("--reference-match", choices=ev.REFERENCE_MATCHES, default="instrumentation",
                   help="real clips per case: of its style with exactly its instruments where there are enough "
                        f"(>= {ev.MIN_MATCHED_CLIPS}), else those instruments in any style, else the style alone; "
                        "or 'style': every clip of the style; either way from pieces that last the clip where there are enough")
    p.add_argument("--no-guards", action="store_true",
                   help="generate with the pipeline's music guards off (" + ", ".join(GUARD_NAMES) + "), to measure them")
    p.add_argument("--no-guard", action="append", default=[], choices=GUARD_NAMES,
                   help="switch one musical guard off (repeatable), to measure what it buys")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..core.guards import GUARD_NAMES, guards_off
    from ..evaluation.evaluate import evaluate, load_cases
    from ..evaluation.report import summary_table, write_report

    if args.threads:
        torch.set_num_threads(args.threads)
    sampling = {k: v for k, v in (("temperature", args.temperature), ("top_p", args.top_p), ("top_k", args.top_k)) if v is not None}
    sampling.update(guards_off(GUARD_NAMES if args.no_guards else args.no_guard))

    def announce(estimate: dict) -> None:
        print(f"estimated generation time: {estimate['estimate_minutes']:.1f} min "
              f"(measured {estimate['probe_tokens_per_second']:.0f} tokens/s on this machine)", flush=True)

    result = evaluate(args.model, args.reference, cases=load_cases(args.cases), pieces=args.pieces, seconds=args.seconds,
                      seed=args.seed, reference_style=args.reference_style, likelihood_pieces=args.likelihood_pieces,
                      primers=args.primers, progress_bar=not args.no_progress, on_estimate=announce, generate_kwargs=sampling,
                      reference_match=args.reference_match)
    files = write_report(result, args.out)
    print("\n".join(summary_table(result.to_dict())))
    print(json.dumps({k: str(v) for k, v in files.items()}, indent=1))
    return 0
