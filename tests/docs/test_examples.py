"""Every fenced Python block of README.md and docs/ runs as the page shows it.

Each page in PAGES runs in a fresh subprocess (``_run_page.py``), in a temporary
directory: its blocks in order, in one namespace, so later blocks build on earlier
ones. A block's marker, an HTML comment on the last non-blank line before its fence,
says what else to do with it:

- ``<!-- example: fragment -->``: a piece of a larger program; compiled, not run;
- ``<!-- example: pytest -->``: a test; collected into one test module run by pytest;
- ``<!-- example: file NAME -->``: also written to NAME (``conftest.py``,
  ``pyproject.toml``, ``app.py``), before anything after it runs;
- ``<!-- example: output varies -->`` on a ``text`` block: not compared;
- ``<!-- example: against k8swatch serve -->`` on a ``console`` block: a shell
  session, run command by command against a fresh ``k8swatch serve``, each
  command's output compared with the page's (ages and column widths aside).

A ``text`` block right after a block that runs is what that block prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("_run_page.py")
# The conformance page runs the whole suite (about 200 cases) on a shared, loaded machine.
TIMEOUT = 120

# Every page with a Python block, run in this order, but those in LEFT_OUT. A page
# that has no Python block any more must leave this list, and a new page with one
# must join it.
PAGES = (
    "README.md",
    "docs/tutorial/first-watch.md",
    "docs/tutorial/kubectl-watch.md",
    "docs/how-to/write-a-storage.md",
    "docs/how-to/serve-over-http.md",
    "docs/how-to/object-lifecycle.md",
    "docs/how-to/kubectl.md",
    "docs/how-to/server-side-apply.md",
    "docs/how-to/custom-fields.md",
    "docs/how-to/test-on-both-backends.md",
    "docs/how-to/inject-faults.md",
    "docs/how-to/conformance.md",
    "docs/how-to/use-redis.md",
    "docs/how-to/health-and-metrics.md",
    "docs/testing/test-your-operator.md",
    "docs/explanation/coder-adapters.md",
    "docs/explanation/resource-versions.md",
    "docs/explanation/selectors.md",
    "docs/reference/fake-coder.md",
    "docs/reference/serve-security.md",
    "docs/reference/testing.md",
)

# Pages whose examples do not run yet, and why; to run one, move it to PAGES.
LEFT_OUT: dict[str, str] = {}

# The pages with a console block marked as run against k8swatch serve.
TRANSCRIPTS = ("README.md", "docs/how-to/kubectl.md")
SERVE_MARKER = "against k8swatch serve"

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w-]*)")
MARKER = re.compile(r"^\s*<!--\s*example:\s*(?P<what>.*?)\s*-->\s*$")
KINDS = ("fragment", "pytest")
# An age as kubectl prints it (9s, 5m, 2d7h, 328d): it depends on when the page runs.
AGE = re.compile(r"(?<!\S)\d+[smhdy](?:\d+[smh])?(?!\S)")


def fenced_blocks(path: str) -> list[dict[str, object]]:
    """The fenced blocks of *path*: language, marker, first line and source."""
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
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
        if marker and file is None and marker not in (*KINDS, "output varies", SERVE_MARKER):
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


def run_page(path: str, directory: Path) -> str:
    """Run *path*'s examples in a fresh interpreter in *directory*; what went wrong, if anything."""
    result = subprocess.run(
        [sys.executable, str(RUNNER)],
        input=json.dumps(page_spec(path)),
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return f"{path}:\n{result.stdout}\n{result.stderr}" if result.returncode else ""


@contextlib.contextmanager
def k8swatch_serve(directory: Path) -> Iterator[tuple[str, Path]]:
    """Run ``k8swatch serve --port 0`` in *directory*; yield its URL and kubeconfig."""
    kubeconfig = directory / "kubeconfig"
    log = directory / "serve.log"
    command = [str(Path(sys.executable).with_name("k8swatch")), "serve", "--port", "0"]
    with (
        log.open("w") as output,
        subprocess.Popen(
            [*command, "--kubeconfig", str(kubeconfig)],
            cwd=directory,
            stdout=output,
            stderr=subprocess.STDOUT,
        ) as server,
    ):
        try:
            deadline = time.monotonic() + TIMEOUT
            while not (urls := re.findall(r"^URL: (\S+)$", log.read_text(), re.MULTILINE)):
                assert server.poll() is None, f"k8swatch serve exited:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"no URL printed:\n{log.read_text()}"
                time.sleep(0.05)
            yield urls[0], kubeconfig
        finally:
            server.terminate()


def transcript(source: str) -> list[tuple[str, list[str]]]:
    """The commands of a console session (``$ ...``, heredocs included) and their output."""
    steps: list[tuple[str, list[str]]] = []
    lines = source.splitlines()
    index = 0
    while index < len(lines):
        assert lines[index].startswith("$ "), f"output before the first command: {lines[index]}"
        command = [lines[index].removeprefix("$ ")]
        index += 1
        heredoc = re.search(r"<<-?'?(\w+)'?", command[0])
        if heredoc:
            while lines[index] != heredoc[1]:
                command.append(lines[index])
                index += 1
            command.append(lines[index])
            index += 1
        output: list[str] = []
        while index < len(lines) and not lines[index].startswith("$ "):
            output.append(lines[index])
            index += 1
        steps.append(("\n".join(command), output))
    return steps


def shown(lines: list[str]) -> list[str]:
    """*lines* without blank lines, ages or the width of columns."""
    return [" ".join(AGE.sub("AGE", line).split()) for line in lines if line.strip()]


def run_transcript(path: str, directory: Path) -> str:
    """Run *path*'s session against a fresh ``k8swatch serve``; what went wrong, if anything."""
    block = next(b for b in fenced_blocks(path) if b["marker"] == SERVE_MARKER)
    with k8swatch_serve(directory) as (_, kubeconfig), contextlib.ExitStack() as background:
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "HOME": str(directory),  # kubectl's discovery cache
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        for command, expected in transcript(str(block["source"])):
            if command.startswith("export KUBECONFIG="):
                continue  # the test's own kubeconfig is in env
            if command.endswith("&"):
                watcher = background.enter_context(
                    subprocess.Popen(
                        ["bash", "-c", command.removesuffix("&")],
                        cwd=directory,
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
                background.callback(watcher.terminate)
                continue
            result = subprocess.run(
                ["bash", "-c", command],
                cwd=directory,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
            if shown(result.stdout.splitlines()) != shown(expected):
                return (
                    f"{path}:{block['line']}: `{command}` printed\n{result.stdout}\n"
                    "but the page shows\n" + "\n".join(expected)
                )
    return ""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[str]]]:
    """Every page's and session's run, started at once, three at a time."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {
            f"session {path}": pool.submit(
                run_transcript, path, tmp_path_factory.mktemp(Path(path).stem)
            )
            for path in TRANSCRIPTS
        }
        for path in PAGES:
            futures[path] = pool.submit(run_page, path, tmp_path_factory.mktemp(Path(path).stem))
        yield futures


@pytest.mark.parametrize("path", PAGES)
def test_page_examples_run(path: str, runs: dict[str, Future[str]]) -> None:
    problem = runs[path].result()
    assert not problem, problem


@pytest.mark.kubectl
@pytest.mark.parametrize("path", TRANSCRIPTS)
def test_session_against_k8swatch_serve(path: str, runs: dict[str, Future[str]]) -> None:
    problem = runs[f"session {path}"].result()
    assert not problem, problem


def test_every_page_with_python_is_listed() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    blocks = {
        str(page.relative_to(ROOT)): fenced_blocks(str(page.relative_to(ROOT))) for page in pages
    }
    with_python = {
        path for path, found in blocks.items() if any(b["lang"] == "python" for b in found)
    }
    assert with_python == set(PAGES) | set(LEFT_OUT)
    assert not set(PAGES) & set(LEFT_OUT)
    sessions = {
        path for path, found in blocks.items() if any(b["marker"] == SERVE_MARKER for b in found)
    }
    assert sessions == set(TRANSCRIPTS)


def test_markers_fit_their_blocks() -> None:
    for path in PAGES:
        for block in page_spec(path):
            where = f"{path}:{block['line']}"
            if block["kind"] != "run":
                assert block["lang"] == "python", where
            if block["marker"] == SERVE_MARKER:
                assert block["lang"] == "console", where


def test_readme_quick_start_serves_coderworkspaces(tmp_path: Path) -> None:
    """The quick start's ``k8swatch serve`` starts and lists the demo workspace."""
    with (
        k8swatch_serve(tmp_path) as (url, _),
        urllib.request.urlopen(
            f"{url}/apis/aggregation.coder.com/v1alpha1/coderworkspaces", timeout=TIMEOUT
        ) as answer,
    ):
        listed = json.load(answer)
    assert [item["metadata"]["name"] for item in listed["items"]] == ["acme.alice.dev-workspace"]
