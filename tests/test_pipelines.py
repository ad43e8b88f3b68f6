"""`transformers.pipeline` on an MT2KD folder: the stock ASR and audio-classification pipelines and the MT2KD tasks,
on real recordings of every format, rate and channel layout in ../shared/data."""

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from transformers import pipeline
from transformers.utils import logging

from configuration_mt2kd import MT2KDConfig
from modeling_mt2kd import MT2KDForMultiTask
from processing_mt2kd import AudioDecodeError, MT2KDFeatureExtractor, MT2KDTokenizer, load_audio, train_bpe_tokenizer
from processing_mt2kd.pipelines import (
    MT2KDMultiTaskPipeline,
    MT2KDSpeakerVerificationPipeline,
    MT2KDTransducerASRPipeline,
)

TAG_LABELS = ["Speech", "Music", "Dog", "Bird", "Applause", "Typing"]
SENTENCES = [
    "HELLO WORLD",
    "AND SO MY FELLOW AMERICANS ASK NOT WHAT YOUR COUNTRY CAN DO FOR YOU",
    "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
]
VOCAB_SIZE = 40

# One recording per (format, rate, channels) kind in ../shared/data (the shortest of each; the 65 s mono Ogg whale
# song is left out for time, its format and rate are covered by the stereo Ogg).
RECORDINGS = {
    "an4 wav 16k mono": "an4/wav/fash/an253-fash-b.wav",
    "fsdd wav 8k mono 0.14 s": "fsdd/recordings/6_yweweler_3.wav",
    "sound event wav 44.1k stereo": "sound_events/freesound_ibm/piano.wav",
    "sound event wav 44.1k mono": "sound_events/esc50/1-100032-A-0.wav",
    "sound event wav 48k stereo": "sound_events/freesound_ibm/typing.wav",
    "sound event ogg 44.1k stereo": "sound_events/librosa/456440__inspectorj__bird-whistling-robin-single-13.hq.ogg",
    "flac 44.1k stereo 24-bit": "speech_misc/jfk/jfk.flac",
    "wav 16k mono": "speech_misc/librivox_sense_and_sensibility/sense_and_sensibility_01_austen_64kb-0880.wav",
    "wav 22.05k mono": "speech_misc/ljspeech/LJ003-0182.wav",
    "flac 16k mono": "speech_misc/librispeechmix_2spk/val-clean-2mix-0001.flac",
    "ogg 16k mono": "speech_misc/librispeech/198-209-0000.hq.ogg",
}
# Recordings of different lengths and rates for the batched-equals-single checks.
BATCH = ["an4/wav/fash/an253-fash-b.wav", "fsdd/recordings/0_george_0.wav", "speech_misc/ljspeech/LJ003-0182.wav",
         "fsdd/recordings/1_jackson_0.wav"]
LONG_RECORDING = "speech_misc/derived/ljspeech_6utt_concat_22k.wav"  # 45 s at 22.05 kHz


def save_tiny_mt2kd_folder(folder: Path) -> Path:
    """A tiny random multi-task model with feature extractor and a BPE tokenizer trained on a few sentences."""
    tokenizer = train_bpe_tokenizer(SENTENCES, folder / "bpe", vocab_size=VOCAB_SIZE)
    torch.manual_seed(0)
    config = MT2KDConfig.from_preset(
        "mt2kd-tiny", vocab_size=len(tokenizer), id2label=dict(enumerate(TAG_LABELS))
    )
    MT2KDForMultiTask(config).eval().save_pretrained(folder)
    MT2KDFeatureExtractor().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    logging.set_verbosity_error()  # each head class loaded from the multi-task folder reports the unused heads
    return save_tiny_mt2kd_folder(tmp_path_factory.mktemp("mt2kd"))


@pytest.fixture(scope="module")
def asr(model_folder):
    return pipeline("automatic-speech-recognition", model=str(model_folder))


@pytest.fixture(scope="module")
def tagger(model_folder):
    return pipeline("audio-classification", model=str(model_folder))


@pytest.fixture(scope="module")
def transducer_asr(model_folder):
    return pipeline("mt2kd-transducer-asr", model=str(model_folder))


