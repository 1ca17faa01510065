"""Short fuzz run of the selector parsers: only SelectorError may escape.

Run as ``python tests/fuzz_selectors.py [seconds]`` (default 30 s; nox's ``fuzz``
session runs it in CI). Hypothesis drives the inputs: arbitrary unicode, NUL,
control characters, token soup and mutations of valid selectors. Every input
must either parse (and then round-trip through ``str()``) or raise
``SelectorError``; anything else is a bug and fails the run with the input.
The run is bounded in time: batches of fresh examples run until the budget is spent.
"""

from __future__ import annotations

import sys
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k8swatch import (
    SelectorError,
    parse_field_selector,
    parse_label_selector,
    unescape_field_value,
)

_TOKENS = [
    "x",
    "a",
    "in",
    "notin",
    "(",
    ")",
    ",",
    "=",
    "==",
    "!=",
    "!",
    ">",
    "<",
    " ",
    "\t",
    "\n",
    "\\",
    "\\,",
    "\\=",
    "1",
    "-1",
    "007",
    "example.com/",
    "/",
    ".",
    "-",
    "_",
    "é",
    "\x00",
    "\v",
    "\u00a0",
    "9223372036854775808",
    "a" * 70,
]
_VALID = [
    "x=a,y=b",
    "x in (a,b),!y",
    "a notin (),b>1,c<2",
    "metadata.name=a,metadata.namespace!=b",
    "example.com/key==v",
    "k=\\,\\=\\\\",
]


def _mutate(seed: str, edits: list[tuple[int, str]]) -> str:
    text = seed
    for index, insert in edits:
        pos = index % (len(text) + 1)
        text = text[:pos] + insert + text[pos + 1 :]
    return text


inputs = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=80),
    st.lists(st.sampled_from(_TOKENS), max_size=25).map("".join),
    st.builds(
        _mutate,
        st.sampled_from(_VALID),
        st.lists(st.tuples(st.integers(0, 100), st.sampled_from(_TOKENS)), max_size=4),
    ),
)


def _check(text: str) -> None:
    for parse in (parse_label_selector, parse_field_selector):
        try:
            selector = parse(text)
        except SelectorError as exc:
            if exc.text != text or not 0 <= exc.position <= len(text):
                raise AssertionError(f"bad error location for {text!r}: {exc!r}") from exc
            continue
        again = parse(str(selector))
        if str(parse(str(again))) != str(again):
            raise AssertionError(f"{parse.__name__}: no stable canonical form for {text!r}")
    try:
        unescape_field_value(text)
    except SelectorError:
        pass


def main(seconds: float) -> int:
    deadline = time.monotonic() + seconds
    count = 0

    @settings(
        max_examples=500, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(inputs)
    def fuzz(text: str) -> None:
        nonlocal count
        count += 1
        _check(text)

    # Batches of fresh random examples until the budget is spent; a failure is
    # shrunk and reported by hypothesis, and ends the run with an error.
    while time.monotonic() < deadline:
        fuzz()
    print(f"fuzzed {count} inputs in {seconds:.0f} s: only SelectorError escaped")
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 30.0))
