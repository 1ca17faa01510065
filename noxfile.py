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


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: print figures and ratios against peers measured in the same run."""
    session.install("-e", ".[all]", *_groups("bench"))
    for script in sorted(os.listdir("benchmarks")):
        if script.startswith("bench_") and script.endswith(".py"):
            session.run("python", os.path.join("benchmarks", script), *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """A short hypothesis-driven fuzz run of the selector parsers."""
    session.install("-e", ".", *_groups("test"))
    session.run("python", "tests/fuzz_selectors.py", *session.posargs)
