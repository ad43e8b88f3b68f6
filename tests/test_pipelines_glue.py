"""The pipelines' glue on constructed inputs: audio inputs, chunk layout and merging, hypotheses, timestamps."""

import numpy as np
import pytest
import soundfile
import torch

from processing_mt2kd import AudioDecodeError, MT2KDFeatureExtractor, train_bpe_tokenizer
from processing_mt2kd.pipelines import (
    AudioChunk,
    ChunkLayout,
    ChunkTokens,
    merge_chunk_tokens,
    read_audio_input,
    transcript_with_timestamps,
)
from processing_mt2kd.pipelines.hypotheses import hypotheses_to_tensors, tensors_to_tokens
from processing_mt2kd.pipelines.timestamps import check_timestamp_level

SAMPLES_PER_FRAME = 640
SAMPLING_RATE = 16000


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    sentences = ["HELLO WORLD", "HELLO THERE", "THE WORLD IS ROUND", "ONE TWO THREE", "WORDS AND MORE WORDS"]
    return train_bpe_tokenizer(sentences, tmp_path_factory.mktemp("bpe"), vocab_size=25)


@pytest.fixture(scope="module")
def feature_extractor():
    return MT2KDFeatureExtractor()


def kept_spans(chunks: list[AudioChunk]) -> list[tuple[int, int]]:
    return [(chunk.start + chunk.stride_left, chunk.end - chunk.stride_right) for chunk in chunks]


# Audio inputs


def test_every_input_form_reads_to_the_same_16khz_waveform(tmp_path, feature_extractor):
    rng = np.random.default_rng(0)
    pcm = (rng.standard_normal(8000) * 3000).astype(np.int16)  # 1 s at 8 kHz
    path = tmp_path / "clip.wav"
    soundfile.write(path, pcm, 8000, subtype="PCM_16")
    from_path = read_audio_input(str(path), feature_extractor)
    forms = {
        "pathlib": path,
        "bytes": path.read_bytes(),
        "raw dict": {"raw": pcm, "sampling_rate": 8000},
        "datasets dict": {"array": torch.from_numpy(pcm), "sampling_rate": 8000, "path": "ignored"},
    }
    assert from_path.shape == (16000,) and from_path.dtype == np.float32
    for name, form in forms.items():
        np.testing.assert_allclose(read_audio_input(form, feature_extractor), from_path, atol=1e-6, err_msg=name)


def test_arrays_without_a_rate_are_taken_as_16khz_and_stereo_is_averaged(feature_extractor):
    left, right = np.full(1600, 0.5, np.float32), np.full(1600, -0.1, np.float32)
    stereo = np.stack([left, right])
    np.testing.assert_allclose(read_audio_input(stereo, feature_extractor), np.full(1600, 0.2), atol=1e-6)
    np.testing.assert_allclose(read_audio_input(torch.from_numpy(left), feature_extractor), left)


@pytest.mark.parametrize(
    "bad_input, error, message",
    [
        (np.zeros(0, np.float32), ValueError, "empty"),
        (np.array([0.1, np.nan] * 800, np.float32), ValueError, "NaN"),
        ({"raw": np.zeros(1600)}, ValueError, "sampling_rate"),
        (b"RIFF not really a wav file", AudioDecodeError, "cannot decode"),
        (b"", AudioDecodeError, "empty"),
        ("/no/such/recording.wav", FileNotFoundError, "not found"),
        ([0.1, 0.2], TypeError, "list"),
    ],
)
def test_bad_inputs_raise_the_documented_error(feature_extractor, bad_input, error, message):
    with pytest.raises(error, match=message):
        read_audio_input(bad_input, feature_extractor)


def test_a_corrupt_file_is_a_value_error_naming_the_file(tmp_path, feature_extractor):
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"fLaC" + bytes(100))
    with pytest.raises(ValueError, match="corrupt.flac"):
        read_audio_input(corrupt, feature_extractor)


# Chunk layout