@pytest.fixture(scope="module")
def verifier(model_folder):
    return pipeline("mt2kd-speaker-verification", model=str(model_folder))


@pytest.fixture(scope="module")
def multitask(model_folder):
    return pipeline("mt2kd-multitask", model=str(model_folder))


def as_dict(path: Path) -> dict:
    """The stock pipelines decode files with ffmpeg; give them samples decoded by soundfile."""
    waveform, sampling_rate = load_audio(path, target_sample_rate=None)
    return {"raw": waveform, "sampling_rate": sampling_rate}


class EncoderCalls:
    """Records the number of frames of every encoder call of a model."""

    def __init__(self, model):
        self.frames = []
        self._handle = model.mt2kd.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs):
        features = args[0] if args else kwargs["input_features"]
        self.frames.append(features.shape[1])

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._handle.remove()


def assert_timestamps_increase_within(chunks: list[dict], duration_s: float) -> None:
    starts = [chunk["timestamp"][0] for chunk in chunks]
    assert starts == sorted(starts)
    for chunk in chunks:
        start, end = chunk["timestamp"]
        assert 0.0 <= start < end <= duration_s + 1e-9


def test_pipeline_builds_each_task_from_one_folder(asr, tagger, transducer_asr, verifier, multitask):
    assert (type(asr.model).__name__, asr.type) == ("MT2KDForCTC", "ctc")
    assert isinstance(asr.feature_extractor, MT2KDFeatureExtractor)
    assert isinstance(asr.tokenizer, MT2KDTokenizer)
    assert type(tagger.model).__name__ == "MT2KDForAudioClassification"
    assert isinstance(transducer_asr, MT2KDTransducerASRPipeline)
    assert type(transducer_asr.model).__name__ == "MT2KDForRNNT"
    assert isinstance(verifier, MT2KDSpeakerVerificationPipeline) and type(verifier.model).__name__ == "MT2KDForXVector"
    assert isinstance(multitask, MT2KDMultiTaskPipeline) and type(multitask.model).__name__ == "MT2KDForMultiTask"


# Per task: the input form it is given (the stock pipelines decode files with ffmpeg, so they get samples), and what
# its result must look like.
READ_CHECKS = {
    "asr": (as_dict, lambda result: isinstance(result["text"], str)),
    "tagger": (as_dict, lambda result: {tag["label"] for tag in result} <= set(TAG_LABELS)),
    "transducer_asr": (Path, lambda result: isinstance(result["text"], str)),
    "verifier": (Path.read_bytes, lambda result: result["embedding"].shape == (192,)),
    "multitask": (str, lambda result: set(result) == {"text", "tags", "speaker_embedding"}),
}


@pytest.mark.parametrize("recording", list(RECORDINGS.values()), ids=list(RECORDINGS))
@pytest.mark.parametrize("task", list(READ_CHECKS))
def test_every_pipeline_reads_every_kind_of_recording(request, data_dir, task, recording):
    pipe = request.getfixturevalue(task)
    as_input, is_valid = READ_CHECKS[task]
    assert is_valid(pipe(as_input(data_dir / recording)))


# Stock automatic-speech-recognition (CTC head)


def test_stock_asr_word_timestamps_are_ctc_frames_at_25_hz(data_dir, asr):
    sample = as_dict(data_dir / RECORDINGS["flac 44.1k stereo 24-bit"])
    result = asr(dict(sample), return_timestamps="word")
    assert " ".join(chunk["text"] for chunk in result["chunks"]) == result["text"]
    assert_timestamps_increase_within(result["chunks"], 11.0)
    # Every boundary is a whole number of 40 ms frames.
    for chunk in result["chunks"]:
        for seconds in chunk["timestamp"]:
            assert seconds / 0.04 == pytest.approx(round(seconds / 0.04))


def test_stock_asr_char_timestamps_spell_the_text(data_dir, asr):
    result = asr(as_dict(data_dir / RECORDINGS["wav 16k mono"]), return_timestamps="char")
    assert "".join(chunk["text"] for chunk in result["chunks"]) == result["text"]


