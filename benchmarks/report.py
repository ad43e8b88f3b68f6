"""Markdown tables for RESULTS.md from the JSON that `benchmarks/run.py` writes.

    python benchmarks/report.py results.json [more.json ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _number(value, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _seconds(values) -> str:
    return ", ".join(f"{value:.3g}" for value in values) if values else ""


def markdown(results: dict) -> str:
    machine = results["machine"]
    where = machine.get("gpu") or f"{machine['cpu']}, {machine['cpu_cores']} cores, {machine['torch_threads']} threads"
    lines = [
        f"Machine: {where}; torch {machine['torch']}, transformers {machine['transformers']}; "
        f"{machine['date']}; commit {machine['commit']}; load average at start {machine['load_average_1_5_15_min']}; "
        f"after each section {results.get('load_average_after_section')}",
        "",
    ]
    rows = results["rows"]
    inference = [row for row in rows if row["section"] == "inference"]
    if inference:
        lines += [
            "| setting | model | s/call (median) | every round, s | CPU s/call | s audio/s | RTF | one pass faster by | GFLOP/call | peak MiB |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in inference:
            lines.append(
                f"| {row['setting']} | {row['model']} | {_number(row['median_s'], 4)} | {_seconds(row.get('seconds'))} | "
                f"{_number(row.get('median_cpu_s'), 4)} | {_number(row['audio_s_per_s'])} | "
                f"{_number(row['real_time_factor'], 3)} | "
                f"{_number(row.get('one_pass_speedup')) + 'x' if 'one_pass_speedup' in row else ''} | "
                f"{_number(row.get('gflop_per_call'), 4)} | {_number(row.get('peak_memory_mib'))} |"
            )
        lines.append("")
    fast = [row for row in rows if row["section"] == "fast_paths" and "median_s" in row]
    if fast:
        lines += ["| setting | greedy search | s (median) | every round, s | ms per frame | speedup | same tokens |",
                  "|---|---|---|---|---|---|---|"]
        for row in fast:
            lines.append(
                f"| {row['setting']} | {row['model']} | {_number(row['median_s'], 4)} | {_seconds(row['seconds'])} | "
                f"{_number(row['ms_per_encoder_frame'])} | {_number(row.get('speedup'))} | "
                f"{_number(row.get('same_tokens_as_before'))} |"
            )
        lines.append("")
    for row in rows:
        if row["section"] == "fast_paths" and "median_s" not in row:
            values = {key: value for key, value in row.items() if key not in ("section", "model", "setting")}
            lines += [f"{row['model']}, {row['setting']}: " + ", ".join(f"{k} {_number(v, 4)}" for k, v in values.items()), ""]
    long_form = [row for row in rows if row["section"] == "long_form"]
    if long_form:
        lines += ["| audio | pipeline | s | RTF | recording MiB | memory before call MiB | peak MiB | peak growth MiB |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in long_form:
            lines.append(
                f"| {row['audio_minutes']:g} min | {row['model']} | {_number(row['seconds'])} | "
                f"{_number(row['real_time_factor'], 3)} | {_number(row['recording_mib'])} | "
                f"{_number(row['memory_before_call_mib'])} | {_number(row['peak_memory_mib'])} | "
                f"{_number(row['peak_growth_during_call_mib'])} |"
            )
        lines.append("")
    training = [row for row in rows if row["section"] == "training"]
    if training:
        lines += ["| model | batch | precision | s/step (median) | every step, s | s audio/s | GFLOP/step | achieved TFLOP/s | MFU | peak MiB |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for row in training:
            lines.append(
                f"| {row['model']} | {row['batch_size']} x {row['duration_s']:g} s | {row['precision']} | "
                f"{_number(row['median_step_s'])} | {_seconds(row['step_seconds'])} | {_number(row['audio_s_per_s'])} | "
                f"{_number(row['gflop_per_step'], 4)} | {_number(row['achieved_tflop_per_s'], 3)} | "
                f"{_number(100 * row['mfu']) + ' %' if 'mfu' in row else 'needs GPU'} | {_number(row['peak_memory_mib'])} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        print(f"### {path}\n")
        print(markdown(json.loads(Path(path).read_text())))


if __name__ == "__main__":
    main()
