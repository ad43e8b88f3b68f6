"""Gradient (activation) checkpointing that recomputes a Zipformer layer exactly as it first ran.

The layer's training regularisers draw from two generators: torch's (dropout, skip masks), which
`torch.utils.checkpoint` saves and restores for the recomputation, and Python's `random` (which
modules to skip, when a balancer acts), which it does not. Without replaying the latter, the
backward pass would recompute a different layer than the forward pass ran, and the gradients
would be wrong.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable


def replaying_python_random(checkpoint: Callable) -> Callable:
    """Wrap a `torch.utils.checkpoint.checkpoint`-like function (as transformers' checkpointing
    enablers build it) so that each recomputation draws the same Python `random` numbers as the
    first run, and leaves Python's generator where it was before the recomputation.

    Reentrant checkpointing is refused: its first run records no gradients, and the balancers only
    draw a random number when their input requires a gradient, so the recomputation would draw a
    different sequence.
    """
    if getattr(checkpoint, "keywords", {}).get("use_reentrant") is True:
        raise ValueError(
            "MT2KD models support only non-reentrant gradient checkpointing (use_reentrant=False, transformers' "
            "default): the Zipformer's regularisers draw random numbers only while gradients are recorded, which "
            "a reentrant first pass does not do, so the recomputed layers would differ from the ones that ran"
        )

    @functools.wraps(checkpoint)
    def checkpoint_replaying_python_random(function: Callable, *args, **kwargs):
        state_at_first_run = random.getstate()
        has_run = False

        def run(*run_args, **run_kwargs):
            nonlocal has_run
            if not has_run:
                has_run = True
                return function(*run_args, **run_kwargs)
            state_outside = random.getstate()
            random.setstate(state_at_first_run)
            try:
                return function(*run_args, **run_kwargs)
            finally:
                random.setstate(state_outside)

        return checkpoint(run, *args, **kwargs)

    return checkpoint_replaying_python_random
