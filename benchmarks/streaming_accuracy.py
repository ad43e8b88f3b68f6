"""Accuracy cost of streaming (issue 17): a tiny CAUSAL model trained on the FSDD digits, decoded on held-out FSDD
recordings with full context, with simulated streaming and with true streaming at 320 ms and 640 ms chunks.

    python -m benchmarks.streaming_accuracy                          # train 600 steps (~4.5 min), decode the 300 test takes
    python -m benchmarks.streaming_accuracy --model runs/causal/final --limit 20   # decode an existing model
    python -m benchmarks.streaming_accuracy --steps 3 --limit 4      # quick check that it runs

Training: `training/configs/tiny_stage2.yaml` (mt2kd-tiny, ASR + speaker on the FSDD `train` split: 2700 takes of
6 speakers) with `causal: true` and the authors' per-batch chunk sampling (`training_chunk_sizes` 16, 32, 64, -1 and
`training_left_context_frames` 64, 128, 256, -1, so some batches see full context). Held out: the FSDD `test` split
(takes 0-4 of every speaker and digit, never trained on). Every row decodes the same model, greedily, with the
transducer and with CTC. Decodings:

- full context: the ordinary forward with `chunk_size = -1` (no chunk mask, unlimited left context; the
  convolutions of a causal model stay causal);
- simulated N ms: the ordinary forward with chunk-limited attention and chunk-causal convolutions;
- true streaming N ms: the `mt2kd-streaming-asr` pipeline's `stream()` fed the 8 kHz recording 100 ms at a time
  (incremental fbank, `StreamingRecognizer`, cached states); for CTC its generator `stream_transcripts` with the
  multi-task model (the pipeline loads `MT2KDForRNNT`, which has no CTC head).

Inputs: "fbank" is the recording's fbank alone (what `mt2kd-transducer-asr` decodes); "stream input" is what a
stream of N ms chunks sees: the fbank, the end-of-stream padding (13 + 30 LOG_EPS frames, as the authors' decoder)
and LOG_EPS up to whole chunks. On the stream input, simulated streaming must equal true streaming token for token,
and full context vs simulated isolates the cost of the chunking itself (the padding matters on recordings this
short: without it the last characters of a word often never come out of a causal model).

WER is over digit words (TextNormalizer); token error rate is the edit distance between the emitted BPE ids and the
reference's (the 20-piece vocabulary is almost all single characters, so this is close to a character error rate). Prints a table and writes JSON (default benchmarks/results/streaming_accuracy.json).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch
from transformers import pipeline

import processing_mt2kd  # noqa: F401  (registers the pipelines)
from benchmarks.machine import REPO_ROOT, describe_machine
from modeling_mt2kd import MT2KDForMultiTask
from modeling_mt2kd.decoding import ctc_greedy_decode, greedy_search
from modeling_mt2kd.decoding.streaming_recognizer import TAIL_PADDING_FRAMES
from modeling_mt2kd.encoder.streaming import LOG_EPS, LOOKAHEAD_FBANK_FRAMES
from processing_mt2kd.pipelines.streaming_asr import stream_transcripts
from processing_mt2kd.processing_mt2kd import LABEL_PADDING, encode_labels
from training_mt2kd.evaluation.metrics.word_error_rate import word_error_rate
from training_mt2kd.recipe import finetune

FSDD = REPO_ROOT.parent / "shared" / "data" / "fsdd"
TRAINING_CONFIG = REPO_ROOT / "training" / "configs" / "tiny_stage2.yaml"
CAUSAL_OVERRIDES = {
    "vocab_size": 20, "causal": True, "chunk_size": 16, "left_context_frames": 128,
    "training_chunk_sizes": [16, 32, 64, -1], "training_left_context_frames": [64, 128, 256, -1],
}
TRAINING_RECORD = "streaming_accuracy_training.json"  # written next to the model folder: how it was trained


def train_causal_model(run_dir: Path, steps: int, fsdd: Path) -> Path:
    """finetune.py on the FSDD `train` split with the causal overrides; returns the final model folder."""
    corpus = {
        "name": "fsdd", "source": str(fsdd / "metadata.csv"), "split": "train", "task": "asr+speaker",
        "columns": {"audio": "path", "id": "path", "text": "transcript", "speaker": "speaker",
                    "duration": "duration_s", "split": "split"},
    }
    return finetune.main([
        "--config", str(TRAINING_CONFIG), "--output_dir", str(run_dir), "--max_steps", str(steps),
        "--set", f"data.train={json.dumps([corpus])}", "--set", f"model.overrides={json.dumps(CAUSAL_OVERRIDES)}",
        "--set", "training.save_every_steps=100000",
    ])


def held_out_recordings(fsdd: Path, limit: int | None) -> list[dict]:
    """The FSDD `test` rows (path made absolute), every n-th one when `limit` is smaller than the split."""
    rows = [row for row in csv.DictReader(open(fsdd / "metadata.csv")) if row["split"] == "test"]
    if limit is not None and limit < len(rows):
        rows = rows[:: -(-len(rows) // limit)][:limit]
    return [{**row, "path": str(fsdd / row["path"])} for row in rows]


@contextlib.contextmanager
def chunk_setting(model, chunk_size: int, left_context_frames: int):
    """The simulated forward reads the config at call time; set it for the block and restore it after."""
    saved = model.config.chunk_size, model.config.left_context_frames
    model.config.chunk_size, model.config.left_context_frames = chunk_size, left_context_frames
    try:
        yield
    finally:
        model.config.chunk_size, model.config.left_context_frames = saved


def stream_input(features: torch.Tensor, chunk_size: int) -> tuple[torch.Tensor, int]:
    """(frames, 80) fbank → (1, T, 80): the fbank, the end-of-stream padding and LOG_EPS up to whole chunks, as a
    `StreamingRecognizer` sees them; and the encoder frames (25 Hz) of the chunks it decodes."""
    padded = len(features) + LOOKAHEAD_FBANK_FRAMES + TAIL_PADDING_FRAMES
    num_chunks = -(-padded // (2 * chunk_size))
    inputs = torch.full((1, num_chunks * 2 * chunk_size + LOOKAHEAD_FBANK_FRAMES, features.shape[1]), LOG_EPS)
    inputs[0, : len(features)] = features
    return inputs, num_chunks * chunk_size // 2


@torch.no_grad()
def greedy_tokens(model, inputs: torch.Tensor, frames: int | None = None) -> dict[str, list[int]]:
    """Transducer and CTC greedy tokens of one full forward of `inputs` (1, T, 80), on its first `frames` outputs."""
    outputs = model(inputs)
    encoder_out, ctc_logits = outputs.last_hidden_state[:, :frames], outputs.ctc_logits[:, :frames]
    lengths = torch.tensor([encoder_out.shape[1]])
    transducer = greedy_search(encoder_out, lengths, model.transducer.predictor, model.transducer.joiner)[0]
    ctc = ctc_greedy_decode(ctc_logits, lengths, model.config.blank_id)[0]
    return {"transducer": list(transducer.tokens), "ctc": list(ctc.tokens)}


def streamed_tokens(asr, model, audio: np.ndarray, rate: int, chunk_size: int, left_context_frames: int,
                    piece_s: float) -> dict[str, list[int]]:
    """True streaming, pieces of `piece_s` seconds: the transducer through the pipeline's `stream()` (the
    `MT2KDForRNNT` it loads), CTC through the same generator (`stream_transcripts`) with the multi-task model."""
    piece = max(int(round(piece_s * rate)), 1)
    settings = {"chunk_size": chunk_size, "left_context_frames": left_context_frames, "return_timestamps": None}

    def pieces():
        return (audio[start : start + piece] for start in range(0, len(audio), piece))

    transducer = list(asr.stream(pieces(), sampling_rate=rate, decoding_method="greedy_search", **settings))[-1]
    ctc = list(stream_transcripts(
        model, asr.feature_extractor, asr.tokenizer, pieces(), rate, "ctc_greedy", **settings
    ))[-1]
    return {"transducer": list(transducer["tokens"]), "ctc": list(ctc["tokens"])}


def edit_distance(reference: list[int], hypothesis: list[int]) -> int:
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ref != hyp))
    return row[-1]


def score(tokenizer, references: list[str], reference_ids: list[list[int]], hypotheses: list[list[int]]) -> dict:
    texts = [tokenizer.decode(tokens, group_tokens=False) for tokens in hypotheses]
    wer = word_error_rate(references, texts)
    token_errors = sum(edit_distance(ref, hyp) for ref, hyp in zip(reference_ids, hypotheses))
    return {
        "wer": wer.wer, "substitutions": wer.substitutions, "deletions": wer.deletions,
        "insertions": wer.insertions, "num_words": wer.num_words,
        "token_error_rate": token_errors / sum(len(ids) for ids in reference_ids),
        "utterances_wrong": sum(ref != hyp for ref, hyp in zip(reference_ids, hypotheses)),
    }


def decode_all(model, features: list[torch.Tensor], chunk_size: int, left_context_frames: int,
               stream_chunk_size: int | None) -> list[dict[str, list[int]]]:
    """Greedy tokens of one full forward per recording with the given chunk setting (-1: full context), on the
    fbank alone (`stream_chunk_size` None) or on the input a stream of `stream_chunk_size` chunks sees."""
    with chunk_setting(model, chunk_size, left_context_frames):
        if stream_chunk_size is None:
            return [greedy_tokens(model, f.unsqueeze(0)) for f in features]
        return [greedy_tokens(model, *stream_input(f, stream_chunk_size)) for f in features]


def evaluate(model_folder: Path, recordings: list[dict], chunk_sizes: list[int], left_context_frames: int,
             piece_s: float) -> list[dict]:
    """One row per (input, decoding, head); each but the first compares its tokens with a reference row's."""
    asr = pipeline("mt2kd-streaming-asr", model=str(model_folder))
    model = MT2KDForMultiTask.from_pretrained(model_folder).eval()  # transducer + CTC (+ speaker) heads
    extractor, tokenizer = asr.feature_extractor, asr.tokenizer
    references = [row["transcript"] for row in recordings]
    reference_ids = [[i for i in ids if i != LABEL_PADDING] for ids in encode_labels(tokenizer, references).tolist()]
    audio = [soundfile.read(row["path"], dtype="float32") for row in recordings]
    features = [torch.from_numpy(extractor(a, sampling_rate=r, return_tensors="np")["input_features"][0]) for a, r in audio]

    # (input, decoding, chunk_size, tokens per recording, the decoding it is compared with)
    runs = [("fbank", "full context", -1, decode_all(model, features, -1, -1, None), None)]
    for chunk_size in chunk_sizes:
        runs.append(("fbank", f"simulated {chunk_size * 20} ms", chunk_size,
                     decode_all(model, features, chunk_size, left_context_frames, None), "full context"))
    for chunk_size in chunk_sizes:
        began = time.perf_counter()
        stream = f"stream input ({chunk_size * 20} ms chunks)"
        runs.append((stream, "full context", -1, decode_all(model, features, -1, -1, chunk_size), None))
        runs.append((stream, f"simulated {chunk_size * 20} ms", chunk_size,
                     decode_all(model, features, chunk_size, left_context_frames, chunk_size), "full context"))
        runs.append((stream, f"true streaming {chunk_size * 20} ms", chunk_size,
                     [streamed_tokens(asr, model, a, r, chunk_size, left_context_frames, piece_s) for a, r in audio],
                     f"simulated {chunk_size * 20} ms"))
        print(f"{chunk_size * 20} ms chunks: decoded in {time.perf_counter() - began:.0f} s", flush=True)

    rows = []
    for input_name, decoding, chunk_size, decoded, compared_with in runs:
        for head in ("transducer", "ctc"):
            hypotheses = [tokens[head] for tokens in decoded]
            row = {"input": input_name, "decoding": decoding, "chunk_size": chunk_size,
                   "left_context_frames": left_context_frames if chunk_size > 0 else -1, "head": head,
                   **score(tokenizer, references, reference_ids, hypotheses)}
            if compared_with is not None:
                (other,) = [run[3] for run in runs if run[0] == input_name and run[1] == compared_with]
                row["compared_with"] = compared_with
                row["utterances_differing"] = sum(a != b[head] for a, b in zip(hypotheses, other))
            rows.append(row)
    return rows


