"""The JSON report every inference subcommand writes, and its exit status."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_report"]


def write_report(
    command: str, model: str, results: list[dict[str, Any]], output: str | None, **summary: Any
) -> int:
    """Write `{"command", "model", "succeeded", "failed", **summary, "results"}` as JSON to `output` (a file) or
    standard output; returns the exit status: 0 when at least one result has no `"error"`, else 1.

    numpy arrays and scalars become lists and numbers.
    """
    failed = sum("error" in result for result in results)
    report = {
        "command": command,
        "model": model,
        "succeeded": len(results) - failed,
        "failed": failed,
        **summary,
        "results": results,
    }
    text = json.dumps(report, indent=2, default=_to_json) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
        print(f"mt2kd {command}: {report['succeeded']} succeeded, {failed} failed; wrote {output}", file=sys.stderr)
    if report["succeeded"] == 0:
        print(f"mt2kd {command}: no input succeeded", file=sys.stderr)
        return 1
    return 0


def _to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")
