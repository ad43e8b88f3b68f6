"""Teacher adapters: tiny random-initialised teachers on real an4 recordings; nothing is downloaded."""

from pathlib import Path

import pytest
import soundfile
import torch
from transformers import (
    ASTConfig,
    ASTFeatureExtractor,
    ASTForAudioClassification,
    Wav2Vec2FeatureExtractor,
    WavLMConfig,
    WavLMForXVector,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperModel,
)

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDModel
from processing_mt2kd import MT2KDFeatureExtractor
from training_mt2kd.recipe.teachers import (
    AudioClassificationTeacher,
    SpeakerEmbeddingTeacher,
    TeacherTargets,
    WhisperEncoderTeacher,
    load_teacher,
    stack_to_student_frames,
    student_num_frames,
)

TAG_NAMES = ["Speech", "Music", "Dog", "Bird"]


def tiny_whisper_config() -> WhisperConfig:
    return WhisperConfig(
        d_model=16,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        vocab_size=64,
        max_target_positions=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=3,
    )


@pytest.fixture(scope="module")
def an4_utterances(data_dir: Path) -> list[torch.Tensor]:
    """Three real 16 kHz recordings of different lengths."""
    paths = sorted((data_dir / "an4" / "wav").glob("*/*.wav"))[:3]
    utterances = []
    for path in paths:
        samples, sample_rate = soundfile.read(path, dtype="float32")
        assert sample_rate == 16000
        utterances.append(torch.from_numpy(samples))
    assert len({len(utterance) for utterance in utterances}) == 3
    return utterances


@pytest.fixture(scope="module")
def an4_batch(an4_utterances) -> tuple[torch.Tensor, torch.Tensor]:
    waveforms = torch.nn.utils.rnn.pad_sequence(an4_utterances, batch_first=True)
    return waveforms, torch.tensor([len(utterance) for utterance in an4_utterances])


@pytest.fixture(scope="module")
def whisper_model() -> WhisperModel:
    torch.manual_seed(0)
    return WhisperModel(tiny_whisper_config())


@pytest.fixture(scope="module")
def whisper_teacher(whisper_model) -> WhisperEncoderTeacher:
    return WhisperEncoderTeacher(whisper_model.get_encoder(), WhisperFeatureExtractor(feature_size=80))


@pytest.fixture(scope="module")
def tagger() -> tuple[ASTForAudioClassification, ASTFeatureExtractor]:
    torch.manual_seed(0)
    config = ASTConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_length=128,
        num_mel_bins=32,
        id2label=dict(enumerate(TAG_NAMES)),
        label2id={name: index for index, name in enumerate(TAG_NAMES)},
    )
    return ASTForAudioClassification(config), ASTFeatureExtractor(num_mel_bins=32, max_length=128)


@pytest.fixture(scope="module")
def speaker_model() -> tuple[WavLMForXVector, Wav2Vec2FeatureExtractor]:
    torch.manual_seed(0)
    config = WavLMConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_kernel=(40, 4),
        conv_stride=(20, 4),
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        num_buckets=16,
        max_bucket_distance=32,
        tdnn_dim=(8, 8),
        tdnn_kernel=(3, 1),
        tdnn_dilation=(1, 1),
        xvector_output_dim=8,
    )
    return WavLMForXVector(config), Wav2Vec2FeatureExtractor(return_attention_mask=True, do_normalize=True)


