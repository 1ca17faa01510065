"""Client providers: which Coder deployment serves a Kubernetes namespace.

The namespace of a request is not a Coder organization: it selects a Coder
deployment (a URL and a session token). A provider resolves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import httpx
from typing_extensions import final

from k8swatch._go import go_quote
from k8swatch._status import bad_request, service_unavailable

from ._client import CoderClient

__all__ = ["ClientProvider", "NamespaceLister", "NamespaceResolver", "StaticClientProvider"]


@runtime_checkable
class ClientProvider(Protocol):
    """Maps a request namespace to the `CoderClient` of the deployment serving it.

    ``client_for_namespace("")`` (an all-namespaces request) may resolve a
    default. Errors are `StatusError`s and reach the client unchanged; any
    other exception becomes 500 InternalError.

    A provider may also implement [`NamespaceResolver`][k8swatch.coder.NamespaceResolver]
    (a default namespace for all-namespaces lists) and
    [`NamespaceLister`][k8swatch.coder.NamespaceLister] (the namespaces an
    all-namespaces list or the poller fans out over).
    """

    async def client_for_namespace(self, namespace: str) -> CoderClient:
        """Return the client for *namespace* (raise `StatusError` if none)."""
        ...


@runtime_checkable
class NamespaceResolver(Protocol):
    """A provider that can name the namespace to report for all-namespaces lists."""

    async def default_namespace(self) -> str:
        """Return the namespace objects get when the request has none."""
        ...


@runtime_checkable
class NamespaceLister(Protocol):
    """A provider that can enumerate the namespaces it serves."""

    async def eligible_namespaces(self) -> Sequence[str]:
        """Return every namespace served, each backed by one deployment."""
        ...


@final
class StaticClientProvider:
    """One Coder deployment (URL + session token) pinned to one namespace.

    The standalone mode of the Go original (``--coder-url``,
    ``--coder-session-token``, ``--coder-namespace``):

    * ``client_for_namespace("")`` and ``client_for_namespace(namespace)`` give
      the client; another namespace is 400 BadRequest ``namespace "x" is not
      served by this aggregated API server (configured for "y")``;
    * with an empty *namespace* every call is 503 ServiceUnavailable;
    * with neither *url* nor *token*, every call is 503 ServiceUnavailable
      ``coder client provider is not configured: ...``.

    Args:
        url: The deployment's base URL.
        token: Its session token (never logged).
        namespace: The one namespace served.
        timeout: Seconds per Coder request (the Go original's default: 30).
        transport: An httpx transport for the client (tests).

    Raises:
        ValueError: only one of *url* and *token* is given.
    """

    def __init__(
        self,
        url: str,
        token: str,
        namespace: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if bool(url) != bool(token):
            missing = "url" if not url else "token"
            raise ValueError(f"{missing} must not be empty when the other is given")
        self._namespace = namespace
        self._client = (
            CoderClient(url, token, timeout=timeout, transport=transport) if url else None
        )

    def __repr__(self) -> str:
        url = self._client.url if self._client is not None else ""
        return f"StaticClientProvider({url!r}, namespace={self._namespace!r})"

    @property
    def namespace(self) -> str:
        """The namespace served."""
        return self._namespace

    @property
    def client(self) -> CoderClient | None:
        """The client (None when unconfigured)."""
        return self._client

    async def client_for_namespace(self, namespace: str) -> CoderClient:
        """Return the client if *namespace* is the pinned one (or empty).

        Raises:
            StatusError: 503 when unconfigured or not pinned, 400 for another
                namespace.
        """
        if self._client is None:
            raise service_unavailable(
                "coder client provider is not configured: missing coder URL and coder "
                "session token; configure --coder-url and --coder-session-token"
            )
        if not self._namespace:
            raise service_unavailable(
                "static coder client provider is not namespace-pinned; configure --coder-namespace"
            )
        if namespace and namespace != self._namespace:
            raise bad_request(
                f"namespace {go_quote(namespace)} is not served by this aggregated API server "
                f"(configured for {go_quote(self._namespace)})"
            )
        return self._client

    async def default_namespace(self) -> str:
        """Return the pinned namespace (503 when there is none)."""
        if not self._namespace:
            raise service_unavailable("static provider has no default namespace")
        return self._namespace

    async def eligible_namespaces(self) -> Sequence[str]:
        """Return ``[namespace]`` (503 when there is none)."""
        return [await self.default_namespace()]

    async def aclose(self) -> None:
        """Close the client's connections. Idempotent."""
        if self._client is not None:
            await self._client.aclose()
