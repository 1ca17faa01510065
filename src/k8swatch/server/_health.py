"""Health endpoints: ``/healthz``, ``/livez``, ``/readyz`` as kube-apiserver answers them.

Each endpoint has a list of named checks. ``GET /readyz`` runs them and
answers ``ok`` (200) when all pass; ``?verbose`` lists one ``[+]name ok`` line
per check and ends with ``readyz check passed``; ``?exclude=name`` skips a
check (``[+]name excluded: ok``). When a check fails the answer is 500 with
every line, the failing ones as ``[-]name failed: reason withheld`` (the
endpoints are public; the reason goes to the log), and ``readyz check
failed``. ``GET /readyz/<name>`` runs one check: ``ok``, or 500 ``internal
server error: <reason>``.

Rendering is pure (`render_root`, `render_single`); `HealthEndpoints` runs
the checks, concurrently and each under its timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import anyio
import attrs
from typing_extensions import final

__all__ = [
    "ENDPOINTS",
    "CheckResult",
    "HealthCheck",
    "HealthEndpoints",
    "HealthResponse",
    "render_root",
    "render_single",
]

logger = logging.getLogger("k8swatch.server.health")

ENDPOINTS = ("healthz", "livez", "readyz")
"""The health endpoints, in the order kube-apiserver installs them."""


def _check_name(_instance: object, _attribute: object, value: str) -> None:
    if not value or "/" in value or value != value.strip() or "," in value:
        raise ValueError(
            f"a health check name must be one non-empty path segment without ',', got {value!r}"
        )


@final
@attrs.frozen
class HealthCheck:
    """A named health check for ``/healthz``, ``/livez`` and ``/readyz``.

    Register it with [`App.add_health_checks`][k8swatch.server.App.add_health_checks]
    (every endpoint), [`App.add_readyz_checks`][k8swatch.server.App.add_readyz_checks]
    or [`App.add_livez_checks`][k8swatch.server.App.add_livez_checks].

    Attributes:
        name: Shown as ``[+]name ok``; also the path ``/readyz/<name>`` and the
            value ``?exclude=<name>`` takes. One path segment, no comma.
        check: An async callable that returns when healthy and raises (any
            exception; its text is the reason, logged, and shown only on
            ``/<endpoint>/<name>``) when not.
        timeout: Seconds the check may take; a slower one fails with
            ``timed out after N s``.
    """

    name: str = attrs.field(validator=_check_name)
    check: Callable[[], Awaitable[object]]
    timeout: float = 5.0


@attrs.frozen
class CheckResult:
    """The outcome of one check: *error* is ``""`` when it passed."""

    name: str
    error: str = ""
    excluded: bool = False


@attrs.frozen
class HealthResponse:
    """What a health endpoint answers: the status code and a ``text/plain`` body."""

    code: int
    body: bytes


HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"x-content-type-options", b"nosniff"),
)


def _quoted(names: Iterable[str]) -> str:
    return ",".join('"' + n.replace("\\", "\\\\").replace('"', '\\"') + '"' for n in names)


def render_root(
    endpoint: str, results: Sequence[CheckResult], unmatched: Iterable[str], *, verbose: bool
) -> HealthResponse:
    """The answer of ``/<endpoint>`` for *results* (in registration order).

    *unmatched* are the ``exclude`` values that named no check (a ``warn:``
    line, as the apiserver prints it).
    """
    lines: list[str] = []
    failed = False
    for result in results:
        if result.excluded:
            lines.append(f"[+]{result.name} excluded: ok\n")
        elif result.error:
            failed = True
            lines.append(f"[-]{result.name} failed: reason withheld\n")
        else:
            lines.append(f"[+]{result.name} ok\n")
    missing = sorted(set(unmatched))
    if missing:
        lines.append(
            f"warn: some health checks cannot be excluded: no matches for {_quoted(missing)}\n"
        )
    if failed:
        return HealthResponse(500, f"{''.join(lines)}{endpoint} check failed\n".encode())
    if not verbose:
        return HealthResponse(200, b"ok")
    return HealthResponse(200, f"{''.join(lines)}{endpoint} check passed\n".encode())


def render_single(result: CheckResult) -> HealthResponse:
    """The answer of ``/<endpoint>/<name>``: ``ok`` or 500 with the reason."""
    if result.error:
        return HealthResponse(500, f"internal server error: {result.error}\n".encode())
    return HealthResponse(200, b"ok")


async def _run(check: HealthCheck) -> CheckResult:
    try:
        with anyio.fail_after(check.timeout):
            await check.check()
    except TimeoutError:
        return CheckResult(check.name, f"timed out after {check.timeout:g} s")
    except Exception as exc:
        return CheckResult(check.name, str(exc) or type(exc).__name__)
    return CheckResult(check.name)


async def _run_all(checks: Sequence[HealthCheck]) -> list[CheckResult]:
    results: list[CheckResult] = [CheckResult(c.name) for c in checks]

    async def one(index: int) -> None:
        results[index] = await _run(checks[index])

    async with anyio.create_task_group() as tg:
        for index in range(len(checks)):
            tg.start_soon(one, index)
    return results


@final
class HealthEndpoints:
    """The checks of the three endpoints and the code that answers them."""

    def __init__(self) -> None:
        self._checks: dict[str, dict[str, HealthCheck]] = {e: {} for e in ENDPOINTS}

    def add(self, endpoints: Iterable[str], checks: Iterable[HealthCheck]) -> None:
        """Add *checks* to each of *endpoints*.

        Raises:
            ValueError: a name is already taken on one of them (nothing is added).
        """
        targets = tuple(endpoints)
        new = tuple(checks)
        for endpoint in targets:
            taken = self._checks[endpoint]
            seen: set[str] = set()
            for check in new:
                if check.name in taken or check.name in seen:
                    raise ValueError(f"{endpoint} already has a check named {check.name!r}")
                seen.add(check.name)
        for endpoint in targets:
            for check in new:
                self._checks[endpoint][check.name] = check

    def names(self, endpoint: str) -> tuple[str, ...]:
        """The names of *endpoint*'s checks, in registration order."""
        return tuple(self._checks[endpoint])

    async def respond(
        self, endpoint: str, name: str, query: Mapping[str, Sequence[str]]
    ) -> HealthResponse | None:
        """Run the checks of ``/<endpoint>[/<name>]``; ``None`` for an unknown *name*."""
        checks = self._checks[endpoint]
        if name:
            check = checks.get(name)
            if check is None:
                return None
            result = await _run(check)
            if result.error:
                logger.warning("%s check %s failed: %s", endpoint, name, result.error)
            return render_single(result)
        excluded = set(query.get("exclude", ()))
        run = [c for c in checks.values() if c.name not in excluded]
        outcome = {r.name: r for r in await _run_all(run)}
        results = [outcome.get(n) or CheckResult(n, excluded=True) for n in checks]
        failures = [r for r in results if r.error]
        if failures:
            logger.warning(
                "%s check failed: %s",
                endpoint,
                "; ".join(f"{r.name}: {r.error}" for r in failures),
            )
        return render_root(endpoint, results, excluded - set(checks), verbose="verbose" in query)
