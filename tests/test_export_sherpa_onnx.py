"""sherpa-onnx, a runtime nobody here wrote, loads the exported files and agrees with our pipelines.

The model is the session's tiny causal model (`fsdd_causal_export`, tests/fsdd_causal_model.py): trained for a
minute on the FSDD spoken digits so that it emits a real mix of tokens, then given an (untrained) tagging head so that
all four heads are exported. Exported offline, a causal model is its simulated-streaming forward (chunk-limited
attention, chunk-causal convolutions), the same graph our pipelines run. sherpa-onnx computes its own fbank
(kaldi-native-fbank: 16 kHz, 80 bins, dither 0, snip_edges false, samples in [-1, 1]), the same options as
`MT2KDFeatureExtractor`; both sides get the same 16 kHz waveform.
"""

import numpy as np
import pytest
import torch

sherpa_onnx = pytest.importorskip("sherpa_onnx", reason="the export extra (pip install -e '.[export]') is not installed")

import processing_mt2kd  # noqa: F401  (registers the pipelines)
from modeling_mt2kd import MT2KDForMultiTask
from processing_mt2kd import MT2KDProcessor, load_audio
from transformers import pipeline

from .fsdd_causal_model import TAG_NAMES, evaluation_recordings


@pytest.fixture(scope="module")
def exported(fsdd_causal_export):
    model = MT2KDForMultiTask.from_pretrained(fsdd_causal_export.folder).eval()
    assert model.config.causal, "these tests are meant to cover the offline export of a causal model"
    audio = [load_audio(path)[0] for path in evaluation_recordings()]
    return {"model": model, "folder": fsdd_causal_export.folder, "output": fsdd_causal_export.output, "audio": audio}


def our_outputs(exported, waveform):
    processor = MT2KDProcessor.from_pretrained(exported["folder"])
    inputs = processor(audio=waveform, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        return exported["model"](inputs["input_features"], inputs["attention_mask"])


def token_ids(exported) -> dict[str, int]:
    """sherpa-onnx's result token (the piece with '▁' shown as a space) → its id in tokens.txt."""
    lines = (exported["output"] / "tokens.txt").read_text(encoding="utf-8").splitlines()
    ids = {piece.replace("\u2581", " "): int(index) for piece, index in (line.split(" ") for line in lines)}
    assert len(ids) == len(lines), "two pieces read the same once '▁' is a space"
    return ids


def sherpa_decode(recognizer, waveform):
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, waveform)
    recognizer.decode_stream(stream)
    return stream.result


@pytest.mark.slow
def test_sherpa_onnx_transducer_gives_exactly_our_greedy_pipeline_tokens(exported):
    output = exported["output"]
    recognizer = sherpa_onnx.OfflineRecognizer.from_transducer(
        str(output / "encoder.onnx"), str(output / "decoder.onnx"), str(output / "joiner.onnx"),
        str(output / "tokens.txt"), num_threads=1, decoding_method="greedy_search",
    )
    asr = pipeline("mt2kd-transducer-asr", model=str(exported["folder"]))
    ids = token_ids(exported)
    emitted = set()
    for waveform in exported["audio"]:
        result = sherpa_decode(recognizer, waveform)
        ours = our_outputs(exported, waveform)
        (hypothesis,) = exported["model"].decode_transducer(ours.last_hidden_state, ours.attention_mask)
        assert [ids[piece] for piece in result.tokens] == hypothesis.tokens
        assert result.text.strip() == asr({"raw": waveform, "sampling_rate": 16000})["text"].strip()
        emitted.update(hypothesis.tokens)
    assert len(emitted) >= 3, f"the trained model should emit a mix of tokens; it emitted {emitted}"


@pytest.mark.slow
def test_sherpa_onnx_zipformer_ctc_gives_exactly_our_ctc_greedy_tokens(exported):
    output = exported["output"]
    recognizer = sherpa_onnx.OfflineRecognizer.from_zipformer_ctc(
        str(output / "ctc.onnx"), str(output / "tokens.txt"), num_threads=1
    )
    ids = token_ids(exported)
    blank = exported["model"].config.blank_id
    for waveform in exported["audio"]:
        result = sherpa_decode(recognizer, waveform)
        best = our_outputs(exported, waveform).ctc_logits[0].argmax(-1)
        ours = [token for token in torch.unique_consecutive(best).tolist() if token != blank]
        assert [ids[piece] for piece in result.tokens] == ours


@pytest.mark.slow
def test_sherpa_onnx_audio_tagging_gives_our_top_labels_and_probabilities(exported):
    output = exported["output"]
    tagger = sherpa_onnx.AudioTagging(sherpa_onnx.AudioTaggingConfig(
        model=sherpa_onnx.AudioTaggingModelConfig(
            zipformer=sherpa_onnx.OfflineZipformerAudioTaggingModelConfig(model=str(output / "tagging.onnx")),
            num_threads=1,
        ),
        labels=str(output / "tagging_labels.csv"),
        top_k=len(TAG_NAMES),
    ))
    for waveform in exported["audio"]:
        stream = tagger.create_stream()
        stream.accept_waveform(16000, waveform)
        events = tagger.compute(stream)
        probabilities = our_outputs(exported, waveform).tagging_logits[0].sigmoid()
        order = probabilities.argsort(descending=True).tolist()
        assert [event.name for event in events] == [TAG_NAMES[index] for index in order]
        assert np.abs(np.array([event.prob for event in events]) - probabilities[order].numpy()).max() < 1e-4


@pytest.mark.slow
def test_sherpa_onnx_speaker_embedding_matches_ours(exported):
    extractor = sherpa_onnx.SpeakerEmbeddingExtractor(
        sherpa_onnx.SpeakerEmbeddingExtractorConfig(model=str(exported["output"] / "speaker.onnx"), num_threads=1)
    )
    assert extractor.dim == exported["model"].config.speaker_embedding_dim
    for waveform in exported["audio"]:
        stream = extractor.create_stream()
        stream.accept_waveform(16000, waveform)
        stream.input_finished()
        theirs = np.array(extractor.compute(stream))
        ours = our_outputs(exported, waveform).speaker_embeddings[0].numpy()
        cosine = float(theirs @ ours / np.linalg.norm(theirs) / np.linalg.norm(ours))
        assert cosine >= 0.9999, cosine
