"""Release a trained MT2KD model folder to the Hugging Face Hub.

    python hub_upload.py FOLDER --repo-id user/name [--eval-results results.json] [--dry-run]
        [--private] [--revision BRANCH] [--commit-message TEXT] [--output-dir RELEASE_DIR]

Checks FOLDER (config, weights, processor), writes the release folder (weights, config with
`auto_map` and `custom_pipelines`, front-end files, remote code, README.md from model_card.md with
the metrics of training/evaluate.py's JSON), then creates the repository and uploads the folder.
FOLDER is only read. The token comes from HF_TOKEN or `hf auth login`. Connection failures are retried
(5 tries); when the Hub stays unreachable the command ends with one line saying so (exit 1). Re-running the
same command after an interrupted or failed upload completes it. The card's training data and teachers come
from FOLDER's `mt2kd_training.json` (written by training/kd.py and training/finetune.py), its speaker threshold
from config.json. The library code is `training_mt2kd.release.release`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from training_mt2kd.release.release import ReleaseError, assemble_release, load_eval_results, push_model_folder


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="Model folder written by save_pretrained (with its processor).")
    parser.add_argument("--repo-id", required=True, help="Hub repository, user/name or organisation/name.")
    parser.add_argument(
        "--eval-results", type=Path, help="training/evaluate.py's JSON; without it the card has no metrics."
    )
    parser.add_argument("--dry-run", action="store_true", help="Only write the release folder; upload nothing.")
    parser.add_argument("--private", action="store_true", help="Create the repository as private.")
    parser.add_argument("--revision", help="Branch to upload to (created if missing); default: main.")
    parser.add_argument("--commit-message", help="Message of the upload commit.")
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="Release folder (created, or replaced if it holds an earlier release); default: FOLDER-release "
        "next to FOLDER with --dry-run, else a temporary folder.",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if "/" not in args.repo_id:
        parser.error(f"--repo-id {args.repo_id!r} needs a namespace: user/name or organisation/name")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        eval_results = load_eval_results(args.eval_results) if args.eval_results else None
        if args.dry_run:
            output_dir = args.output_dir or args.folder.resolve().with_name(f"{args.folder.resolve().name}-release")
            release_dir = assemble_release(args.folder, output_dir, args.repo_id, eval_results)
            print(f"release folder written to {release_dir} (dry run: nothing uploaded)")
            return 0
        commit_url = push_model_folder(
            args.folder,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            commit_message=args.commit_message,
            eval_results=eval_results,
            output_dir=args.output_dir,
        )
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"released {args.repo_id}: {commit_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
