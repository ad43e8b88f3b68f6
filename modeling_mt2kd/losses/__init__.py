"""Training losses."""

from .pruned_rnnt import (
    PrunedTransducerLoss,
    do_rnnt_pruning,
    get_rnnt_prune_ranges,
    pruned_transducer_loss,
    rnnt_loss_pruned,
    rnnt_loss_smoothed,
)

__all__ = [
    "PrunedTransducerLoss",
    "do_rnnt_pruning",
    "get_rnnt_prune_ranges",
    "pruned_transducer_loss",
    "rnnt_loss_pruned",
    "rnnt_loss_smoothed",
]
