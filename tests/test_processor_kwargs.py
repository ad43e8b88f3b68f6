"""MT2KDProcessor keyword arguments: typed `MT2KDProcessingKwargs` with class defaults (as transformers' Parakeet
processor), per-modality overrides, and one owner of label encoding shared with the training collator."""

import io

import numpy as np
import pytest
import soundfile
import torch

from processing_mt2kd import MT2KDFeatureExtractor, MT2KDProcessor, train_bpe_tokenizer
from processing_mt2kd.processing_mt2kd import MT2KDProcessingKwargs, encode_labels
from training_mt2kd.data.collate import AudioCollator

TRANSCRIPTS = ["HELLO WORLD", "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG", "ZERO ONE TWO THREE"]


@pytest.fixture(scope="module")
def processor(tmp_path_factory) -> MT2KDProcessor:
    tokenizer = train_bpe_tokenizer(TRANSCRIPTS * 4, tmp_path_factory.mktemp("bpe"), vocab_size=30)
    return MT2KDProcessor(MT2KDFeatureExtractor(), tokenizer)


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    generator = np.random.default_rng(0)
    return [(0.1 * generator.standard_normal(n)).astype(np.float32) for n in (8000, 12000)]


def test_processor_declares_typed_kwargs_with_defaults(processor):
    assert processor.valid_processor_kwargs is MT2KDProcessingKwargs
    assert "channel_axis" in MT2KDProcessingKwargs.__annotations__["audio_kwargs"].__annotations__
    assert processor.text_kwargs["add_special_tokens"] is False and processor.text_kwargs["padding"] is True


def test_audio_kwargs_reach_the_feature_extractor(processor, clips):
    padded = processor(audio=clips, sampling_rate=16000, max_length=100, padding="max_length", return_tensors="pt")
    per_modality = processor(
        audio=clips, sampling_rate=16000, audio_kwargs={"padding": "max_length", "max_length": 100},
        return_tensors="pt",
    )

    assert padded["input_features"].shape == per_modality["input_features"].shape == (2, 100, 80)
    assert isinstance(padded["input_features"], torch.Tensor)


def test_channel_axis_is_an_audio_kwarg(processor, clips):
    stereo = np.stack([clips[0], clips[0]], axis=1)

    features = processor(audio=stereo, sampling_rate=16000, channel_axis=-1)["input_features"]

    np.testing.assert_allclose(features, processor(audio=clips[0], sampling_rate=16000)["input_features"], atol=1e-5)


def test_a_wrongly_typed_kwarg_is_refused(processor, clips):
    with pytest.raises((TypeError, ValueError)):
        processor(audio=clips[0], sampling_rate=16000, channel_axis="last")


def test_labels_are_the_tokenizers_ids_padded_with_minus_100(processor):
    labels = processor(text=TRANSCRIPTS)["labels"]

    for row, text in zip(labels, TRANSCRIPTS):
        ids = processor.tokenizer.encode(text, add_special_tokens=False)
        assert row[: len(ids)].tolist() == ids and (row[len(ids):] == -100).all()


def wav_bytes(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, 16000, format="WAV")
    return buffer.getvalue()


def test_training_collator_labels_equal_the_processors(processor, clips):
    examples = [
        {"id": str(i), "audio": {"bytes": wav_bytes(clips[0]), "path": None}, "text": text, "tasks": ["asr"]}
        for i, text in enumerate([*TRANSCRIPTS, "   "])
    ]
    collator = AudioCollator(vocabularies={"asr": processor.tokenizer})

    batch = collator(examples)

    expected = processor(text=[*TRANSCRIPTS, ""], return_tensors="pt")["labels"]
    torch.testing.assert_close(batch["token_ids"], expected)
    assert batch["task_masks"]["asr"].tolist() == [True, True, True, False]


def test_encode_labels_of_blank_texts_is_one_padding_column(processor):
    assert encode_labels(processor.tokenizer, ["", ""]).tolist() == [[-100], [-100]]
