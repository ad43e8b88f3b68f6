"""The names of the decoding methods, one list for offline `generate`/`decode` and for streaming."""

CTC_DECODING_METHODS = ("ctc_greedy",)
TRANSDUCER_DECODING_METHODS = ("greedy_search", "modified_beam_search")
