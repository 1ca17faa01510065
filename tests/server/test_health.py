"""/healthz, /livez and /readyz over real HTTP, as kube-apiserver answers them."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import attrs
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8swatch import MemoryStorage
from k8swatch.server import App, HealthCheck, ResourceSpec, create_app
from k8swatch.server._health import CheckResult, render_root
from k8swatch.testing import serve_app


@attrs.define
class Switch:
    """A check whose outcome the test flips."""

    reason: str = ""
    slow: bool = False

    async def __call__(self) -> None:
        if self.slow:
            await anyio.sleep(5)
        if self.reason:
            raise RuntimeError(self.reason)


@attrs.define
class Health:
    app: App
    http: httpx.Client
    backend: Switch
    everywhere: Switch
    slow: Switch


@pytest.fixture(scope="module", params=["uvicorn", "hypercorn-trio"])
def health(request: pytest.FixtureRequest) -> Iterator[Health]:
    storage = MemoryStorage("example.com/v1", "Widget")
    app = create_app([ResourceSpec("example.com", "v1", "widgets", "Widget", storage)])
    backend, everywhere, slow = Switch(), Switch(), Switch()
    app.add_readyz_checks(HealthCheck("backend", backend))
    app.add_health_checks(HealthCheck("everywhere", everywhere))
    app.add_livez_checks(HealthCheck("slow", slow, timeout=0.2))
    with serve_app(app, server=request.param) as url, httpx.Client(base_url=url) as http:
        yield Health(app, http, backend, everywhere, slow)


@pytest.fixture
def h(health: Health) -> Iterator[Health]:
    yield health
    health.backend.reason = health.everywhere.reason = ""
    health.slow.slow = False


@pytest.mark.parametrize("endpoint", ["/healthz", "/livez", "/readyz"])
def test_plain_ok(h: Health, endpoint: str) -> None:
    response = h.http.get(endpoint)
    assert response.status_code == 200
    assert response.text == "ok"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_verbose_lists_the_checks_in_order(h: Health) -> None:
    assert h.http.get("/readyz?verbose").text == (
        "[+]ping ok\n[+]shutdown ok\n[+]backend ok\n[+]everywhere ok\nreadyz check passed\n"
    )
    assert h.http.get("/livez", params={"verbose": "1"}).text == (
        "[+]ping ok\n[+]everywhere ok\n[+]slow ok\nlivez check passed\n"
    )
    assert h.http.get("/healthz?verbose").text == (
        "[+]ping ok\n[+]everywhere ok\nhealthz check passed\n"
    )


def test_a_failing_readyz_check_fails_readyz_only(h: Health) -> None:
    h.backend.reason = "coder at http://coder.internal refused the connection"
    response = h.http.get("/readyz")
    assert response.status_code == 500
    # the reason is withheld from the public endpoint, and every check is listed
    assert response.text == (
        "[+]ping ok\n[+]shutdown ok\n[-]backend failed: reason withheld\n[+]everywhere ok\n"
        "readyz check failed\n"
    )
    assert h.http.get("/livez").status_code == 200
    assert h.http.get("/healthz").status_code == 200
    # the check's own path tells why
    single = h.http.get("/readyz/backend")
    assert single.status_code == 500
    assert single.text == (
        "internal server error: coder at http://coder.internal refused the connection\n"
    )
    assert h.http.get("/readyz/ping").text == "ok"


def test_a_check_added_everywhere_fails_every_endpoint(h: Health) -> None:
    h.everywhere.reason = "broken"
    for endpoint in ("healthz", "livez", "readyz"):
        response = h.http.get(f"/{endpoint}")
        assert response.status_code == 500, endpoint
        assert "[-]everywhere failed: reason withheld\n" in response.text
        assert response.text.endswith(f"{endpoint} check failed\n")


def test_exclude_skips_a_check(h: Health) -> None:
    h.backend.reason = "down"
    response = h.http.get("/readyz?verbose&exclude=backend")
    assert response.status_code == 200
    assert "[+]backend excluded: ok\n" in response.text
    assert h.http.get("/readyz?exclude=backend").text == "ok"
    both = h.http.get("/readyz", params=[("exclude", "backend"), ("exclude", "ping")])
    assert both.status_code == 200


def test_excluding_an_unknown_check_warns(h: Health) -> None:
    response = h.http.get("/readyz?verbose&exclude=nope&exclude=a%22b")
    assert response.status_code == 200
    assert (
        'warn: some health checks cannot be excluded: no matches for "a\\"b","nope"\n'
        in response.text
    )


def test_a_check_slower_than_its_timeout_fails(h: Health) -> None:
    h.slow.slow = True
    response = h.http.get("/livez/slow")
    assert response.status_code == 500
    assert response.text == "internal server error: timed out after 0.2 s\n"
    assert h.http.get("/livez").status_code == 500
    assert h.http.get("/readyz").status_code == 200


def test_unknown_check_and_bad_paths_are_404_status(h: Health) -> None:
    assert h.http.get("/readyz/").text == "ok"  # a trailing slash is ignored everywhere
    for path in ("/readyz/nope", "/healthz/backend", "/livez/ping/extra"):
        response = h.http.get(path)
        assert response.status_code == 404, path
        assert response.json()["reason"] == "NotFound"


def test_other_methods_are_405(h: Health) -> None:
    response = h.http.post("/healthz")
    assert response.status_code == 405
    assert response.json()["kind"] == "Status"
    assert h.http.head("/readyz").status_code == 200


def test_root_lists_the_health_paths(h: Health) -> None:
    paths = h.http.get("/").json()["paths"]
    assert {"/healthz", "/livez", "/readyz"} <= set(paths)


def test_registration_rules() -> None:
    app = create_app([])
    assert app.health_check_names("readyz") == ("ping", "shutdown")
    assert app.health_check_names("livez") == ("ping",)
    with pytest.raises(ValueError, match="readyz already has a check named 'ping'"):
        app.add_readyz_checks(HealthCheck("ping", Switch()))
    with pytest.raises(ValueError, match="already has a check named 'x'"):
        app.add_livez_checks(HealthCheck("x", Switch()), HealthCheck("x", Switch()))
    assert app.health_check_names("livez") == ("ping",)  # nothing was added
    for bad in ("", "a/b", "a,b", " a"):
        with pytest.raises(ValueError, match="one non-empty path segment"):
            HealthCheck(bad, Switch())


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn-trio"])
def test_readyz_fails_once_the_app_shuts_down(server: str) -> None:
    app = create_app([])
    with serve_app(app, server=server) as url, httpx.Client(base_url=url) as http:
        assert http.get("/readyz").status_code == 200
        anyio.run(app.aclose)
        response = http.get("/readyz?verbose")
        assert response.status_code == 500
        assert "[-]shutdown failed: reason withheld\n" in response.text
        assert http.get("/readyz/shutdown").text == (
            "internal server error: process is shutting down\n"
        )
        assert http.get("/livez").status_code == 200


names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-:.", min_size=1, max_size=8)


@given(
    results=st.lists(
        st.builds(CheckResult, names, st.sampled_from(["", "boom"]), st.booleans()),
        max_size=6,
        unique_by=lambda r: r.name,
    ),
    verbose=st.booleans(),
)
def test_render_root_properties(results: list[CheckResult], verbose: bool) -> None:
    answer = render_root("readyz", results, (), verbose=verbose)
    failing = any(r.error and not r.excluded for r in results)
    assert answer.code == (500 if failing else 200)
    text = answer.body.decode()
    if failing or verbose:
        lines = text.splitlines()
        assert len(lines) == len(results) + 1
        assert lines[-1] == ("readyz check failed" if failing else "readyz check passed")
        for line, result in zip(lines, results, strict=False):
            assert line.startswith("[-]" if result.error and not result.excluded else "[+]")
            assert line[3:].startswith(result.name + " ")
    else:
        assert text == "ok"