def test_chunk_and_strides_are_whole_encoder_frames():
    layout = ChunkLayout.from_seconds(10.0, None, SAMPLING_RATE, SAMPLES_PER_FRAME)
    assert layout.chunk_samples == 160000
    # default stride: chunk / 6 = 1.667 s = 41.67 frames -> 42 frames
    assert layout.stride_left == layout.stride_right == 42 * SAMPLES_PER_FRAME
    asymmetric = ChunkLayout.from_seconds(5.0, (1.0, 0.64), SAMPLING_RATE, SAMPLES_PER_FRAME)
    assert (asymmetric.stride_left, asymmetric.stride_right) == (16000, 10240)


@pytest.mark.parametrize("stride_length_s", [(3.0, 3.0), (-1.0, 0.5), (1.0, 1.0, 1.0)])
def test_chunk_layout_rejects_strides_that_leave_nothing_or_are_malformed(stride_length_s):
    with pytest.raises(ValueError, match="stride"):
        ChunkLayout.from_seconds(5.0, stride_length_s, SAMPLING_RATE, SAMPLES_PER_FRAME)


@pytest.mark.parametrize("num_samples", [1000, 160000, 160001, 45 * SAMPLING_RATE + 123, 700000])
def test_kept_spans_of_the_chunks_tile_the_recording_exactly(num_samples):
    layout = ChunkLayout.from_seconds(10.0, 2.0, SAMPLING_RATE, SAMPLES_PER_FRAME)
    chunks = list(layout.chunks(num_samples))
    spans = kept_spans(chunks)
    assert spans[0][0] == 0 and spans[-1][1] == num_samples
    assert all(previous[1] == following[0] for previous, following in zip(spans, spans[1:]))
    assert all(chunk.end - chunk.start <= layout.chunk_samples for chunk in chunks)
    assert chunks[-1].stride_right == 0 and chunks[0].stride_left == 0


def test_chunks_are_produced_lazily():
    layout = ChunkLayout.from_seconds(1.0, 0.2, SAMPLING_RATE, SAMPLES_PER_FRAME)
    chunks = layout.chunks(10**12)  # a day-long recording would be millions of chunks
    assert next(chunks).start == 0 and next(chunks).start > 0


# Merging chunk tokens


def test_merge_keeps_tokens_between_the_strides_at_recording_frames():
    # Two chunks of 20 frames with 4 frames of stride: the first keeps frames 0-15, the second (starting at frame
    # 12) keeps its frames 4-19, i.e. recording frames 16-31. Tokens in the overlap appear in both chunks.
    first = ChunkTokens(AudioChunk(0, 20 * 640, 0, 4 * 640), tokens=[5, 6, 7, 8], frames=[2, 10, 15, 17])
    second = ChunkTokens(AudioChunk(12 * 640, 32 * 640, 4 * 640, 0), tokens=[7, 8, 9], frames=[3, 5, 19])
    tokens, frames = merge_chunk_tokens([first, second], SAMPLES_PER_FRAME)
    assert tokens == [5, 6, 7, 8, 9]
    assert frames == [2, 10, 15, 17, 31]


def test_merge_of_one_unchunked_recording_keeps_everything():
    whole = ChunkTokens(AudioChunk(0, 5000), tokens=[3, 3, 4], frames=[0, 1, 6])
    assert merge_chunk_tokens([whole], SAMPLES_PER_FRAME) == ([3, 3, 4], [0, 1, 6])


