"""Decoding: CTC best path, transducer greedy and modified beam search."""

from .ctc_search import ctc_greedy_decode
from .decoded_sequence import DecodedSequence
from .transducer_search import TransducerJoiner, TransducerPredictor, greedy_search, modified_beam_search

__all__ = [
    "DecodedSequence",
    "TransducerJoiner",
    "TransducerPredictor",
    "ctc_greedy_decode",
    "greedy_search",
    "modified_beam_search",
]