def test_stock_asr_batched_equals_one_at_a_time(data_dir, asr):
    samples = [as_dict(data_dir / recording) for recording in BATCH]
    single = [asr(dict(sample))["text"] for sample in samples]
    batched = [result["text"] for result in asr([dict(sample) for sample in samples], batch_size=4)]
    assert batched == single


def test_stock_asr_long_form_chunks_bound_memory_and_timestamps_stay_in_the_audio(data_dir, asr):
    sample = as_dict(data_dir / LONG_RECORDING)
    duration_s = len(sample["raw"]) / sample["sampling_rate"]
    with EncoderCalls(asr.model) as calls:
        result = asr(sample, chunk_length_s=8.0, return_timestamps="word")
    assert max(calls.frames) <= 8.0 * 100 + 1 and len(calls.frames) >= 6  # 100 fbank frames per second
    assert result["chunks"] and result["text"]
    assert_timestamps_increase_within(result["chunks"], duration_s)


def test_stock_asr_batched_chunks_end_within_the_audio(data_dir, asr):
    sample = as_dict(data_dir / LONG_RECORDING)
    duration_s = len(sample["raw"]) / sample["sampling_rate"]
    result = asr(sample, chunk_length_s=8.0, batch_size=2, return_timestamps="word")
    assert result["chunks"][-1]["timestamp"][1] <= duration_s


# Stock audio-classification (tagging head)


def test_stock_audio_classification_gives_sigmoid_multi_label_scores_top_k(data_dir, tagger):
    sample = as_dict(data_dir / RECORDINGS["sound event wav 44.1k mono"])
    tags = tagger(dict(sample), top_k=4)
    features = tagger.feature_extractor(
        load_audio(data_dir / RECORDINGS["sound event wav 44.1k mono"])[0], sampling_rate=16000, return_tensors="pt"
    )
    with torch.no_grad():
        probabilities = tagger.model(**features).logits[0].sigmoid()
    expected = probabilities.topk(4)
    assert [tag["label"] for tag in tags] == [TAG_LABELS[index] for index in expected.indices.tolist()]
    np.testing.assert_allclose([tag["score"] for tag in tags], expected.values.numpy(), rtol=1e-4)
    assert len(tagger(dict(sample), top_k=None)) == len(TAG_LABELS)


def test_stock_audio_classification_batched_equals_one_at_a_time(data_dir, tagger):
    samples = [as_dict(data_dir / recording) for recording in BATCH]
    single = [tagger(dict(sample), top_k=3) for sample in samples]
    batched = tagger([dict(sample) for sample in samples], top_k=3, batch_size=4)
    for one, many in zip(single, batched):
        assert [tag["label"] for tag in one] == [tag["label"] for tag in many]
        np.testing.assert_allclose([tag["score"] for tag in one], [tag["score"] for tag in many], atol=1e-5)


# Transducer ASR


def test_transducer_asr_reads_paths_bytes_dicts_and_arrays_alike(data_dir, transducer_asr):
    path = data_dir / RECORDINGS["an4 wav 16k mono"]
    waveform, _ = load_audio(path)
    texts = {
        transducer_asr(form)["text"]
        for form in (str(path), path, path.read_bytes(), {"raw": waveform, "sampling_rate": 16000}, waveform)
    }
    assert len(texts) == 1


@pytest.mark.parametrize("decoding_method", ["greedy_search", "modified_beam_search"])
def test_transducer_asr_batched_equals_one_at_a_time(data_dir, transducer_asr, decoding_method):
    paths = [data_dir / recording for recording in BATCH]
    single = [transducer_asr(path, decoding_method=decoding_method, beam=3) for path in paths]
    batched = transducer_asr(paths, decoding_method=decoding_method, beam=3, batch_size=4)
    assert batched == single


def test_transducer_asr_word_timestamps_stay_in_the_audio(data_dir, transducer_asr):
    result = transducer_asr(data_dir / RECORDINGS["flac 16k mono"], return_timestamps="word")
    assert "".join(chunk["text"] for chunk in result["chunks"]) == result["text"].replace(" ", "")
    assert_timestamps_increase_within(result["chunks"], 4.577)


