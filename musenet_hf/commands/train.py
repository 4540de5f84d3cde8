"""``musenet-hf train [FLAGS | CONFIG.json]``: train or fine-tune a model, the same command as ``python train.py``.

The flags are the fields of ``ModelArguments``, ``DataArguments`` and ``TrainingArguments``
(``musenet-hf train --help`` lists them); one lone ``.json`` argument is a config file holding them
as one JSON object, e.g. ``recipes/configs/default_model.json``. The configuration is validated in
full before any distributed start or data work.
"""

from __future__ import annotations

import sys
from typing import Sequence

EXIT_INVALID = 2  # argparse's status for a bad command line
EXIT_INTERRUPTED = 130  # the shell's convention for "stopped by a signal"


def register(sub) -> None:
    # "+" as the only prefix: every flag (and --help) reaches the dataclass parser untouched
    p = sub.add_parser("train", help="train or fine-tune a model on a corpus or a MIDI folder (see `musenet-hf train --help`)",
                       add_help=False, prefix_chars="+")
    p.add_argument("argv", nargs="*", help="train.py's flags, or one JSON config file")
    p.set_defaults(func=lambda args: main(args.argv, prog="musenet-hf train"))


def main(argv: Sequence[str], prog: str | None = None) -> int:
    """Parse and validate ``argv``, train, and return the exit status (0 done, 2 invalid, 130 interrupted).

    Args:
        argv (`Sequence[str]`): the flags, or one ``.json`` config file.
        prog (`str`, *optional*): the program name in usage and error lines.
    """
    from ..training.arguments import parse_training_args
    from ..training.run import train
    from ..utils import show_progress_logs

    try:
        model_args, data_args, args = parse_training_args(argv, description=__doc__, prog=prog)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    show_progress_logs()
    record = train(model_args, data_args, args)
    return EXIT_INTERRUPTED if record.get("interrupted") else 0
