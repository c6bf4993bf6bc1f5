"""What every benchmark reports: its figure next to the baseline measured in the same run.

:func:`record` prints one line per benchmark and merges the result into ``bench-results.json``
at the repository root, keyed by name, so running some benchmarks keeps the others' figures.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS_FILE = Path(__file__).resolve().parents[2] / "bench-results.json"


def median_seconds(action: Callable[[], object], *, runs: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        action()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def record(
    name: str, *, unit: str, ours: float, baseline: float, target: str, meets: bool
) -> dict[str, Any]:
    """``target`` says in words what ``meets`` checked, e.g. ``"ours <= 0.3 s"``."""
    ratio = ours / baseline
    result = {
        "name": name,
        "unit": unit,
        "ours": round(ours, 6),
        "baseline": round(baseline, 6),
        "ratio": round(ratio, 4),
        "target": target,
        "meets": meets,
    }
    print(
        f"\n[bench] {name}: ours {ours:.4g} {unit} | baseline {baseline:.4g} {unit} "
        f"(same run) | ratio {ratio:.3f} | target {target}: {'met' if meets else 'MISSED'}"
    )
    results = json.loads(RESULTS_FILE.read_text()) if RESULTS_FILE.exists() else {}
    results[name] = result
    fd, temporary = tempfile.mkstemp(dir=RESULTS_FILE.parent, prefix=".bench-results-")
    with os.fdopen(fd, "w") as handle:
        json.dump(results, handle, indent=2, sort_keys=True, ensure_ascii=False)
        handle.write("\n")
    os.replace(temporary, RESULTS_FILE)
    return result
