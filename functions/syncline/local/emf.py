"""Read CloudWatch Embedded Metric Format records back from the local functions' log file.

The demo and the benchmarks report what the handlers published as metrics, the same figures a
CloudWatch dashboard would show, instead of counting on the side.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path


class MetricLog:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = path.stat().st_size if path.exists() else 0

    def mark(self) -> None:
        """Only records written after this call are read next."""
        self._offset = self._path.stat().st_size if self._path.exists() else 0

    def read(self) -> dict[str, list[float]]:
        """Metric name -> every value published since the mark."""
        values: dict[str, list[float]] = defaultdict(list)
        if not self._path.exists():
            return values
        with self._path.open(encoding="utf-8") as log:
            log.seek(self._offset)
            for line in log:
                if '"_aws"' not in line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                for directive in record["_aws"].get("CloudWatchMetrics", []):
                    for metric in directive.get("Metrics", []):
                        value = record.get(metric["Name"])
                        values[metric["Name"]].extend(value if isinstance(value, list) else [value])
        return values


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]
