"""The ``k8swatch`` command: ``k8swatch serve`` and ``k8swatch fake-coder``.

``k8swatch serve`` serves the Coder reference resources
(``aggregation.coder.com/v1alpha1``: ``coderworkspaces``, ``codertemplates``)
over HTTP with uvicorn, so ``kubectl get coderworkspaces -A -w`` works against
it. Without ``--coder-url`` it starts an embedded `FakeCoder` seeded with demo
data; with it, the session token comes from ``CODER_SESSION_TOKEN``.

With ``--redis-url`` every change is recorded in Redis Streams
(``k8swatch.redis``): several ``k8swatch serve`` replicas in front of one Coder
then serve one consistent API (one resourceVersion order, resume on any
replica), only the holder of a Redis lease polls Coder, and the labels,
annotations and finalizers of Coder objects are kept in Redis (shared by the
replicas, kept across restarts; without it they live in the process's memory).

``k8swatch fake-coder`` runs the fake Coder API alone.

This module and ``k8swatch._cli_uvicorn`` (uvicorn with the connection
timeouts and the ASGI TLS extension, which only this module imports) are the
only ones that import uvicorn (the ``serve`` extra); the TLS, authentication
and authorization flags live in ``k8swatch._serve_security``. It runs
on anyio's asyncio backend (uvicorn needs asyncio), on uvloop when it is
installed (the ``serve`` extra installs it, and httptools, which uvicorn
then uses to parse HTTP), and handles SIGINT and SIGTERM itself: both shut
the servers down cleanly.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import os
import secrets
import signal
import socket
import sys
import tempfile
import urllib.parse
from collections.abc import AsyncGenerator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import anyio
import anyio.abc
import attrs

from k8swatch._go import parse_go_duration
from k8swatch._serve_security import add_security_flags

if TYPE_CHECKING:
    from k8swatch import EventLog
    from k8swatch._cli_uvicorn import ServeTimeouts
    from k8swatch._serve_security import ServingSecurity
    from k8swatch.coder import (
        MetadataStore,
        StaticClientProvider,
        TemplateStorage,
        WorkspaceStorage,
    )
    from k8swatch.metrics import PrometheusMetrics
    from k8swatch.redis import RedisLease
    from k8swatch.server import App

__all__ = ["build_kubeconfig", "main", "parse_go_duration"]

DEFAULT_PORT = 6443
TOKEN_ENV = "CODER_SESSION_TOKEN"


def build_kubeconfig(
    server: str,
    namespace: str,
    *,
    name: str = "k8swatch",
    certificate_authority: bytes | None = None,
    client_certificate: bytes | None = None,
    client_key: bytes | None = None,
) -> str:
    """Return a kubeconfig (YAML) for the server at *server*.

    The context's default namespace is *namespace*. With
    *certificate_authority* (PEM) the cluster trusts that CA
    (``certificate-authority-data``), as for a generated serving certificate;
    with *client_certificate* and *client_key* (PEM) the user presents them.
    Otherwise the user is empty (anonymous: add credentials with
    ``kubectl config set-credentials``).
    """

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    ca = (
        f"    certificate-authority-data: {b64(certificate_authority)}\n"
        if certificate_authority
        else ""
    )
    user = "  user: {}\n"
    if client_certificate and client_key:
        user = (
            "  user:\n"
            f"    client-certificate-data: {b64(client_certificate)}\n"
            f"    client-key-data: {b64(client_key)}\n"
        )
    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        f"- name: {name}\n"
        "  cluster:\n"
        f"{ca}"
        f"    server: {server}\n"
        "contexts:\n"
        f"- name: {name}\n"
        "  context:\n"
        f"    cluster: {name}\n"
        f"    namespace: {namespace}\n"
        f"    user: {name}\n"
        f"current-context: {name}\n"
        "preferences: {}\n"
        "users:\n"
        f"- name: {name}\n"
        f"{user}"
    )


# The Go original's knobs for waiting on a template version import.
_BUILD_WAIT_ENV = {
    "CODER_K8S_TEMPLATE_BUILD_WAIT_TIMEOUT": "build_wait_timeout",
    "CODER_K8S_TEMPLATE_BUILD_BACKOFF_AFTER": "build_backoff_after",
    "CODER_K8S_TEMPLATE_BUILD_INITIAL_POLL_INTERVAL": "build_poll_interval",
    "CODER_K8S_TEMPLATE_BUILD_MAX_POLL_INTERVAL": "build_max_poll_interval",
}
_MAX_BUILD_WAIT = 30 * 60.0


def _build_wait_options(environ: Mapping[str, str]) -> dict[str, float]:
    """Template build-wait options from the Go original's environment variables.

    Raises:
        ValueError: a value is not a positive Go duration, or the timeout is
            above 30 minutes.
    """
    out: dict[str, float] = {}
    for name, option in _BUILD_WAIT_ENV.items():
        text = environ.get(name)
        if not text:
            continue
        seconds = parse_go_duration(text)
        if seconds <= 0:
            raise ValueError(f"{name} must be positive, got {text!r}")
        if option == "build_wait_timeout" and seconds > _MAX_BUILD_WAIT:
            raise ValueError(f"{name} must be at most 30m, got {text!r}")
        out[option] = seconds
    return out


_REDIS_SCHEMES = ("redis", "rediss", "unix")


def _check_redis_url(url: str) -> str:
    """Return why *url* is not a Redis URL ``open_redis_backend`` accepts, or ``""``."""
    shown = _redacted(url)
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
    except ValueError as exc:
        return f"invalid --redis-url {shown!r}: {exc}"
    if parts.scheme not in _REDIS_SCHEMES:
        return (
            f"invalid --redis-url {shown!r}: the scheme must be redis://, rediss:// or unix:// "
            "(e.g. redis://127.0.0.1:6379/0)"
        )
    if parts.scheme == "unix":
        if not parts.path:
            return f"invalid --redis-url {shown!r}: no socket path (unix:///path/to/redis.sock)"
    elif not parts.hostname:
        return f"invalid --redis-url {shown!r}: no host (redis://HOST[:PORT][/DB])"
    db = parts.path.strip("/")
    if parts.scheme != "unix" and db and not db.isdigit():
        return f"invalid --redis-url {shown!r}: the database must be a number, got {db!r}"
    return ""


def _redacted(url: str) -> str:
    """*url* without its password (for the banner)."""
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urllib.parse.urlunsplit(parts._replace(netloc=user + netloc))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they
    # are TCP, and without it every keep-alive answer written in two parts (head,
    # body) waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _url(sock: socket.socket, scheme: str = "http") -> str:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):  # every address: clients here reach it on loopback
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


@contextlib.asynccontextmanager
async def _serving(
    tg: anyio.abc.TaskGroup,
    app: Any,
    sock: socket.socket,
    *,
    log_level: str,
    timeouts: ServeTimeouts | None = None,
    ssl_options: Mapping[str, Any] | None = None,
) -> AsyncGenerator[Any, None]:
    from k8swatch._cli_uvicorn import build_server

    server = build_server(app, log_level=log_level, timeouts=timeouts, ssl_options=ssl_options)
    finished = anyio.Event()

    async def run() -> None:
        try:
            await server.serve([sock])
        finally:
            finished.set()

    tg.start_soon(run)
    try:
        with anyio.fail_after(30):
            while not server.started and not finished.is_set():  # noqa: ASYNC110
                await anyio.sleep(0.01)  # uvicorn offers no startup event to wait on
        if not server.started:
            raise RuntimeError(f"the server on {_url(sock)} did not start")
        yield server
    finally:
        server.should_exit = True
        with anyio.move_on_after(10, shield=True):
            await finished.wait()
        sock.close()


def _loop_options() -> dict[str, Any]:
    """anyio's asyncio options: uvloop when installed (the ``serve`` extra has it)."""
    if importlib.util.find_spec("uvloop") is None:
        return {}
    return {"use_uvloop": True}


