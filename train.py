"""Train or fine-tune a MuseNet model: ``python train.py --data CORPUS_OR_MIDI_DIR --output_dir OUT [...]``.

Also ``python train.py config.json`` (one JSON object with any of the flags), and, for several
processes, ``accelerate launch train.py ...`` (GPUs) or ``torchrun --nproc_per_node N train.py --cpu ...``.
``python train.py --help`` lists every option. The work is done by ``musenet_hf.training.run.train``.
"""

import sys

from transformers import HfArgumentParser

from musenet_hf.training.run import train
from musenet_hf.training.arguments import DataArguments, ModelArguments, TrainingArguments, validate_arguments

EXIT_INTERRUPTED = 130  # the shell's convention for "stopped by a signal"


def parse(argv: list[str]):
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments), description=__doc__)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(argv[0])
    return parser.parse_args_into_dataclasses(argv)


def main(argv: list[str] | None = None) -> int:
    model_args, data_args, args = parse(sys.argv[1:] if argv is None else argv)
    try:
        validate_arguments(model_args, data_args, args)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    record = train(model_args, data_args, args)
    return EXIT_INTERRUPTED if record.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
