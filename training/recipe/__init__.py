"""The training recipe: the Accelerate loop, stage 1 (`kd`), stage 2 (`finetune`), the stage-1 → stage-2
hand-over, teacher adapters and their target cache, the optimiser, and the run configuration (the project's
only YAML loader)."""
