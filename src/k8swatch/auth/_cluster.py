"""A connection to the cluster that reviews tokens and access (kubeconfig or in-cluster)."""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
import tempfile
import time
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any, cast

import attrs
import httpx
import yaml

__all__ = ["ClusterConnection"]

_SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a mapping")
    return cast("Mapping[str, Any]", value)


def _named(entries: object, name: str, kind: str) -> Mapping[str, Any]:
    if not isinstance(entries, list):
        raise ValueError(f"no {kind}s in the kubeconfig")
    for entry in cast("list[object]", entries):
        item = _mapping(entry, kind)
        if item.get("name") == name:
            return _mapping(item.get(kind), kind)
    raise ValueError(f"no {kind} named {name!r} in the kubeconfig")


@contextlib.contextmanager
def _as_file(data: bytes) -> Generator[str, None, None]:
    # ssl.SSLContext.load_cert_chain reads files only: a private temporary one.
    fd, name = tempfile.mkstemp(prefix="k8swatch-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        yield name
    finally:
        os.unlink(name)


class _FileToken(httpx.Auth):
    """A bearer token read from a file, again at most every minute (as client-go does).

    Kubelet rotates projected service account tokens in place.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._token = ""
        self._read_at = -_TOKEN_FILE_PERIOD

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        now = time.monotonic()
        if now - self._read_at >= _TOKEN_FILE_PERIOD:
            try:
                self._token = Path(self._path).read_text().strip()
                self._read_at = now
            except OSError:
                if not self._token:
                    raise
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


_TOKEN_FILE_PERIOD = 60.0


@attrs.frozen
class ClusterConnection:
    """Where and how to reach a kube-apiserver: its URL, TLS context and credentials.

    Attributes:
        server: The API server's URL (``https://...``).
        ssl_context: Verifies the server (and presents a client certificate,
            when the kubeconfig has one); ``None`` for ``http://``.
        token: A bearer token, or "".
        token_file: A file holding the bearer token, read again at most every
            minute (a rotated service account token is picked up); it wins
            over *token*.
    """

    server: str
    ssl_context: ssl.SSLContext | None = None
    token: str = ""
    token_file: str = ""

    @classmethod
    def from_kubeconfig(cls, path: str | Path, *, context: str = "") -> ClusterConnection:
        """Read a kubeconfig file's *context* (default: its current context).

        Understands ``server``, ``certificate-authority[-data]``,
        ``insecure-skip-tls-verify``, ``client-certificate[-data]``,
        ``client-key[-data]``, ``token`` and ``tokenFile``; relative paths are
        relative to the kubeconfig's directory.

        Raises:
            ValueError: the file is not a usable kubeconfig.
            OSError: it (or a file it names) cannot be read.
        """
        path = Path(path)
        try:
            config = _mapping(yaml.safe_load(path.read_text()), "a kubeconfig")
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not YAML: {exc}") from None
        base = path.parent
        try:
            name = context or str(config.get("current-context") or "")
            if not name:
                raise ValueError("no current-context")
            ctx = _named(config.get("contexts"), name, "context")
            cluster = _named(config.get("clusters"), str(ctx.get("cluster", "")), "cluster")
            user_name = str(ctx.get("user", "") or "")
            user: Mapping[str, Any] = (
                _named(config.get("users"), user_name, "user") if user_name else {}
            )
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

        def data(entry: Mapping[str, Any], key: str) -> bytes | None:
            inline = entry.get(f"{key}-data")
            if inline:
                return base64.b64decode(str(inline))
            file = entry.get(key)
            if file:
                return (base / str(file)).read_bytes()
            return None

        server = str(cluster.get("server", "") or "")
        if not server:
            raise ValueError(f"{path}: the cluster has no server")
        token = str(user.get("token", "") or "")
        token_file = ""
        if not token and user.get("tokenFile"):
            token_file = str(base / str(user["tokenFile"]))
            Path(token_file).read_text()  # readable now, or a clear error at start
        ssl_context: ssl.SSLContext | None = None
        if server.startswith("https://"):
            ca = data(cluster, "certificate-authority")
            ssl_context = ssl.create_default_context(cadata=ca.decode("ascii") if ca else None)
            if cluster.get("insecure-skip-tls-verify"):
                ssl_context.check_hostname = False
                ssl_context.verify_mode = ssl.CERT_NONE
            cert = data(user, "client-certificate")
            key = data(user, "client-key")
            if cert and key:
                with _as_file(cert) as cert_file, _as_file(key) as key_file:
                    ssl_context.load_cert_chain(cert_file, key_file)
        return cls(server.rstrip("/"), ssl_context, token, token_file)

    @classmethod
    def in_cluster(cls) -> ClusterConnection:
        """The cluster this pod runs in: its service account token and CA.

        Raises:
            ValueError: not running in a pod (no ``KUBERNETES_SERVICE_HOST``).
            OSError: the service account files cannot be read.
        """
        host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise ValueError("not running in a cluster (KUBERNETES_SERVICE_HOST is not set)")
        if ":" in host:
            host = f"[{host}]"
        token_file = _SERVICE_ACCOUNT / "token"
        token_file.read_text()  # readable now, or a clear error at start
        ssl_context = ssl.create_default_context(cafile=str(_SERVICE_ACCOUNT / "ca.crt"))
        return cls(f"https://{host}:{port}", ssl_context, token_file=str(token_file))

    def client(self, *, timeout: float = 10.0) -> httpx.AsyncClient:
        """A new ``httpx.AsyncClient`` for this cluster (close it when done)."""
        return httpx.AsyncClient(**self._client_options(timeout))

    def sync_client(self, *, timeout: float = 10.0) -> httpx.Client:
        """A new blocking ``httpx.Client`` for this cluster (for start-up lookups)."""
        return httpx.Client(**self._client_options(timeout))

    def _client_options(self, timeout: float) -> dict[str, Any]:
        options: dict[str, Any] = {
            "base_url": self.server,
            "verify": self.ssl_context if self.ssl_context is not None else True,
            "timeout": timeout,
        }
        if self.token_file:
            options["auth"] = _FileToken(self.token_file)
        elif self.token:
            options["headers"] = {"Authorization": f"Bearer {self.token}"}
        return options