def _log_level(args: argparse.Namespace) -> str:
    return "debug" if args.verbose else "warning"


def _listen(host: str, port: int) -> socket.socket | None:
    """A listening socket on *host*:*port*, or ``None`` after saying why not on stderr."""
    try:
        return _bind(host, port)
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return None


async def _run_until_signal(server: Any, out: TextIO) -> None:
    """Return on SIGINT or SIGTERM (announced on *out*), or once *server* exits by itself."""
    signalled = anyio.Event()

    async def wait_for_signal() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                name = signal.Signals(signum).name
                print(f"received {name}, shutting down", file=out, flush=True)
                signalled.set()
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait_for_signal)
        while not signalled.is_set() and not server.should_exit:
            with anyio.move_on_after(0.2):  # uvicorn offers no event for exiting by itself
                await signalled.wait()
        tg.cancel_scope.cancel()


@attrs.frozen
class _Coder:
    """The Coder deployment the storages talk to, and the banner line naming it."""

    url: str
    token: str
    note: str


@attrs.frozen
class _SharedLog:
    """What ``--redis-url`` gives: one event log per resource, the poller's lease."""

    workspaces: EventLog
    templates: EventLog
    workspace_metadata: MetadataStore
    template_metadata: MetadataStore
    lease: RedisLease
    note: str
    client: Any


