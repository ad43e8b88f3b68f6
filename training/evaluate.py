"""Evaluation of a model folder on labelled test sets — the command-line entry point.

    python training/evaluate.py --model DIR --config training/configs/eval_paper.yaml --output results.json

The implementation is `training_mt2kd.evaluation` (config, runner, cli); `--help` lists every option.
"""

import sys
from pathlib import Path

if __name__ == "__main__" and sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # Run as a file: import the installed package, never this folder's modules by their bare names
    # (`evaluate` here would shadow the `evaluate` library).
    del sys.path[0]

from training_mt2kd.evaluation.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
