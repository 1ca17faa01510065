"""Development sessions: `nox -s tests lint typecheck docs bench`."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]

PYPROJECT = nox.project.load_toml("pyproject.toml")


def _groups(*names: str) -> list[str]:
    out: list[str] = []
    for name in names:
        out.extend(nox.project.dependency_groups(PYPROJECT, name))
    return out


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, every async test on asyncio and trio, all extras."""
    session.install("-e", ".[all]", *_groups("test"))
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(*_groups("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict and pyright on src/, the typing checks, and the API's type completeness."""
    session.install("-e", ".[all]", *_groups("typecheck"))
    session.run("mypy", "--strict", "src/k8swatch", "tests/typing")
    session.run("pyright", "src", "tests/typing")
    # The public API's type completeness, as users see it: an installed (not
    # editable) copy, with every exported symbol fully typed.
    session.install("--no-deps", "--force-reinstall", ".")
    session.run("pyright", "--verifytypes", "k8swatch", "--ignoreexternal")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with warnings as errors."""
    session.install("-e", ".[all]", *_groups("docs"))
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", os.path.join(session.create_tmp(), "site")
    )


CHARTS = os.path.join("docs", "assets", "benchmarks")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: print figures and ratios against peers measured in the same run.

    ``nox -s bench -- --charts`` also records the figures in
    docs/assets/benchmarks/results.jsonl and redraws the docs' charts from them.
    """
    session.install("-e", ".[all]", *_groups("bench"))
    args = [arg for arg in session.posargs if arg != "--charts"]
    env: dict[str, str] = {}
    if "--charts" in session.posargs:
        results = os.path.join(CHARTS, "results.jsonl")
        os.makedirs(CHARTS, exist_ok=True)
        with open(results, "w"):
            pass  # one run per file: the charts compare figures of the same run
        env["K8SWATCH_BENCH_JSON"] = results
    for script in sorted(os.listdir("benchmarks")):
        if script.startswith("bench_") and script.endswith(".py"):
            session.run("python", os.path.join("benchmarks", script), *args, env=env)
    if env:
        session.run("python", os.path.join("benchmarks", "charts.py"))


@nox.session
def charts(session: nox.Session) -> None:
    """Redraw the docs' benchmark charts from docs/assets/benchmarks/results.jsonl."""
    session.install(*[dep for dep in _groups("bench") if dep.startswith("matplotlib")])
    session.run("python", os.path.join("benchmarks", "charts.py"))


@nox.session
def fuzz(session: nox.Session) -> None:
    """Hypothesis-driven fuzz runs: the selector parsers, then hostile HTTP requests.

    The HTTP fuzz (tests/fuzz) runs in the normal test suite with a small
    budget; here it runs K8SWATCH_FUZZ_SCALE times longer (default 5).
    """
    session.install("-e", ".[all]", *_groups("test"))
    session.run("python", "tests/fuzz_selectors.py", *session.posargs)
    scale = os.environ.get("K8SWATCH_FUZZ_SCALE", "5")
    session.run(
        "pytest",
        "-p",
        "no:randomly",
        "--timeout",
        "1200",  # the long run also shrinks what it finds
        "tests/fuzz",
        env={"K8SWATCH_FUZZ_SCALE": scale},
    )