def held_out_summary(recordings: list[dict], chunk_sizes: list[int]) -> dict:
    durations = [float(row["duration_s"]) for row in recordings]
    return {
        "split": "FSDD test (takes 0-4 of every speaker and digit; not trained on)",
        "recordings": len(recordings), "speakers": sorted({row["speaker"] for row in recordings}),
        "duration_s_mean": round(sum(durations) / len(durations), 3), "duration_s_max": max(durations),
        "longer_than_chunk": {f"{c * 20} ms": sum(d > c * 0.02 for d in durations) for c in chunk_sizes},
    }


def table(rows: list[dict]) -> str:
    lines = ["| input | decoding | head | WER | token error rate | wrong utterances | tokens ≠ |", "|---" * 7 + "|"]
    for row in rows:
        differing = f"{row['utterances_differing']} vs {row['compared_with']}" if "compared_with" in row else ""
        lines.append(
            f"| {row['input']} | {row['decoding']} | {row['head']} | {100 * row['wer']:.1f} % | "
            f"{100 * row['token_error_rate']:.1f} % | {row['utterances_wrong']} | {differing} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="an already trained causal model folder (skips training)")
    parser.add_argument("--run_dir", type=Path, help="training output folder (default: a temporary folder)")
    parser.add_argument("--steps", type=int, default=600, help="training steps (~0.45 s each on 2 cores)")
    parser.add_argument("--fsdd", type=Path, default=FSDD, help="the FSDD folder with metadata.csv")
    parser.add_argument("--limit", type=int, help="held-out recordings to decode (default: all 300)")
    parser.add_argument("--chunk_sizes", type=int, nargs="+", default=[16, 32], help="50 Hz frames (16 = 320 ms)")
    parser.add_argument("--left_context_frames", type=int, default=128)
    parser.add_argument("--piece_s", type=float, default=0.1, help="audio given to the stream per call, seconds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "streaming_accuracy.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    machine = describe_machine(torch.device("cpu"))

    model_folder = args.model
    if model_folder is None:
        run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="mt2kd-streaming-accuracy-"))
        began = time.perf_counter()
        model_folder = train_causal_model(run_dir, args.steps, args.fsdd)
        training = {"steps": args.steps, "seconds": round(time.perf_counter() - began, 1), "run_dir": str(run_dir),
                    "config": str(TRAINING_CONFIG.relative_to(REPO_ROOT)), "model_overrides": CAUSAL_OVERRIDES,
                    "train_recordings": "FSDD split=train (2700)", "machine": machine}
        (model_folder.parent / TRAINING_RECORD).write_text(json.dumps(training, indent=2))
        print(f"trained {args.steps} steps in {training['seconds']:.0f} s → {model_folder}", flush=True)
    record = model_folder.parent / TRAINING_RECORD
    training = json.loads(record.read_text()) if record.exists() else None

    recordings = held_out_recordings(args.fsdd, args.limit)
    rows = evaluate(model_folder, recordings, args.chunk_sizes, args.left_context_frames, args.piece_s)
    print(table(rows))
    result = {"machine": machine, "model": str(model_folder), "training": training,
              "held_out": held_out_summary(recordings, args.chunk_sizes),
              "piece_s": args.piece_s, "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
