"""Evaluate an MT2KD model folder with the paper's protocols: WER (ASR), macro mAP (audio tagging),
EER and minDCF with cosine scoring (speaker verification).

    python training/evaluate.py --model DIR --config CONFIG.yaml --output results.json \\
        [--device cpu|cuda] [--batch_duration_s S]

CONFIG.yaml: the format is below (training_mt2kd.evaluation.config); examples are
training/configs/eval_paper.yaml and training/configs/eval_tiny.yaml. Audio is never dropped: a
file that cannot be decoded stops the run with its id, as do tag names missing from the model's
`id2label`.

Output JSON: {"model": DIR, "results": [...]} with one entry per metric:
    asr      {task, dataset, dataset_config, split, decoding, metric: "wer", value (%), num_examples}
    tagging  {task, dataset, dataset_config, split, metric: "map", value (%), num_examples}
    speaker  {task, dataset, dataset_config, split, metric: "eer", value (%), num_examples (trials)}
             {task, dataset, dataset_config, split, metric: "min_dcf", p_target, value}
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from training_mt2kd.evaluation import config as config_format
from training_mt2kd.evaluation.config import load_evaluation_config
from training_mt2kd.evaluation.runner import evaluate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=f"{__doc__}\n{config_format.__doc__}", formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="model folder (save_pretrained, with its feature extractor)")
    parser.add_argument("--config", required=True, help="evaluation YAML (e.g. training/configs/eval_paper.yaml)")
    parser.add_argument("--output", required=True, help="results JSON to write")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    parser.add_argument("--batch_duration_s", type=float, help="seconds of audio per batch (overrides the config)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        config = load_evaluation_config(args.config)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    results = evaluate(args.model, config, args.device, args.batch_duration_s)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for entry in results["results"]:
        details = entry.get("decoding") or entry.get("p_target") or ""
        print(
            f"{entry['task']:8} {entry['dataset']} {entry['split']} {entry['metric']} {details}: {entry['value']:.3f}"
        )
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