def test_merged_frames_never_go_back_in_time():
    layout = ChunkLayout.from_seconds(2.0, 0.4, SAMPLING_RATE, SAMPLES_PER_FRAME)
    num_samples = 7 * SAMPLING_RATE
    pieces = []
    for chunk in layout.chunks(num_samples):
        num_frames = (chunk.end - chunk.start) // SAMPLES_PER_FRAME
        pieces.append(ChunkTokens(chunk, tokens=[1] * num_frames, frames=list(range(num_frames))))
    _, frames = merge_chunk_tokens(pieces, SAMPLES_PER_FRAME)
    assert frames == list(range(num_samples // SAMPLES_PER_FRAME))


def test_merge_rejects_chunks_that_are_not_frame_aligned():
    with pytest.raises(ValueError, match="multiples of 640"):
        merge_chunk_tokens([ChunkTokens(AudioChunk(100, 9000, 0, 0), [1], [0])], SAMPLES_PER_FRAME)


def test_chunk_positions_survive_the_tensor_round_trip():
    chunk = AudioChunk(1280, 9000, 640, 1280)
    assert AudioChunk.from_tensors(chunk.as_tensors()) == chunk


# Hypotheses through batching


class Hypothesis:
    def __init__(self, tokens, frames):
        self.tokens, self.frames, self.score = tokens, frames, 0.0


def test_hypotheses_pad_to_tensors_and_back():
    hypotheses = [Hypothesis([4, 4, 9], [0, 3, 7]), Hypothesis([], []), Hypothesis([2], [5])]
    padded = hypotheses_to_tensors(hypotheses)
    assert padded["tokens"].shape == padded["token_frames"].shape == (3, 3)
    for row, hypothesis in enumerate(hypotheses):
        unpadded = tensors_to_tokens(padded["tokens"][row : row + 1], padded["token_frames"][row : row + 1])
        assert unpadded == (hypothesis.tokens, hypothesis.frames)


def test_a_batch_of_empty_hypotheses_has_zero_width():
    assert hypotheses_to_tensors([Hypothesis([], [])])["tokens"].shape == (1, 0)


# Timestamps


def first_letter_piece(pieces: list[str]) -> int:
    """sentencepiece may start a word with a bare "▁" piece, which carries no character."""
    return 1 if pieces[0] == "\u2581" else 0


def test_word_timestamps_span_first_to_last_token_frame_in_seconds(tokenizer):
    hello, world = tokenizer.tokenize("HELLO"), tokenizer.tokenize("WORLD")
    tokens = tokenizer.convert_tokens_to_ids(hello + world)
    frames = [3 + 2 * index for index in range(len(tokens))]
    result = transcript_with_timestamps(tokenizer, tokens, frames, SAMPLES_PER_FRAME, SAMPLING_RATE, "word")
    assert result["text"] == "HELLO WORLD"
    world_first = len(hello) + first_letter_piece(world)
    assert result["chunks"] == [
        {"text": "HELLO", "timestamp": (frames[first_letter_piece(hello)] * 0.04, (frames[len(hello) - 1] + 1) * 0.04)},
        {"text": "WORLD", "timestamp": (frames[world_first] * 0.04, (frames[-1] + 1) * 0.04)},
    ]


def test_char_timestamps_give_each_character_its_token_frame(tokenizer):
    pieces = tokenizer.tokenize("ONE TWO")
    tokens = tokenizer.convert_tokens_to_ids(pieces)
    frames = list(range(10, 10 + len(tokens)))
    result = transcript_with_timestamps(tokenizer, tokens, frames, SAMPLES_PER_FRAME, SAMPLING_RATE, "char")
    assert "".join(chunk["text"] for chunk in result["chunks"]) == "ONE TWO"
    starts = [chunk["timestamp"][0] for chunk in result["chunks"]]
    assert starts == sorted(starts)
    assert starts[0] == frames[first_letter_piece(pieces)] * 0.04


def test_repeated_tokens_are_kept_for_transducer_output(tokenizer):
    token = tokenizer.convert_tokens_to_ids("O")
    assert transcript_with_timestamps(tokenizer, [token, token], [1, 2], SAMPLES_PER_FRAME, SAMPLING_RATE) == {
        "text": "OO"
    }


def test_timestamps_need_one_frame_per_token(tokenizer):
    with pytest.raises(ValueError, match="one frame per token"):
        transcript_with_timestamps(tokenizer, [5, 6], [1], SAMPLES_PER_FRAME, SAMPLING_RATE, "word")


@pytest.mark.parametrize("level, expected", [(None, None), (False, None), ("word", "word"), ("char", "char")])
def test_timestamp_levels(level, expected):
    assert check_timestamp_level(level) == expected


def test_unknown_timestamp_level_is_refused():
    with pytest.raises(ValueError, match="'char' or 'word'"):
        check_timestamp_level(True)