def test_transducer_asr_long_form_chunks_bound_memory_and_timestamps_stay_in_the_audio(data_dir, transducer_asr):
    path = data_dir / LONG_RECORDING
    duration_s = soundfile.info(path).duration
    with EncoderCalls(transducer_asr.model) as calls:
        result = transducer_asr(path, chunk_length_s=10.0, return_timestamps="char", batch_size=3)
    # 45.3 s in 10 s chunks stepping by 10 - 2 * 10 / 6 s: 7 chunks, in batches of 3
    assert max(calls.frames) <= 10.0 * 100 + 1 and len(calls.frames) == 3
    assert result["text"]
    assert_timestamps_increase_within(result["chunks"], duration_s)


def test_transducer_asr_chunked_batched_equals_chunked_one_chunk_at_a_time(data_dir, transducer_asr):
    path = data_dir / RECORDINGS["ogg 16k mono"]
    one_at_a_time = transducer_asr(path, chunk_length_s=4.0, return_timestamps="word")
    assert transducer_asr(path, chunk_length_s=4.0, return_timestamps="word", batch_size=4) == one_at_a_time


@pytest.mark.parametrize(
    "parameters, message",
    [({"decoding_method": "beam"}, "decoding_method"), ({"beam": 0}, "beam"), ({"return_timestamps": True}, "char")],
)
def test_transducer_asr_refuses_bad_parameters(data_dir, transducer_asr, parameters, message):
    with pytest.raises(ValueError, match=message):
        transducer_asr(data_dir / RECORDINGS["an4 wav 16k mono"], **parameters)


# Speaker verification


def test_speaker_embeddings_batched_equal_one_at_a_time(data_dir, verifier):
    paths = [data_dir / recording for recording in BATCH]
    single = np.stack([verifier(path)["embedding"] for path in paths])
    np.testing.assert_allclose(verifier.embed(paths, batch_size=4), single, atol=1e-5)


def test_verify_scores_by_cosine_and_decides_with_the_threshold(data_dir, verifier):
    enrollment, test = data_dir / BATCH[1], data_dir / BATCH[3]
    first, second = verifier.embed([enrollment, test])
    cosine = float(first @ second / np.linalg.norm(first) / np.linalg.norm(second))
    assert verifier.score(enrollment, test) == pytest.approx(cosine, abs=1e-6)
    # The folder has no calibrated threshold: a score and no decision.
    assert verifier.verify(enrollment, test) == {
        "score": pytest.approx(cosine, abs=1e-6), "same_speaker": None, "threshold": None,
    }
    assert verifier.verify(enrollment, test, threshold=cosine - 1e-3)["same_speaker"] is True
    assert verifier.verify(enrollment, test, threshold=cosine + 1e-3)["same_speaker"] is False


def test_score_trials_from_a_trial_file_embeds_each_recording_once(tmp_path, data_dir, verifier):
    trial_file = tmp_path / "trials.txt"
    trial_file.write_text(
        "# enrolment test label\n"
        "fsdd/recordings/0_george_0.wav fsdd/recordings/1_george_0.wav target\n"
        "fsdd/recordings/0_george_0.wav fsdd/recordings/0_jackson_0.wav nontarget\n"
        "fsdd/recordings/1_george_0.wav fsdd/recordings/0_jackson_0.wav 0\n"
    )
    with EncoderCalls(verifier.model) as calls:
        results = verifier.score_trials(trial_file, audio_root=data_dir, batch_size=8)
    assert len(calls.frames) == 1  # three distinct recordings, one batch
    assert [result["is_target"] for result in results] == [True, False, False]
    assert results[0]["enrollment"] == "fsdd/recordings/0_george_0.wav"
    for result in results:
        expected = verifier.score(data_dir / result["enrollment"], data_dir / result["test"])
        assert result["score"] == pytest.approx(expected, abs=1e-5)
        assert result["same_speaker"] is None  # no calibrated threshold in the folder


