"""Push a checkpoint folder to the Hugging Face Hub with a generated model card and a sample MIDI.

    python push_to_hub.py runs/pop-small --repo-id alice/musenet-pop-small [--private] [--revision R]

The library side is ``musenet_hf.hub.push.push_checkpoint``; see its docstring for what gets uploaded.
"""

import sys

from musenet_hf.hub.push import PUSH_ERRORS, parse_push_args, push_checkpoint


def main(argv: list[str] | None = None) -> int:
    args = parse_push_args(argv)
    try:
        result = push_checkpoint(**vars(args))
    except PUSH_ERRORS as err:
        print(f"push_to_hub.py: error: {err}", file=sys.stderr)
        return 1
    print(f"pushed {len(result.files)} files to {result.repo_id}@{result.revision}: {result.commit_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