async def _start_coder(
    args: argparse.Namespace,
    tg: anyio.abc.TaskGroup,
    stack: contextlib.AsyncExitStack,
    *,
    log_level: str,
) -> _Coder:
    """The deployment at ``--coder-url``, or else an embedded `FakeCoder` on 127.0.0.1."""
    if args.coder_url:
        note = f"Coder deployment: {args.coder_url} (token from ${TOKEN_ENV})"
        return _Coder(args.coder_url, os.environ.get(TOKEN_ENV, ""), note)
    from k8swatch.coder import FakeCoder

    fake = FakeCoder(
        token=secrets.token_urlsafe(16),
        build_mode=args.fake_build_mode,
        build_step_seconds=args.fake_build_seconds,
    )
    sock = _bind("127.0.0.1", 0)
    await stack.enter_async_context(_serving(tg, fake, sock, log_level=log_level))
    stack.callback(fake.close)
    url = _url(sock)
    note = (
        f"Coder: embedded FakeCoder at {url} "
        f"(session token {fake.token}; demo data: organization acme, user alice)"
    )
    return _Coder(url, fake.token, note)


def _open_provider(
    args: argparse.Namespace,
    coder: _Coder,
    stack: contextlib.AsyncExitStack,
    metrics: PrometheusMetrics,
) -> StaticClientProvider:
    from k8swatch.coder import StaticClientProvider

    provider = StaticClientProvider(
        coder.url,
        coder.token,
        args.namespace,
        timeout=args.coder_timeout,
        transport=metrics.coder_transport(),
    )
    stack.push_async_callback(provider.aclose)
    return provider


async def _open_shared_log(
    args: argparse.Namespace, stack: contextlib.AsyncExitStack, metrics: PrometheusMetrics
) -> _SharedLog | None:
    """The Redis event logs and lease of ``--redis-url``, or ``None`` without it."""
    if not args.redis_url:
        return None
    from k8swatch.coder import GROUP, CoderTemplate, CoderWorkspace
    from k8swatch.redis import open_redis_backend

    # Connecting is lazy: with Redis down the server starts anyway,
    # answers 503 meanwhile and reconnects with jittered backoff.
    backend = await stack.enter_async_context(
        open_redis_backend(
            args.redis_url,
            prefix=args.redis_prefix,
            observe_command=metrics.observe_redis_command,
        )
    )
    return _SharedLog(
        workspaces=backend.log_for(CoderWorkspace.PLURAL, group=GROUP),
        templates=backend.log_for(CoderTemplate.PLURAL, group=GROUP),
        # labels, annotations, finalizers: shared, and kept across restarts
        workspace_metadata=backend.metadata_store_for(CoderWorkspace.PLURAL, group=GROUP),
        template_metadata=backend.metadata_store_for(CoderTemplate.PLURAL, group=GROUP),
        # Renewed before every poll: outlive the interval (plus jitter) comfortably.
        lease=backend.lease("coder-poller", ttl=max(10.0, 3 * args.poll_interval)),
        note=(
            f"Redis: {_redacted(args.redis_url)} (prefix {args.redis_prefix!r}); "
            "replicas on the same Redis and prefix serve one API"
        ),
        client=backend.client,
    )


def _create_storages(
    args: argparse.Namespace,
    provider: StaticClientProvider,
    shared: _SharedLog | None,
    tg: anyio.abc.TaskGroup,
) -> tuple[TemplateStorage, WorkspaceStorage]:
    from k8swatch.coder import TemplateStorage, WorkspaceStorage

    cache = not args.no_watch_cache
    workspaces = WorkspaceStorage(
        provider,
        watch_cache=cache,
        log=shared.workspaces if shared else None,
        metadata_store=shared.workspace_metadata if shared else None,
    )
    templates = TemplateStorage(
        provider,
        watch_cache=cache,
        log=shared.templates if shared else None,
        metadata_store=shared.template_metadata if shared else None,
        **args.build_wait,
    )
    if shared:
        # Each storage's cache follows its log (every replica's writes);
        # app.aclose() closes the storages, which ends these tasks.
        tg.start_soon(workspaces.follow)
        tg.start_soon(templates.follow)
    return templates, workspaces