def test_student_num_frames_follows_fbank_and_subsampling_arithmetic():
    samples = torch.tensor([1360, 16000, 48000, 480000])
    fbank = (samples + 80) // 160
    expected = (((fbank - 7) // 2) + 1) // 2
    assert student_num_frames(samples).tolist() == expected.tolist() == [1, 23, 73, 748]


def test_student_num_frames_equals_the_student_models_output_lengths(an4_batch):
    waveforms, lengths = an4_batch
    features = MT2KDFeatureExtractor()(
        [waveform[:length].numpy() for waveform, length in zip(waveforms, lengths)],
        sampling_rate=16000,
        return_tensors="pt",
    )
    torch.manual_seed(0)
    student = MT2KDModel(MT2KDConfig.from_preset("mt2kd-tiny")).eval()
    with torch.no_grad():
        output = student(features.input_features, attention_mask=features.attention_mask)
    assert output.attention_mask.sum(-1).tolist() == student_num_frames(lengths).tolist()


def test_whisper_always_has_at_least_two_frames_per_student_frame():
    samples = torch.arange(1360, 480_001)
    whisper_frames = (samples // 160 + 1) // 2
    assert bool((2 * student_num_frames(samples) <= whisper_frames).all())


def test_stacking_pairs_consecutive_frames_and_cuts_the_surplus():
    frames = torch.arange(2 * 7 * 3, dtype=torch.float32).reshape(2, 7, 3)
    targets = stack_to_student_frames(frames, torch.tensor([7, 5]), torch.tensor([3, 2]), 2)
    assert targets.values.shape == (2, 3, 6)
    assert targets.lengths.tolist() == [3, 2]
    assert torch.equal(targets.values[0, 1], torch.cat([frames[0, 2], frames[0, 3]]))
    assert torch.equal(targets.values[1, :2].reshape(4, 3), frames[1, :4])
    assert not targets.values[1, 2].any()


def test_stacking_repeats_the_last_frame_when_the_teacher_runs_short():
    frames = torch.arange(5 * 2, dtype=torch.float32).reshape(1, 5, 2)
    targets = stack_to_student_frames(frames, torch.tensor([5]), torch.tensor([3]), 2)
    assert torch.equal(targets.values[0, 2], torch.cat([frames[0, 4], frames[0, 4]]))


def test_whisper_targets_have_the_student_length_of_each_utterance(whisper_teacher, an4_batch):
    waveforms, lengths = an4_batch
    targets = whisper_teacher(waveforms, lengths)
    assert targets.lengths.tolist() == student_num_frames(lengths).tolist()
    assert targets.values.shape == (3, int(targets.lengths.max()), whisper_teacher.target_dim)
    assert whisper_teacher.target_dim == 2 * 16
    assert targets.values.dtype == torch.float32
    assert not targets.values[~targets.mask].any()


def test_whisper_padded_batch_equals_each_utterance_alone(whisper_teacher, an4_batch, an4_utterances):
    batched = whisper_teacher(*an4_batch)
    for index, utterance in enumerate(an4_utterances):
        alone = whisper_teacher(utterance[None], torch.tensor([len(utterance)]))
        frames = int(alone.lengths[0])
        assert frames == int(batched.lengths[index])
        torch.testing.assert_close(batched.values[index, :frames], alone.values[0], atol=1e-5, rtol=0)


def test_whisper_on_30_s_equals_the_stock_encoder_including_inner_layers(whisper_model, an4_utterances):
    waveform = torch.cat(an4_utterances * 60)[:480_000]
    features = WhisperFeatureExtractor(feature_size=80)(waveform.numpy(), sampling_rate=16000, return_tensors="pt")
    stock = whisper_model.get_encoder()(features.input_features, output_hidden_states=True)
    for layer in (1, 2):
        extractor = WhisperFeatureExtractor(feature_size=80)
        teacher = WhisperEncoderTeacher(whisper_model.get_encoder(), extractor, layer=layer)
        targets = teacher(waveform[None], torch.tensor([480_000]))
        frames = targets.values.reshape(1, -1, 16)  # unstack: 2 × 748 frames at 50 Hz
        torch.testing.assert_close(frames, stock.hidden_states[layer][:, : frames.shape[1]], atol=1e-5, rtol=0)
    torch.testing.assert_close(stock.hidden_states[2], stock.last_hidden_state)


def test_whisper_rejects_audio_longer_than_its_positions(whisper_teacher):
    with pytest.raises(ValueError, match="longer than the Whisper encoder's 1500 positions"):
        whisper_teacher(torch.zeros(1, 481_000), torch.tensor([481_000]))


def test_whisper_rejects_a_layer_it_does_not_have(whisper_model):
    with pytest.raises(ValueError, match="layer=3 is out of range"):
        WhisperEncoderTeacher(whisper_model.get_encoder(), WhisperFeatureExtractor(feature_size=80), layer=3)


def test_whisper_loads_encoder_from_a_conditional_generation_folder(tmp_path, an4_batch):
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(tiny_whisper_config())
    model.save_pretrained(tmp_path)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(tmp_path)
    teacher = load_teacher("whisper", str(tmp_path))
    expected = WhisperEncoderTeacher(model.get_encoder(), WhisperFeatureExtractor(feature_size=80))
    torch.testing.assert_close(teacher(*an4_batch).values, expected(*an4_batch).values)
    assert teacher.name == str(tmp_path)


def test_teachers_are_frozen_and_in_eval_mode(whisper_teacher, tagger, speaker_model):
    teachers = [
        whisper_teacher,
        AudioClassificationTeacher(*tagger),
        SpeakerEmbeddingTeacher(*speaker_model),
    ]
    for teacher in teachers:
        assert not teacher.model.training
        assert not any(parameter.requires_grad for parameter in teacher.model.parameters())
        assert teacher.sample_rate == 16000
    assert [teacher.target_key for teacher in teachers] == ["whisper", "tagging", "speaker"]


def test_tagging_targets_are_probabilities_mapped_to_student_labels_by_name(tagger, an4_batch):
    in_teacher_order = AudioClassificationTeacher(*tagger)(*an4_batch)
    mapped = AudioClassificationTeacher(*tagger, labels=["Bird", "Speech", "Dog"])(*an4_batch)
    assert mapped.lengths is None
    assert mapped.values.shape == (3, 3)
    torch.testing.assert_close(mapped.values, in_teacher_order.values[:, [3, 0, 2]])
    assert bool(((mapped.values > 0) & (mapped.values < 1)).all())


def test_tagging_labels_the_teacher_lacks_are_an_error_unless_filled(tagger, an4_batch):
    with pytest.raises(ValueError, match=r"1 of 2 student labels.*'Siren'.*missing_label_probability"):
        AudioClassificationTeacher(*tagger, labels=["Speech", "Siren"])
    filled = AudioClassificationTeacher(*tagger, labels=["Speech", "Siren"], missing_label_probability=0.0)
    values = filled(*an4_batch).values
    assert not values[:, 1].any()
    assert bool((values[:, 0] > 0).all())


def test_tagging_padded_batch_equals_each_utterance_alone(tagger, an4_batch, an4_utterances):
    teacher = AudioClassificationTeacher(*tagger)
    batched = teacher(*an4_batch)
    for index, utterance in enumerate(an4_utterances):
        alone = teacher(utterance[None], torch.tensor([len(utterance)]))
        torch.testing.assert_close(batched.values[index], alone.values[0], atol=1e-5, rtol=0)


def test_speaker_embedding_ignores_padding_when_the_extractor_gives_a_mask(speaker_model, an4_batch, an4_utterances):
    teacher = SpeakerEmbeddingTeacher(*speaker_model)
    batched = teacher(*an4_batch)
    assert batched.values.shape == (3, 8)
    for index, utterance in enumerate(an4_utterances):
        alone = teacher(utterance[None], torch.tensor([len(utterance)]))
        torch.testing.assert_close(batched.values[index], alone.values[0], atol=1e-5, rtol=0)


def test_load_teacher_reads_classifier_and_xvector_folders(tmp_path, tagger, speaker_model, an4_batch):
    for folder, (model, extractor) in (("tagger", tagger), ("speaker", speaker_model)):
        model.save_pretrained(tmp_path / folder)
        extractor.save_pretrained(tmp_path / folder)
    tagging = load_teacher("audio-classification", str(tmp_path / "tagger"), labels=["Dog"])
    speaker = load_teacher("xvector", str(tmp_path / "speaker"))
    all_tags = AudioClassificationTeacher(*tagger)(*an4_batch).values
    torch.testing.assert_close(tagging(*an4_batch).values, all_tags[:, [2]])
    torch.testing.assert_close(speaker(*an4_batch).values, SpeakerEmbeddingTeacher(*speaker_model)(*an4_batch).values)


def test_load_teacher_names_the_known_kinds_for_an_unknown_one():
    with pytest.raises(ValueError, match=r"unknown teacher kind 'beats'.*'whisper'"):
        load_teacher("beats", "some/model")


def test_speechbrain_teacher_without_speechbrain_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "speechbrain", None)
    with pytest.raises(ImportError, match=r"pip install mt2kd\[teachers\]"):
        load_teacher("speechbrain-ecapa", "speechbrain/spkrec-ecapa-voxceleb")


def test_call_rejects_lengths_beyond_the_padded_waveform(whisper_teacher):
    with pytest.raises(ValueError, match=r"waveform_lengths\[1\] = 9000 is outside \[1, 8000\]"):
        whisper_teacher(torch.zeros(2, 8000), torch.tensor([8000, 9000]))


def test_call_rejects_utterances_too_short_for_a_student_frame(whisper_teacher):
    with pytest.raises(ValueError, match="utterance 0 has 1000 samples, too short"):
        whisper_teacher(torch.zeros(1, 1000), torch.tensor([1000]))


def test_clip_targets_carry_no_lengths_and_frame_targets_must():
    with pytest.raises(ValueError, match="frame-level targets"):
        TeacherTargets(torch.zeros(2, 5), torch.tensor([5, 5]))
    assert TeacherTargets(torch.zeros(2, 5)).mask is None
