"""Stage 2 (multi-task supervised fine-tuning) — the command-line entry point.

    accelerate launch training/finetune.py --config training/configs/mt2kd_66m_stage2.yaml --init_from DIR

The implementation is `training_mt2kd.recipe.finetune`; `--help` lists every option.
"""

import sys
from pathlib import Path

if __name__ == "__main__" and sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # Run as a file: import the installed package, never this folder's modules by their bare names
    # (`evaluate` here would shadow the `evaluate` library).
    del sys.path[0]

from training_mt2kd.recipe.finetune import main  # noqa: E402

if __name__ == "__main__":
    main()