def _start_poller(
    tg: anyio.abc.TaskGroup,
    storages: Sequence[WorkspaceStorage | TemplateStorage],
    *,
    interval: float,
    lease: RedisLease | None,
) -> anyio.CancelScope:
    """Poll Coder for changes made elsewhere until the returned scope is cancelled."""
    from k8swatch.coder import CoderPoller

    poller = CoderPoller(storages, interval=interval, lease=lease)
    scope = anyio.CancelScope()

    async def poll() -> None:
        with scope:
            await poller.run()

    tg.start_soon(poll)
    return scope


def _write_kubeconfig(
    args: argparse.Namespace, url: str, port: int, security: ServingSecurity
) -> tuple[Path, str]:
    """Write the kubeconfig for *url* (to ``--write-kubeconfig`` or a temporary file).

    Only its owner may read it when it holds a client key.
    """
    path = (
        Path(args.write_kubeconfig)
        if args.write_kubeconfig
        else Path(tempfile.gettempdir(), f"k8swatch-{port}.kubeconfig")
    )
    text = build_kubeconfig(
        url,
        args.namespace,
        certificate_authority=security.kubeconfig_ca,
        client_certificate=security.kubeconfig_client_cert,
        client_key=security.kubeconfig_client_key,
    )
    if security.kubeconfig_client_key:
        path.unlink(missing_ok=True)
        path.touch(mode=0o600)
    path.write_text(text)
    return path, text


def _print_serve_banner(
    out: TextIO, *, api_version: str, url: str, notes: Sequence[str], kubeconfig: Path, text: str
) -> None:
    print(f"k8swatch serving {api_version} on {url}", file=out)
    print(f"URL: {url}", file=out)
    for note in notes:
        print(note, file=out)
    print(f"kubeconfig: {kubeconfig}", file=out)
    if "client-key-data:" in text:
        print("(it holds a client key: read it from the file, mode 0600)", file=out)
    else:
        print("---", file=out)
        print(text, end="", file=out)
        print("---", file=out)
    print(f"try: KUBECONFIG={kubeconfig} kubectl get coderworkspaces -A -w", file=out)
    print("press Ctrl-C to stop", file=out, flush=True)


def _timeouts(args: argparse.Namespace) -> ServeTimeouts:
    from k8swatch._cli_uvicorn import ServeTimeouts

    return ServeTimeouts(
        header=args.header_timeout,
        read=args.read_timeout,
        send=args.send_timeout,
        keep_alive=args.keep_alive_timeout,
    )


# A readiness probe waits a few seconds (the manifests say 5): answer before it gives up.
_READY_CHECK_TIMEOUT = 4.0


def _add_readiness_checks(
    app: App, provider: StaticClientProvider, shared: _SharedLog | None
) -> None:
    """``/readyz`` fails while Coder (and Redis, with ``--redis-url``) cannot be reached."""
    from k8swatch.server import HealthCheck

    client = provider.client

    async def coder() -> None:
        if client is None:
            raise RuntimeError("no Coder deployment is configured")
        # An authenticated call: a revoked session token makes the server useless too.
        await client.user("me")

    checks = [HealthCheck("coder", coder, timeout=_READY_CHECK_TIMEOUT)]
    if shared is not None:
        redis = shared.client

        async def ping_redis() -> None:
            await redis.ping()

        checks.append(HealthCheck("redis", ping_redis, timeout=_READY_CHECK_TIMEOUT))
    app.add_readyz_checks(*checks)


async def _serve(args: argparse.Namespace, out: TextIO) -> int:
    from k8swatch._serve_security import SecurityError, open_security

    try:
        with open_security(args) as security:
            return await _serve_api(args, out, security)
    except SecurityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


