"""Label selector parse and match throughput for 1, 5 and 20 requirements.

Run as ``python benchmarks/bench_selectors.py``. Prints, per selector size:

* parse time (µs per ``parse_label_selector`` call);
* match time of the compiled selector (µs per ``matches()`` and ns per
  requirement), for equality-only selectors (the common ``app=web,tier=db``
  shape) and for mixed operators (``in``, ``notin``, ``!=``, exists, ``>``);
* the same match done by a naive interpreter over the requirement objects, and
  by re-parsing the text for every match (what "never re-parse" saves), as
  ratios measured in the same run.

Every requirement matches, so every requirement is evaluated (the worst case).
"""

from __future__ import annotations

import functools
import sys
import timeit
from collections.abc import Callable, Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from k8swatch import LabelSelector, parse_label_selector
from k8swatch._go import go_parse_int
from k8swatch._selectors import SelectorOperator

Op = SelectorOperator
SIZES = (1, 5, 20)
LABELS = {f"example.com/key{i}": f"value{i}" for i in range(20)}
LABELS.update({f"num{i}": str(100 + i) for i in range(20)})
LABELS.update({f"extra{i}": "x" for i in range(10)})


def equality_text(n: int) -> str:
    return ",".join(f"example.com/key{i}=value{i}" for i in range(n))


def mixed_text(n: int) -> str:
    shapes = [
        "example.com/key{i} in (value{i},other)",
        "example.com/key{i} notin (nope,never)",
        "example.com/key{i}!=nope",
        "example.com/key{i}",
        "num{i}>{i}",
        "!missing{i}",
    ]
    return ",".join(shapes[i % len(shapes)].format(i=i) for i in range(n))


def naive_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Interpret the requirements on every call (no compilation)."""
    for r in selector.requirements:
        op = r.operator
        present = r.key in labels
        if op is Op.EXISTS:
            ok = present
        elif op is Op.DOES_NOT_EXIST:
            ok = not present
        elif op in (Op.EQUALS, Op.DOUBLE_EQUALS, Op.IN):
            ok = present and labels[r.key] in r.values
        elif op in (Op.NOT_EQUALS, Op.NOT_IN):
            ok = not present or labels[r.key] not in r.values
        else:
            try:
                number = go_parse_int(labels[r.key]) if present else None
            except ValueError:
                number = None
            bound = int(r.values[0])
            ok = number is not None and (
                number > bound if op is Op.GREATER_THAN else number < bound
            )
        if not ok:
            return False
    return True


def reparse_and_match(text: str) -> bool:
    """What matching would cost if a selector were parsed for every object."""
    return parse_label_selector(text).matches(LABELS)


def per_call(fn: Callable[[], object], budget: float = 0.25) -> float:
    """Seconds per call: best of 5 runs, each sized to take about *budget* / 5 seconds."""
    number, _ = timeit.Timer(fn).autorange()
    runs = max(1, int(number * (budget / 5) / 0.2))
    return min(timeit.repeat(fn, number=runs, repeat=5)) / runs


def main() -> None:
    baseline = per_call(lambda: LABELS.get("example.com/key3") == "value3")
    print(f"Python {sys.version.split()[0]}; every requirement matches (all evaluated)")
    print(
        f"calibration: one `labels.get(key) == value` costs {baseline * 1e9:.0f} ns here "
        "(about 35 ns on an idle machine)\n"
    )
    header = (
        f"{'shape':<9}{'reqs':>5}{'parse µs':>10}{'match µs':>10}{'ns/req':>8}"
        f"{'naive µs':>10}{'naive x':>8}{'reparse µs':>12}{'reparse x':>10}"
    )
    print(header)
    print("-" * len(header))
    worst_ns = 0.0
    for shape, make in (("equality", equality_text), ("mixed", mixed_text)):
        for n in SIZES:
            text = make(n)
            selector = parse_label_selector(text)
            assert len(selector.requirements) == n
            assert selector.matches(LABELS)
            assert naive_matches(selector, LABELS)
            parse = per_call(functools.partial(parse_label_selector, text))
            match = per_call(functools.partial(selector.matches, LABELS))
            naive = per_call(functools.partial(naive_matches, selector, LABELS))
            reparse = per_call(functools.partial(reparse_and_match, text))
            ns_per_req = match * 1e9 / n
            worst_ns = max(worst_ns, ns_per_req)
            print(
                f"{shape:<9}{n:>5}{parse * 1e6:>10.2f}{match * 1e6:>10.3f}{ns_per_req:>8.0f}"
                f"{naive * 1e6:>10.3f}{naive / match:>8.1f}{reparse * 1e6:>12.2f}"
                f"{reparse / match:>10.0f}"
            )
    print(
        f"\nworst compiled match cost: {worst_ns:.0f} ns per requirement "
        f"= {worst_ns / (baseline * 1e9):.1f}x one dict lookup-and-compare "
        f"({'well under' if worst_ns < 500 else 'under' if worst_ns < 1000 else 'over'} "
        "1 µs on this machine)"
    )


if __name__ == "__main__":
    main()
