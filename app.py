"""The musenet_hf playground (Gradio): ``python app.py`` locally, or as a Hugging Face Space as it is.

    pip install -e '.[app]'        # plus Debian/Ubuntu: apt-get install fluidsynth fluid-soundfont-gm
    python app.py                  # http://127.0.0.1:7860 (GRADIO_SERVER_PORT / GRADIO_SERVER_NAME respected)
    python app.py --model path/to/checkpoint --concurrency 2 --max-seconds 30
"""

import argparse

from musenet_hf.listen.app import DEFAULT_CONCURRENCY, MAX_QUEUE, MAX_SECONDS, build_app


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="musenet_hf playground")
    parser.add_argument("--model", default=None, help="checkpoint directory or Hub id (default: the bundled model)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="generations at once")
    parser.add_argument("--max-queue", type=int, default=MAX_QUEUE, help="requests that may wait")
    parser.add_argument("--max-seconds", type=float, default=MAX_SECONDS, help="longest piece per request")
    parser.add_argument("--soundfont", default=None, help="General MIDI .sf2 (default: the system's)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (process-wide, shared by concurrent generations)")
    args = parser.parse_args(argv)
    try:
        demo = build_app(args.model, concurrency=args.concurrency, max_seconds=args.max_seconds,
                         max_queue=args.max_queue, soundfont=args.soundfont, num_threads=args.threads)
    except (OSError, ValueError) as exc:  # a missing or unreadable checkpoint: one line, not a traceback
        parser.exit(2, f"app.py: cannot load the model {args.model or '(bundled)'}: {str(exc).splitlines()[0]}\n")
    demo.launch()  # Gradio reads GRADIO_SERVER_PORT and GRADIO_SERVER_NAME itself


if __name__ == "__main__":
    main()
