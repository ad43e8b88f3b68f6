"""MT2KDProcessor (features + labels), its save/load round trip and the Auto-class registration."""

import numpy as np
import pytest
import torch
from configuration_mt2kd import MT2KDConfig
from transformers import AutoFeatureExtractor, AutoProcessor, AutoTokenizer
from transformers.models.auto.feature_extraction_auto import FEATURE_EXTRACTOR_MAPPING
from transformers.models.auto.processing_auto import PROCESSOR_MAPPING
from transformers.models.auto.tokenization_auto import TOKENIZER_MAPPING

from processing_mt2kd import (
    MT2KDFeatureExtractor,
    MT2KDProcessor,
    MT2KDTokenizer,
    load_audio,
    register_processing_auto_classes,
    train_bpe_tokenizer,
)

TRANSCRIPTS = [
    "HE WAS NOT AN ILL DISPOSED YOUNG MAN",
    "UNLESS TO BE RATHER COLD HEARTED AND RATHER SELFISH IS TO BE ILL DISPOSED",
    "AND MISTER JOHN DASHWOOD HAD THEN LEISURE TO CONSIDER HOW MUCH THERE MIGHT BE PRUDENTLY IN HIS POWER",
]


@pytest.fixture(scope="module")
def processor(tmp_path_factory) -> MT2KDProcessor:
    tokenizer = train_bpe_tokenizer(TRANSCRIPTS * 4, tmp_path_factory.mktemp("bpe"), vocab_size=40)
    return MT2KDProcessor(MT2KDFeatureExtractor(), tokenizer)


@pytest.fixture(scope="module")
def clips(data_dir) -> list[np.ndarray]:
    folder = data_dir / "speech_misc/librivox_sense_and_sensibility"
    return [load_audio(folder / f"sense_and_sensibility_01_austen_64kb-08{n}.wav")[0] for n in (80, 90)]


def test_audio_and_text_give_features_and_labels_padded_with_minus_100(processor, clips):
    texts = TRANSCRIPTS[:2]

    batch = processor(audio=clips, text=texts, sampling_rate=16000, return_tensors="pt")

    expected = processor.feature_extractor(clips, sampling_rate=16000, return_tensors="pt")
    torch.testing.assert_close(batch["input_features"], expected["input_features"])
    torch.testing.assert_close(batch["attention_mask"], expected["attention_mask"])
    token_ids = [processor.tokenizer(text).input_ids for text in texts]
    assert batch["labels"].shape == (2, max(map(len, token_ids)))
    for row, ids in zip(batch["labels"].tolist(), token_ids):
        assert row == ids + [-100] * (len(row) - len(ids))
    assert set(processor.model_input_names) == {"input_features", "attention_mask", "labels"}


def test_text_alone_gives_labels(processor):
    batch = processor(text=TRANSCRIPTS[0])
    assert list(batch) == ["labels"]
    assert batch["labels"].tolist() == [processor.tokenizer(TRANSCRIPTS[0]).input_ids]


def test_audio_alone_gives_features(processor, clips):
    batch = processor(audio=clips[0], sampling_rate=16000)
    assert list(batch) == ["input_features", "attention_mask"]
    assert batch["input_features"].shape == (1, 299, 80)


def test_decode_collapses_ctc_output(processor):
    ids = processor.tokenizer(TRANSCRIPTS[0]).input_ids
    assert processor.decode([0] + [i for token in ids for i in (token, token, 0)]) == TRANSCRIPTS[0]
    assert processor.batch_decode([ids, ids], group_tokens=False) == [TRANSCRIPTS[0]] * 2


def test_one_transcript_per_recording_is_required(processor, clips):
    with pytest.raises(ValueError, match="2 recordings but 1 transcripts"):
        processor(audio=clips, text=TRANSCRIPTS[:1], sampling_rate=16000)


def test_audio_or_text_is_required(processor):
    with pytest.raises(ValueError, match="needs `audio`, `text` or both"):
        processor()


def test_save_load_round_trip(processor, clips, tmp_path):
    processor.save_pretrained(tmp_path)

    reloaded = MT2KDProcessor.from_pretrained(tmp_path)

    assert isinstance(reloaded.feature_extractor, MT2KDFeatureExtractor)
    assert isinstance(reloaded.tokenizer, MT2KDTokenizer)
    assert reloaded.feature_extractor.to_dict() == processor.feature_extractor.to_dict()
    assert reloaded.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    original = processor(audio=clips, text=TRANSCRIPTS[:2], sampling_rate=16000)
    again = reloaded(audio=clips, text=TRANSCRIPTS[:2], sampling_rate=16000)
    for key in original:
        np.testing.assert_array_equal(again[key], original[key])


def test_registration_maps_the_config_to_the_front_end_and_is_idempotent(processor, tmp_path):
    register_processing_auto_classes()
    register_processing_auto_classes()

    assert FEATURE_EXTRACTOR_MAPPING[MT2KDConfig] is MT2KDFeatureExtractor
    assert TOKENIZER_MAPPING[MT2KDConfig] is MT2KDTokenizer
    assert PROCESSOR_MAPPING[MT2KDConfig] is MT2KDProcessor
    processor.save_pretrained(tmp_path)
    assert isinstance(AutoProcessor.from_pretrained(tmp_path), MT2KDProcessor)
    assert isinstance(AutoTokenizer.from_pretrained(tmp_path), MT2KDTokenizer)
    assert isinstance(AutoFeatureExtractor.from_pretrained(tmp_path), MT2KDFeatureExtractor)
