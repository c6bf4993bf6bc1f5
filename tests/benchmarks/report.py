"""What every benchmark reports: its figure next to the baseline measured in the same run.

:func:`record` prints one line per benchmark and merges the result into ``bench-results.json``
at the repository root: a list of ``{name, unit, ours, baseline, ratio, target, meets}`` in name
order, where a new figure replaces the one of the same name, so running some benchmarks keeps
the others' figures.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.storage import write_atomically

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
    previous = json.loads(RESULTS_FILE.read_text()) if RESULTS_FILE.exists() else []
    by_name = {item["name"]: item for item in previous if isinstance(item, dict)}
    by_name[name] = result
    listing = [by_name[key] for key in sorted(by_name)]
    text = json.dumps(listing, indent=2, ensure_ascii=False) + "\n"
    write_atomically(RESULTS_FILE, lambda handle: handle.write(text.encode()))
    return result
