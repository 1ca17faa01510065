"""Every fenced Python block of README.md and docs/ runs as the page shows it.

Each page in PAGES runs in a fresh subprocess (``_run_page.py``), in a temporary
directory: its blocks in order, in one namespace, so later blocks build on earlier
ones. A block's marker, an HTML comment on the last non-blank line before its fence,
says what else to do with it:

- ``<!-- example: fragment -->``: a piece of a larger program; compiled, not run;
- ``<!-- example: pytest -->``: a test; collected into one test module run by pytest;
- ``<!-- example: file NAME -->``: also written to NAME (``conftest.py``,
  ``pyproject.toml``, ``app.py``), before anything after it runs;
- ``<!-- example: output varies -->`` on a ``text`` block: not compared.

A ``text`` block right after a block that runs is what that block prints.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("_run_page.py")
TIMEOUT = 60

# Every page with a Python block, run in this order, but those in LEFT_OUT. A page
# that has no Python block any more must leave this list, and a new page with one
# must join it.
PAGES = (
    "README.md",
    "docs/tutorial/first-watch.md",
    "docs/tutorial/kubectl-watch.md",
    "docs/how-to/write-a-storage.md",
    "docs/how-to/serve-over-http.md",
    "docs/how-to/kubectl.md",
    "docs/how-to/custom-fields.md",
    "docs/how-to/test-on-both-backends.md",
    "docs/how-to/conformance.md",
    "docs/how-to/use-redis.md",
    "docs/explanation/resource-versions.md",
    "docs/explanation/selectors.md",
)

# Pages whose examples do not run yet, and why; to run one, move it to PAGES.
LEFT_OUT = {
    "docs/reference/fake-coder.md": "the fake.subscribe() block waits for a change nobody "
    "makes: it needs an <!-- example: fragment --> marker",
}

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w-]*)")
MARKER = re.compile(r"^\s*<!--\s*example:\s*(?P<what>.*?)\s*-->\s*$")
KINDS = ("fragment", "pytest")


def fenced_blocks(path: str) -> list[dict[str, object]]:
    """The fenced blocks of *path*: language, marker, first line and source."""
    lines = (ROOT / path).read_text().splitlines()
    found: list[dict[str, object]] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        end = index + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(fence) and not lines[end].strip().strip(fence[0])
        ):
            end += 1
        before = next((line for line in reversed(lines[:index]) if line.strip()), "")
        marker = MARKER.match(before)
        found.append(
            {
                "path": path,
                "line": index + 2,
                "lang": opening["lang"],
                "marker": marker["what"] if marker else "",
                "source": "".join(line[indent:] + "\n" for line in lines[index + 1 : end]),
            }
        )
        index = end + 1
    return found


def page_spec(path: str) -> list[dict[str, object]]:
    """What ``_run_page.py`` runs for *path*: each block's kind, file and expected output."""
    blocks = fenced_blocks(path)
    spec: list[dict[str, object]] = []
    for number, block in enumerate(blocks):
        marker = str(block["marker"])
        words = marker.split()
        file = words[1] if words[:1] == ["file"] and len(words) == 2 else None
        if marker and file is None and marker not in (*KINDS, "output varies"):
            raise AssertionError(f"{path}:{block['line']}: unknown example marker {marker!r}")
        kind = marker if marker in KINDS else "run"
        following = blocks[number + 1] if number + 1 < len(blocks) else None
        expected = None
        if (
            block["lang"] == "python"
            and kind == "run"
            and following is not None
            and following["lang"] == "text"
            and following["marker"] != "output varies"
        ):
            expected = following["source"]
        spec.append({**block, "kind": kind, "file": file, "expected": expected})
    return spec


def run_page(path: str, directory: Path) -> subprocess.CompletedProcess[str]:
    """Run *path*'s examples in a fresh interpreter in *directory*."""
    return subprocess.run(
        [sys.executable, str(RUNNER)],
        input=json.dumps(page_spec(path)),
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


@pytest.fixture(scope="module")
def page_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    """All pages' runs, started at once two at a time (each page is one subprocess)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            path: pool.submit(run_page, path, tmp_path_factory.mktemp(Path(path).stem))
            for path in PAGES
        }


@pytest.mark.parametrize("path", PAGES)
def test_page_examples_run(
    path: str, page_runs: dict[str, Future[subprocess.CompletedProcess[str]]]
) -> None:
    result = page_runs[path].result()
    assert result.returncode == 0, f"{path}:\n{result.stdout}\n{result.stderr}"


def test_every_page_with_python_is_listed() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    with_python = {
        str(page.relative_to(ROOT))
        for page in pages
        if any(block["lang"] == "python" for block in fenced_blocks(str(page.relative_to(ROOT))))
    }
    assert with_python == set(PAGES) | set(LEFT_OUT)
    assert not set(PAGES) & set(LEFT_OUT)


def test_fragments_are_marked_on_python_blocks_only() -> None:
    for path in PAGES:
        for block in page_spec(path):
            if block["kind"] != "run":
                assert block["lang"] == "python", f"{path}:{block['line']}"


def test_readme_quick_start_serves_coderworkspaces(tmp_path: Path) -> None:
    """The quick start's ``k8swatch serve`` starts and lists the demo workspace."""
    with subprocess.Popen(
        [
            str(Path(sys.executable).with_name("k8swatch")),
            "serve",
            "--port",
            "0",
            "--kubeconfig",
            str(tmp_path / "kubeconfig"),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as server:
        try:
            url = served_url(server)
            with urllib.request.urlopen(
                f"{url}/apis/aggregation.coder.com/v1alpha1/coderworkspaces", timeout=TIMEOUT
            ) as answer:
                listed = json.load(answer)
        finally:
            server.terminate()
    assert [item["metadata"]["name"] for item in listed["items"]] == ["acme.alice.dev-workspace"]


def served_url(server: subprocess.Popen[str]) -> str:
    """The URL that ``k8swatch serve`` prints on its ``URL:`` line (killed if it never does)."""
    assert server.stdout is not None
    lines: list[str] = []
    timer = threading.Timer(TIMEOUT, server.kill)
    timer.start()
    try:
        for line in server.stdout:
            lines.append(line)
            if line.startswith("URL: "):
                return line.removeprefix("URL: ").strip()
    finally:
        timer.cancel()
    raise AssertionError("k8swatch serve printed no URL:\n" + "".join(lines))