async def _serve_api(args: argparse.Namespace, out: TextIO, security: ServingSecurity) -> int:
    from k8swatch.coder import build_resource_specs
    from k8swatch.metrics import PrometheusMetrics
    from k8swatch.server import create_app

    log_level = _log_level(args)
    api_sock = _listen(args.host, args.port)
    if api_sock is None:
        return 1
    async with anyio.create_task_group() as tg, contextlib.AsyncExitStack() as stack:
        coder = await _start_coder(args, tg, stack, log_level=log_level)
        metrics = PrometheusMetrics()
        provider = _open_provider(args, coder, stack, metrics)
        shared = await _open_shared_log(args, stack, metrics)
        templates, workspaces = _create_storages(args, provider, shared, tg)
        specs = build_resource_specs(templates, workspaces)
        timeouts = _timeouts(args)
        # The connection bounds its sends itself (it is reset when its client
        # takes no data for --send-timeout; the stream then ends as on a
        # disconnect), so the app's bound, a timer for every idle watch, is off.
        app = create_app(
            specs,
            send_timeout=None,
            metrics=metrics,
            authenticator=security.authenticator,
            authorizer=security.authorizer,
        )
        _add_readiness_checks(app, provider, shared)
        url = _url(api_sock, "https" if security.tls else "http")
        server = await stack.enter_async_context(
            _serving(
                tg,
                app,
                api_sock,
                log_level=log_level,
                timeouts=timeouts,
                ssl_options=security.uvicorn_options(),
            )
        )
        polling = _start_poller(
            tg,
            [workspaces, templates],
            interval=args.poll_interval,
            lease=shared.lease if shared else None,
        )
        kubeconfig, text = _write_kubeconfig(args, url, api_sock.getsockname()[1], security)
        notes = [coder.note, shared.note] if shared else [coder.note]
        _print_serve_banner(
            out,
            api_version=specs[0].api_version,
            url=url,
            notes=[*notes, *security.notes],
            kubeconfig=kubeconfig,
            text=text,
        )
        await _run_until_signal(server, out)
        polling.cancel()
        # End the open watch streams first (they would hold uvicorn's graceful
        # shutdown until its timeout), then let the server stop.
        with anyio.move_on_after(5, shield=True):
            await app.aclose()
        server.should_exit = True
    print("stopped", file=out, flush=True)
    return 0


