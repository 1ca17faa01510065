"""Machine-readable benchmark figures, for ``benchmarks/charts.py``.

When ``K8SWATCH_BENCH_JSON`` names a file, each benchmark appends one JSON line
to it: the benchmark's name, when and where it ran, whether it was a
``--quick`` run, and its figures (the same ones it prints). Without the
variable nothing is written. ``nox -s bench -- --charts`` sets it.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from typing import Any

ENV = "K8SWATCH_BENCH_JSON"


def machine() -> str:
    """One line naming the machine: CPU model, cores, OS, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


def record(bench: str, figures: dict[str, Any]) -> None:
    """Append *figures* of benchmark *bench* to the file named by ``K8SWATCH_BENCH_JSON``."""
    path = os.environ.get(ENV)
    if not path:
        return
    line = {
        "bench": bench,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "quick": "--quick" in sys.argv,
        "figures": figures,
    }
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
