"""Draw the docs' benchmark charts from the figures the benchmarks recorded.

Reads ``docs/assets/benchmarks/results.jsonl`` (one JSON line per benchmark,
written by ``nox -s bench -- --charts``; see ``benchmarks/_record.py``) and
writes, next to it, one SVG per benchmark and ``run.txt``, the line saying
when, where and how the figures were measured, which ``docs/benchmarks.md``
includes. Every chart compares figures of the same run. Re-running on the
same figures gives byte-identical files.

Run: ``python benchmarks/charts.py [RESULTS.jsonl]`` (or ``nox -s charts``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "assets", "benchmarks")
K8SWATCH = "#3f51b5"  # material's indigo, the docs' primary colour
K8SWATCH_LIGHT = "#7986cb"
PEER = "#9e9e9e"
PEER_DARK = "#616161"

plt.rcParams.update(
    {
        "svg.hashsalt": "k8swatch",  # stable ids in the SVG
        "svg.fonttype": "none",  # text stays text: smaller, selectable
        "font.family": "sans-serif",
        "font.size": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 11,
        "axes.titleweight": "bold",
    }
)


def load(path: str) -> dict[str, dict[str, Any]]:
    """The last record of each benchmark in *path*."""
    records: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                records[record["bench"]] = record
    return records


def save(fig: Figure, name: str) -> None:
    fig.savefig(os.path.join(OUT, name), format="svg", metadata={"Date": None})
    plt.close(fig)


def label_bars(ax: Axes, bars: Any, texts: Sequence[str], *, horizontal: bool = False) -> None:
    for bar, text in zip(bars, texts, strict=True):
        if horizontal:
            x, y = bar.get_width(), bar.get_y() + bar.get_height() / 2
            ax.annotate(
                text, (x, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8
            )
        else:
            x, y = bar.get_x() + bar.get_width() / 2, bar.get_height()
            ax.annotate(
                text, (x, y), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=8
            )


def fanout(record: dict[str, Any]) -> None:
    """bench_broadcaster.py: deliveries/s at 1, 100, 1000 watchers, k8swatch vs peers."""
    rows = record["figures"]["deliveries_per_second"]
    watchers = sorted(rows, key=int)
    systems = [
        ("k8s/event", "k8swatch Broadcaster, per event", K8SWATCH),
        ("k8s/batch", "k8swatch Broadcaster, batches()", K8SWATCH_LIGHT),
        ("bcast pkg", "broadcaster package 0.3 (memory)", PEER_DARK),
        ("anyio str", "anyio memory stream per watcher", PEER),
    ]
    fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
    width = 0.2
    for i, (key, label, colour) in enumerate(systems):
        xs = [w + (i - 1.5) * width for w in range(len(watchers))]
        values = [rows[n][key] / 1e6 for n in watchers]
        bars = ax.bar(xs, values, width, label=label, color=colour)
        label_bars(ax, bars, [f"{v:.2f}" for v in values])
    ax.set_xticks(range(len(watchers)), [f"{int(n):,} watcher{'s' * (n != '1')}" for n in watchers])
    ax.set_ylabel("million deliveries / s (higher is better)")
    ax.set_title("Fan-out in one process, asyncio: deliveries per second")
    ax.set_ylim(0, max(rows[n][key] for n in watchers for key, _, _ in systems) / 1e6 * 1.2)
    ax.legend(loc="upper left", frameon=False, fontsize=9)
    save(fig, "fanout.svg")


def server(record: dict[str, Any]) -> None:
    """bench_server.py: deliveries/s and write-to-last-watcher latency, against the Go server."""
    figures = record["figures"]
    runs: dict[str, dict[str, list[float]]] = figures["deliveries"]
    names = ["go", "uvicorn", "hypercorn-trio"]
    labels = ["lean Go server\n(the peer)", "k8swatch,\nuvicorn", "k8swatch,\nhypercorn-trio"]
    colors = [PEER, K8SWATCH, K8SWATCH_LIGHT]

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[len(ordered) // 2]

    fig, (left, right) = plt.subplots(1, 2, figsize=(8.5, 3.6), layout="constrained")
    rates = [median(runs[n]["deliveries_per_second"]) for n in names]
    ratios = [median(runs[n]["ratio_to_go"]) for n in names]
    bars = left.bar(labels, rates, color=colors, width=0.6)
    label_bars(left, bars, [f"{r:,.0f}\n({x:.2f}x)" for r, x in zip(rates, ratios, strict=True)])
    left.set_ylim(0, max(rates) * 1.3)
    left.tick_params(axis="x", labelsize=8)
    left.set_ylabel("deliveries / s (higher is better)")
    left.set_title("Fan-out over HTTP", loc="left")

    width = 0.38
    p50 = [median(runs[n]["p50_ms"]) for n in names]
    p99 = [median(runs[n]["p99_ms"]) for n in names]
    xs = range(len(names))
    low = right.bar([x - width / 2 for x in xs], p50, width, color=colors, label="p50")
    high = right.bar(
        [x + width / 2 for x in xs], p99, width, color=colors, alpha=0.55, hatch="//", label="p99"
    )
    label_bars(right, low, [f"{v:.0f}" for v in p50])
    label_bars(right, high, [f"{v:.0f}" for v in p99])
    right.set_xticks(list(xs), labels)
    right.tick_params(axis="x", labelsize=8)
    right.set_ylim(0, max(p99) * 1.2)
    right.set_ylabel("ms, p50 / p99 hatched (lower is better)")
    right.set_title("Write to the last watcher", loc="left")
    fig.suptitle(
        f"{figures['watchers']:,} watch connections, {figures['events']} writes: "
        f"median of {figures['rounds']} rounds",
        fontweight="bold",
    )
    save(fig, "server.svg")


def redis(record: dict[str, Any]) -> None:
    """bench_redis.py: end-to-end events/s through Redis vs one in-memory storage; appends."""
    figures = record["figures"]
    rates: dict[str, float] = figures["events_per_second"]
    latency: dict[str, dict[str, float]] = figures["latency_ms"]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(8, 4), layout="constrained", width_ratios=(2.2, 1)
    )
    names = list(rates)[::-1]  # the benchmark's order, top down
    colours = [
        PEER if not n.startswith("redis") else K8SWATCH if "create" in n else K8SWATCH_LIGHT
        for n in names
    ]
    bars = left.barh(range(len(names)), [rates[n] for n in names], color=colours)
    left.set_yticks(range(len(names)), [n.replace(", ", "\n", 1) for n in names], fontsize=8)
    label_bars(
        left,
        bars,
        [f"{rates[n]:,.0f}  (p50 {latency[n]['p50']:.0f} ms)" for n in names],
        horizontal=True,
    )
    left.set_xlim(0, max(rates.values()) * 1.55)
    left.set_xlabel("events/s, write to every watcher (higher is better)")
    left.set_title(f"End to end, {figures['events']:,} events", loc="left")

    appends: dict[str, float] = figures["appends_per_second"]
    logs = ["RedisEventLog", "MemoryEventLog"]
    bars = right.bar(logs, [appends[n] for n in logs], color=[K8SWATCH, PEER], width=0.55)
    label_bars(right, bars, [f"{appends[n]:,.0f}" for n in logs])
    right.set_yscale("log")
    right.set_ylim(1e3, max(appends.values()) * 3)
    right.tick_params(axis="x", labelsize=8)
    right.set_ylabel(f"appends/s, {figures['writers']} writers (log scale)")
    right.set_title("EventLog.append()", loc="left")
    save(fig, "redis.svg")


def run_line(records: dict[str, dict[str, Any]]) -> str:
    """When, where and how the figures were measured (one line of Markdown)."""
    first = next(iter(records.values()))
    dates = sorted({r["date"] for r in records.values()})
    when = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    kind = (
        "a `--quick` run (smaller sizes)"
        if any(r["quick"] for r in records.values())
        else "a full run"
    )
    return f"Measured {when} on {first['machine']}, in {kind} of `nox -s bench -- --charts`.\n"


def main(argv: Sequence[str]) -> None:
    path = argv[0] if argv else os.path.join(OUT, "results.jsonl")
    records = load(path)
    os.makedirs(OUT, exist_ok=True)
    for name, draw in (("broadcaster", fanout), ("server", server), ("redis", redis)):
        if name in records:
            draw(records[name])
        else:
            print(f"{path} has no figures of bench_{name}.py: its chart was not redrawn")
    with open(os.path.join(OUT, "run.txt"), "w", encoding="utf-8") as f:
        f.write(run_line(records))


if __name__ == "__main__":
    main(sys.argv[1:])
