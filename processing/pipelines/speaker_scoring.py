"""Cosine scoring of speaker embeddings, shared by the verification pipeline and evaluation."""

import torch
import torch.nn.functional as F

__all__ = ["cosine_scores"]


def cosine_scores(enrollment_embeddings: torch.Tensor, test_embeddings: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each enrolment/test pair.

    Args:
        enrollment_embeddings: (num_trials, embedding_dim) or (embedding_dim,).
        test_embeddings: same shape (or broadcastable to it).
    Returns:
        (num_trials,) float scores in [-1, 1] (a 0-d tensor for single embeddings).
    """
    if enrollment_embeddings.shape[-1] != test_embeddings.shape[-1]:
        raise ValueError(
            f"embedding sizes differ: {tuple(enrollment_embeddings.shape)} vs "
            f"{tuple(test_embeddings.shape)}; "
            "score embeddings from the same model"
        )
    return F.cosine_similarity(enrollment_embeddings.float(), test_embeddings.float(), dim=-1)
