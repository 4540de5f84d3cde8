"""Train or fine-tune a MuseNet model: ``python train.py --data CORPUS_OR_MIDI_DIR --output_dir OUT [...]``.

Also ``python train.py config.json`` (one JSON object with any of the flags, e.g.
``recipes/configs/default_model.json``), and, for several processes, ``accelerate launch train.py ...``
(GPUs) or ``torchrun --nproc_per_node N train.py --cpu ...``. ``python train.py --help`` lists every
option. ``musenet-hf train`` is the same command: both run ``musenet_hf.commands.train.main``, which
parses and validates the configuration, then calls ``musenet_hf.training.run.train``.
"""

import sys

from musenet_hf.commands.train import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
