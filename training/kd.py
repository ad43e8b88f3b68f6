"""Stage 1 (multi-teacher knowledge distillation) — the command-line entry point.

    accelerate launch training/kd.py --config training/configs/mt2kd_66m_stage1.yaml

The implementation is `training_mt2kd.recipe.kd`; `--help` lists every option.
"""

import sys
from pathlib import Path

if __name__ == "__main__" and sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # Run as a file: import the installed package, never this folder's modules by their bare names
    # (`evaluate` here would shadow the `evaluate` library).
    del sys.path[0]

from training_mt2kd.recipe.kd import main  # noqa: E402

if __name__ == "__main__":
    main()
