"""Push a checkpoint folder to the Hugging Face Hub with a generated model card and a sample MIDI.

    python push_to_hub.py runs/pop-small --repo-id alice/musenet-pop-small [--private] [--revision R]

The same as ``musenet-hf push``; the library side is ``musenet_hf.hub.push.push_checkpoint`` (see its
docstring for what gets uploaded).
"""

import sys

from musenet_hf.commands.push import push_main


def main(argv: list[str] | None = None) -> int:
    return push_main(argv, prog="push_to_hub.py")


if __name__ == "__main__":
    sys.exit(main())