async def _fake_coder(args: argparse.Namespace, out: TextIO) -> int:
    from k8swatch.coder import FakeCoder

    fake = FakeCoder(
        token=args.token or secrets.token_urlsafe(16),
        build_mode=args.build_mode,
        build_step_seconds=args.build_seconds,
    )
    sock = _listen(args.host, args.port)
    if sock is None:
        return 1
    async with (
        anyio.create_task_group() as tg,
        _serving(tg, fake, sock, log_level=_log_level(args)) as server,
    ):
        url = _url(sock)
        print(f"fake Coder API on {url}", file=out)
        print(f"URL: {url}", file=out)
        print(f"token: {fake.token}", file=out)
        print(
            f"try: curl -H 'Coder-Session-Token: {fake.token}' {url}/api/v2/workspaces",
            file=out,
        )
        print("press Ctrl-C to stop", file=out, flush=True)
        await _run_until_signal(server, out)
        server.should_exit = True
        fake.close()
    print("stopped", file=out, flush=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="k8swatch",
        description="Kubernetes-style watch semantics for custom REST storage.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="serve the Coder resources (coderworkspaces, codertemplates) over HTTP",
        description=(
            "Serve aggregation.coder.com/v1alpha1 (coderworkspaces, codertemplates). "
            "Without --coder-url an embedded fake Coder with demo data is used; with it, "
            f"the session token is read from ${TOKEN_ENV}."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (0 picks a free one; default 6443)"
    )
    serve.add_argument(
        "--namespace", default="default", help="the namespace the Coder deployment is served in"
    )
    serve.add_argument("--coder-url", default="", help="a real Coder deployment's URL")
    serve.add_argument(
        "--poll-interval",
        type=float,
        default=5.0,
        help="seconds between polls for changes made outside this server (default 5)",
    )
    serve.add_argument(
        "--coder-timeout", type=float, default=30.0, help="seconds per Coder request"
    )
    serve.add_argument(
        "--write-kubeconfig",
        default="",
        metavar="PATH",
        help="where to write a kubeconfig for this server (default: a file in the temp dir)",
    )
    serve.add_argument(
        "--kubeconfig",
        dest="deprecated_kubeconfig",
        default="",
        metavar="PATH",
        help="deprecated: use --write-kubeconfig (kube's servers read --kubeconfig, not write it)",
    )
    serve.add_argument(
        "--redis-url",
        default="",
        help=(
            "record every change in Redis Streams at this URL (redis://HOST[:PORT][/DB], "
            "rediss://, unix://), so several replicas in front of one Coder (--coder-url) "
            "serve one consistent API, and keep the labels, annotations and finalizers of "
            "Coder objects there (across restarts); implies the watch cache"
        ),
    )
    serve.add_argument(
        "--redis-prefix",
        default="k8swatch",
        help="Redis key prefix shared by the replicas of one API (default: k8swatch)",
    )
    serve.add_argument(
        "--no-watch-cache",
        action="store_true",
        help="serve watches like the Go original (no resume, no initial events)",
    )
    serve.add_argument(
        "--fake-build-mode",
        choices=("instant", "async"),
        default="async",
        help="embedded fake: builds finish at once, or progress over time (default)",
    )
    serve.add_argument(
        "--fake-build-seconds",
        type=float,
        default=2.0,
        help="embedded fake: seconds per build step in async mode",
    )
    serve.add_argument(
        "--send-timeout",
        type=float,
        default=30.0,
        help=(
            "seconds a client may leave sent data unread before its connection is reset "
            "and its watch ended (default 30)"
        ),
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=32.0,
        help="seconds a client may take to send a request's headers (default 32)",
    )
    serve.add_argument(
        "--read-timeout",
        type=float,
        default=60.0,
        help="seconds a client may take to send a request's body (default 60)",
    )
    serve.add_argument(
        "--keep-alive-timeout",
        type=float,
        default=90.0,
        help="seconds an idle connection is kept open between requests (default 90)",
    )
    serve.add_argument("-v", "--verbose", action="store_true", help="log requests")
    add_security_flags(serve)

    fake = sub.add_parser(
        "fake-coder",
        help="run the fake Coder API alone",
        description="Run the in-memory fake Coder API, seeded with demo data.",
    )
    fake.add_argument("--host", default="127.0.0.1", help="address to listen on")
    fake.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    fake.add_argument("--token", default="", help="the session token (default: random)")
    fake.add_argument(
        "--build-mode", choices=("instant", "async"), default="async", help="build progress"
    )
    fake.add_argument("--build-seconds", type=float, default=2.0, help="seconds per build step")
    fake.add_argument("-v", "--verbose", action="store_true", help="log requests")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``k8swatch`` command line; return the exit status."""
    args = _parser().parse_args(argv)
    out = sys.stdout
    if args.command == "serve":
        if args.deprecated_kubeconfig:
            print(
                "warning: --kubeconfig is deprecated, use --write-kubeconfig",
                file=sys.stderr,
            )
            if args.write_kubeconfig:
                print("error: give --write-kubeconfig only", file=sys.stderr)
                return 2
            args.write_kubeconfig = args.deprecated_kubeconfig
        if args.coder_url and not os.environ.get(TOKEN_ENV):
            print(
                f"error: --coder-url needs a Coder session token in ${TOKEN_ENV} "
                "(create one with `coder tokens create`)",
                file=sys.stderr,
            )
            return 2
        if args.poll_interval <= 0:
            print("error: --poll-interval must be > 0", file=sys.stderr)
            return 2
        for flag in ("send_timeout", "header_timeout", "read_timeout", "keep_alive_timeout"):
            if not getattr(args, flag) > 0:
                print(f"error: --{flag.replace('_', '-')} must be > 0", file=sys.stderr)
                return 2
        if args.redis_url:
            problem = _check_redis_url(args.redis_url)
            if not problem and args.no_watch_cache:
                problem = "--redis-url needs the watch cache (drop --no-watch-cache)"
            if not problem and not args.redis_prefix:
                problem = "--redis-prefix must not be empty"
            if not problem and not args.coder_url:
                problem = (
                    "--redis-url needs --coder-url: the replicas must share one Coder "
                    "(for a fake one, run `k8swatch fake-coder`)"
                )
            if problem:
                print(f"error: {problem}", file=sys.stderr)
                return 2
        try:
            args.build_wait = _build_wait_options(os.environ)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        runner = _serve
    else:
        runner = _fake_coder
    try:
        return anyio.run(runner, args, out, backend="asyncio", backend_options=_loop_options())
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