def test_score_trials_takes_pairs_of_paths(data_dir, verifier):
    george = str(data_dir / "fsdd/recordings/0_george_0.wav")
    jackson = str(data_dir / "fsdd/recordings/0_jackson_0.wav")
    results = verifier.score_trials([(george, jackson), (george, george)], threshold=0.999)
    assert "is_target" not in results[0]
    assert results[1]["score"] == pytest.approx(1.0, abs=1e-5) and results[1]["same_speaker"]


# One multi-task pass


def test_multitask_runs_the_encoder_once_per_batch(data_dir, multitask):
    paths = [data_dir / recording for recording in BATCH]
    with EncoderCalls(multitask.model) as calls:
        results = multitask(paths, batch_size=2, asr_decoder="transducer")
    assert len(calls.frames) == 2 and len(results) == 4


def test_multitask_batched_equals_one_at_a_time(data_dir, multitask):
    paths = [data_dir / recording for recording in BATCH]
    single = [multitask(path, top_k=2) for path in paths]
    for one, many in zip(single, multitask(paths, top_k=2, batch_size=4)):
        assert many["text"] == one["text"]
        assert [tag["label"] for tag in many["tags"]] == [tag["label"] for tag in one["tags"]]
        np.testing.assert_allclose(many["speaker_embedding"], one["speaker_embedding"], atol=1e-5)


def test_multitask_agrees_with_the_single_task_pipelines(data_dir, multitask, asr, tagger, transducer_asr, verifier):
    path = data_dir / RECORDINGS["wav 22.05k mono"]
    ctc_result = multitask(path, top_k=3)
    assert ctc_result["text"] == asr(as_dict(path))["text"]
    stock_tags = tagger(as_dict(path), top_k=3)
    assert [tag["label"] for tag in ctc_result["tags"]] == [tag["label"] for tag in stock_tags]
    np.testing.assert_allclose([t["score"] for t in ctc_result["tags"]], [t["score"] for t in stock_tags], atol=1e-5)
    np.testing.assert_allclose(ctc_result["speaker_embedding"], verifier(path)["embedding"], atol=1e-5)
    beam = {"decoding_method": "modified_beam_search", "beam": 2}
    assert multitask(path, asr_decoder="transducer", **beam)["text"] == transducer_asr(path, **beam)["text"]


def test_multitask_refuses_an_unknown_asr_decoder(data_dir, multitask):
    with pytest.raises(ValueError, match="asr_decoder must be one of"):
        multitask(data_dir / BATCH[0], asr_decoder="attention")


# Bad inputs


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40))
    return {
        "empty audio": ({"raw": np.zeros(0, np.float32), "sampling_rate": 16000}, ValueError, "empty"),
        "NaN samples": ({"raw": np.full(16000, np.nan, np.float32), "sampling_rate": 16000}, ValueError, "NaN"),
        "corrupt file": (str(folder / "corrupt.wav"), AudioDecodeError, "corrupt.wav"),
        "missing file": (str(folder / "missing.wav"), FileNotFoundError, "missing.wav"),
    }


@pytest.mark.parametrize("task", ["transducer_asr", "verifier", "multitask"])
@pytest.mark.parametrize("case", ["empty audio", "NaN samples", "corrupt file", "missing file"])
def test_mt2kd_pipelines_raise_the_documented_error_for_bad_inputs(request, bad_inputs, task, case):
    pipe = request.getfixturevalue(task)
    bad_input, error, message = bad_inputs[case]
    with pytest.raises(error, match=message):
        pipe(bad_input)
    if isinstance(bad_input, dict):
        assert "raw" in bad_input  # the caller's dict is left as it was


@pytest.mark.parametrize("task", ["asr", "tagger"])
@pytest.mark.parametrize("case", ["empty audio", "NaN samples", "missing file"])
def test_stock_pipelines_raise_the_feature_extractor_errors_for_bad_inputs(request, bad_inputs, task, case):
    pipe = request.getfixturevalue(task)
    bad_input, error, message = bad_inputs[case]
    with pytest.raises(error, match=message):
        pipe(dict(bad_input) if isinstance(bad_input, dict) else bad_input)  # the stock pipelines empty the dict
