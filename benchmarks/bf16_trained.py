"""How far bf16 moves a trained MT2KD model from fp32 (issue 14): encoder output, CTC / transducer tokens, WER,
speaker embeddings, on real recordings.

    python -m benchmarks.bf16_trained --model MODEL_DIR [--metadata ../shared/data/fsdd/metadata.csv]
        [--split test] [--limit 100] [--output benchmarks/results/bf16_trained.json]

MODEL_DIR is a saved MT2KD model folder with its processor (feature extractor + tokenizer), e.g. the FSDD model of
`benchmarks/streaming_accuracy.py --save-model` or a demo's `demo_output/model`. Both precisions run the same
features, one utterance at a time: fp32 weights, and the same weights cast to bfloat16 with bfloat16 features
(what `graph_speed.py` times as "bf16 eager"). Transducer tokens come from greedy search; WER is against the
recordings' transcripts (jiwer) and between the two precisions' transcripts.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
from pathlib import Path

import jiwer
import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.machine import describe_machine, load_average
from modeling_mt2kd import MT2KDForMultiTask
from processing_mt2kd import MT2KDProcessor, load_audio

DEFAULT_METADATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd" / "metadata.csv"


def recordings(metadata: Path, split: str, limit: int) -> list[dict]:
    with metadata.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == split]
    return [dict(row, path=str(metadata.parent / row["path"])) for row in rows[:limit]]


@torch.inference_mode()
def run(model: MT2KDForMultiTask, processor: MT2KDProcessor, waveform: np.ndarray, sample_rate: int,
        dtype: torch.dtype) -> dict:
    features = processor.feature_extractor(waveform, sampling_rate=sample_rate, return_tensors="pt")
    output = model(features["input_features"].to(dtype), attention_mask=features["attention_mask"])
    result = {"encoder": output.last_hidden_state.float()}
    if model.transducer is not None:
        hypothesis = model.decode_transducer(output.last_hidden_state, output.attention_mask)[0]
        result["tokens"] = list(hypothesis.tokens)
        result["text"] = processor.tokenizer.decode(result["tokens"]).lower().strip()
    if output.ctc_logits is not None:
        result["ctc_argmax"] = output.ctc_logits.argmax(-1)
    if output.speaker_embeddings is not None:
        result["speaker"] = output.speaker_embeddings.float()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--metadata", type=Path, default=DEFAULT_METADATA)
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/bf16_trained.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    fp32 = MT2KDForMultiTask.from_pretrained(args.model).eval()
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    processor = MT2KDProcessor.from_pretrained(args.model)
    rows = recordings(args.metadata, args.split, args.limit)
    errors, cosines, ctc_agreement, token_equal = [], [], [], []
    references, texts = {"fp32": [], "bf16": []}, []
    for row in rows:
        waveform, sample_rate = load_audio(row["path"])
        a = run(fp32, processor, waveform, sample_rate, torch.float32)
        b = run(bf16, processor, waveform, sample_rate, torch.bfloat16)
        errors.append(float((b["encoder"] - a["encoder"]).norm() / a["encoder"].norm()))
        if "speaker" in a:
            cosines.append(float(F.cosine_similarity(a["speaker"], b["speaker"], dim=-1).min()))
        if "ctc_argmax" in a:
            ctc_agreement.append(float((a["ctc_argmax"] == b["ctc_argmax"]).float().mean()))
        if "tokens" in a:
            token_equal.append(a["tokens"] == b["tokens"])
            references["fp32"].append(a["text"])
            references["bf16"].append(b["text"])
            texts.append(row["transcript"].lower().strip())
    result = {
        "machine": describe_machine(torch.device("cpu")),
        "model": str(args.model),
        "recordings": f"{args.metadata} split={args.split}, {len(rows)} utterances",
        "encoder_output_relative_error_median": float(np.median(errors)),
        "encoder_output_relative_error_max": float(np.max(errors)),
    }
    if cosines:
        result["speaker_embedding_cosine_min"] = min(cosines)
    if ctc_agreement:
        result["ctc_argmax_agreement_mean"] = float(np.mean(ctc_agreement))
    if token_equal:
        result["transducer_identical_transcripts"] = f"{sum(token_equal)}/{len(token_equal)}"
        result["wer_fp32"] = jiwer.wer(texts, references["fp32"])
        result["wer_bf16"] = jiwer.wer(texts, references["bf16"])
        result["wer_bf16_against_fp32"] = jiwer.wer(references["fp32"], references["bf16"])
    result["load_average_after"] = load_average()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({key: value for key, value in result.items() if key != "machine"}, indent=2))


if __name__ == "__main__":
    main()
