"""``k8swatch serve``'s TLS, authentication and authorization flags (CLI only).

Turns the flags kube's aggregated API servers use (``--tls-cert-file``,
``--client-ca-file``, ``--requestheader-*``, ``--token-auth-file``,
``--authentication-kubeconfig``, ``--authorization-mode``, ...) into the
serving certificate, the [`Authenticator`][k8swatch.server.Authenticator] and
the [`Authorizer`][k8swatch.server.Authorizer] handed to ``create_app``, and
the uvicorn options that serve TLS (``k8swatch._cli_uvicorn`` passes the
client certificate to the app through the ASGI TLS extension). Imports
``k8swatch.auth`` only when called (the ``serve`` extra).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import shutil
import ssl
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from k8swatch._go import parse_go_duration

if TYPE_CHECKING:
    from k8swatch.auth import ClusterConnection, SelfSignedCertificate
    from k8swatch.server import Authenticator, Authorizer, TokenAuthenticator

__all__ = [
    "SecurityError",
    "ServingSecurity",
    "add_security_flags",
    "is_loopback",
    "open_security",
]

_MODES = ("AlwaysAllow", "AlwaysDeny", "ABAC", "Webhook")
_DEFAULT_ALWAYS_ALLOW = "/healthz,/readyz,/livez"


class SecurityError(Exception):
    """A flag combination that cannot serve: the message says what to change."""


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _duration(text: str) -> float:
    try:
        seconds = parse_go_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return seconds


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "t"):
        return True
    if lowered in ("false", "0", "f"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r} (true or false)")


def add_security_flags(parser: argparse.ArgumentParser) -> None:
    """Add the TLS, authentication and authorization flags to ``serve``."""
    tls = parser.add_argument_group("TLS")
    tls.add_argument(
        "--tls-cert-file",
        default="",
        help=(
            "the serving certificate (PEM, with any intermediates). Without it, a "
            "non-loopback --host or a client CA flag gets a generated self-signed "
            "certificate whose CA goes into the written kubeconfig"
        ),
    )
    tls.add_argument("--tls-private-key-file", default="", help="the serving certificate's key")
    authn = parser.add_argument_group("authentication (tried in this order)")
    authn.add_argument(
        "--requestheader-client-ca-file",
        default="",
        help="CA of the front proxy (kube-aggregator) allowed to name users in request headers",
    )
    authn.add_argument(
        "--requestheader-allowed-names",
        default="",
        type=_list,
        help="allowed CNs of the front proxy's certificate, comma-separated (empty: any)",
    )
    authn.add_argument(
        "--requestheader-username-headers",
        default=["X-Remote-User"],
        type=_list,
        help="headers naming the user (default X-Remote-User)",
    )
    authn.add_argument(
        "--requestheader-group-headers",
        default=["X-Remote-Group"],
        type=_list,
        help="headers naming the groups (default X-Remote-Group)",
    )
    authn.add_argument(
        "--requestheader-extra-headers-prefix",
        default=["X-Remote-Extra-"],
        type=_list,
        help="prefixes of headers carrying extra user attributes (default X-Remote-Extra-)",
    )
    authn.add_argument(
        "--client-ca-file",
        default="",
        help="CA of client certificates: CN is the user name, O the groups",
    )
    authn.add_argument(
        "--token-auth-file",
        default="",
        help='static bearer tokens, CSV lines token,user,uid,"group1,group2"',
    )
    authn.add_argument(
        "--authentication-kubeconfig",
        default="",
        help="the cluster that reviews bearer tokens (TokenReview)",
    )
    authn.add_argument(
        "--authentication-token-webhook-cache-ttl",
        default=10.0,
        type=_duration,
        help="how long TokenReview answers are reused (Go duration, default 10s)",
    )
    authn.add_argument(
        "--anonymous-auth",
        default=True,
        type=_bool,
        help="requests without credentials are system:anonymous (default true); false: 401",
    )
    authz = parser.add_argument_group("authorization")
    authz.add_argument(
        "--authorization-mode",
        default=[],
        type=_list,
        help=(
            "authorizers tried in order, comma-separated: AlwaysAllow, AlwaysDeny, ABAC, "
            "Webhook (default: Webhook with --authorization-kubeconfig, else ABAC with "
            "--authorization-policy-file, else AlwaysAllow on a loopback --host)"
        ),
    )
    authz.add_argument(
        "--authorization-policy-file",
        default="",
        help="ABAC policy, one JSON policy per line (--authorization-mode=ABAC)",
    )
    authz.add_argument(
        "--authorization-kubeconfig",
        default="",
        help="the cluster that reviews access (SubjectAccessReview, --authorization-mode=Webhook)",
    )
    authz.add_argument(
        "--authorization-webhook-cache-authorized-ttl",
        default=10.0,
        type=_duration,
        help="how long allowed SubjectAccessReview answers are reused (default 10s)",
    )
    authz.add_argument(
        "--authorization-webhook-cache-unauthorized-ttl",
        default=10.0,
        type=_duration,
        help="how long other SubjectAccessReview answers are reused (default 10s)",
    )
    authz.add_argument(
        "--authorization-always-allow-paths",
        default=_list(_DEFAULT_ALWAYS_ALLOW),
        type=_list,
        help=(
            "paths allowed to everyone, comma-separated, a trailing * for a prefix "
            "(default /healthz,/readyz,/livez)"
        ),
    )


def is_loopback(host: str) -> bool:
    """Whether *host* is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@attrs.define
class ServingSecurity:
    """What the flags give: TLS files, the CA for the kubeconfig, authn and authz."""

    authenticator: Authenticator | None
    authorizer: Authorizer | None
    cert_file: str = ""
    key_file: str = ""
    client_ca_bundle: str = ""
    kubeconfig_ca: bytes | None = None
    kubeconfig_client_cert: bytes | None = None
    kubeconfig_client_key: bytes | None = None
    notes: list[str] = attrs.field(factory=lambda: list[str]())

    @property
    def tls(self) -> bool:
        """Whether the API is served over TLS."""
        return bool(self.cert_file)

    def uvicorn_options(self) -> dict[str, Any]:
        """The ``uvicorn.Config`` options that serve TLS (none without TLS)."""
        if not self.tls:
            return {}
        options: dict[str, Any] = {"ssl_certfile": self.cert_file, "ssl_keyfile": self.key_file}
        if self.client_ca_bundle:
            # Ask for a client certificate without requiring one.
            options["ssl_ca_certs"] = self.client_ca_bundle
            options["ssl_cert_reqs"] = ssl.CERT_OPTIONAL
        return options


def _check_readable(flag: str, path: str) -> None:
    if not os.access(path, os.R_OK):
        raise SecurityError(f"{flag} {path!r}: the file does not exist or cannot be read")


def _connection(flag: str, path: str) -> ClusterConnection:
    from k8swatch.auth import ClusterConnection

    if path:
        try:
            return ClusterConnection.from_kubeconfig(path)
        except (OSError, ValueError) as exc:
            raise SecurityError(f"{flag}: {exc}") from None
    try:
        return ClusterConnection.in_cluster()
    except (OSError, ValueError) as exc:
        raise SecurityError(f"{flag} is needed outside a cluster ({exc})") from None


@attrs.frozen
class _FrontProxy:
    """Who may name users in request headers, and in which headers."""

    ca_pem: bytes
    allowed_names: list[str]
    username_headers: list[str]
    group_headers: list[str]
    extra_headers_prefixes: list[str]
    source: str


def _read_pem(flag: str, path: str) -> bytes:
    _check_readable(flag, path)
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SecurityError(f"{flag}: {exc}") from None


_CONFIGMAP = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"


def _authentication_configmap(
    args: argparse.Namespace, security: ServingSecurity
) -> dict[str, str]:
    """``kube-system/extension-apiserver-authentication``'s data, or {} (then the flags rule).

    Read as k8s.io/apiserver reads it; a 404 or 403 (or an unreachable
    cluster) is noted and leaves the flags in charge, never a failed start.
    """
    import httpx

    connection = _connection("--authentication-kubeconfig", args.authentication_kubeconfig)
    try:
        with connection.sync_client(timeout=10.0) as client:
            response = client.get(_CONFIGMAP)
    except httpx.HTTPError as exc:
        security.notes.append(
            f"authentication: could not read {_CONFIGMAP} ({exc}); using the flags"
        )
        return {}
    if response.status_code != 200:
        security.notes.append(
            f"authentication: {_CONFIGMAP} answered HTTP {response.status_code}; using the flags"
        )
        return {}
    try:
        document: Any = response.json()
        data: Any = document.get("data") or {}
    except (ValueError, AttributeError):
        security.notes.append(f"authentication: {_CONFIGMAP} is not a ConfigMap; using the flags")
        return {}
    if not isinstance(data, dict):
        return {}
    items: dict[Any, Any] = data  # pyright: ignore[reportUnknownVariableType]
    return {str(k): str(v) for k, v in items.items()}


def _json_list(configmap: dict[str, str], key: str) -> list[str]:
    try:
        value: Any = json.loads(configmap.get(key) or "[]")
    except ValueError:
        raise SecurityError(f"{_CONFIGMAP}: {key} is not a JSON list") from None
    if not isinstance(value, list):
        raise SecurityError(f"{_CONFIGMAP}: {key} is not a JSON list")
    items: list[Any] = value  # pyright: ignore[reportUnknownVariableType]
    return [str(item) for item in items]


def _front_proxy(args: argparse.Namespace, configmap: dict[str, str]) -> _FrontProxy | None:
    if args.requestheader_client_ca_file:
        return _FrontProxy(
            _read_pem("--requestheader-client-ca-file", args.requestheader_client_ca_file),
            args.requestheader_allowed_names,
            args.requestheader_username_headers,
            args.requestheader_group_headers,
            args.requestheader_extra_headers_prefix,
            f"--requestheader-client-ca-file {args.requestheader_client_ca_file}",
        )
    ca = configmap.get("requestheader-client-ca-file", "")
    if not ca:
        return None
    return _FrontProxy(
        ca.encode(),
        _json_list(configmap, "requestheader-allowed-names"),
        _json_list(configmap, "requestheader-username-headers") or ["X-Remote-User"],
        _json_list(configmap, "requestheader-group-headers") or ["X-Remote-Group"],
        _json_list(configmap, "requestheader-extra-headers-prefix") or ["X-Remote-Extra-"],
        "extension-apiserver-authentication",
    )


def _client_ca(args: argparse.Namespace, configmap: dict[str, str]) -> tuple[bytes, str] | None:
    if args.client_ca_file:
        pem = _read_pem("--client-ca-file", args.client_ca_file)
        return pem, f"--client-ca-file {args.client_ca_file}"
    ca = configmap.get("client-ca-file", "")
    return (ca.encode(), "extension-apiserver-authentication") if ca else None


def _authenticator(
    args: argparse.Namespace,
    security: ServingSecurity,
    *,
    generated: SelfSignedCertificate | None,
    front_proxy: _FrontProxy | None,
    client_ca: tuple[bytes, str] | None,
) -> Authenticator:
    from k8swatch.auth import (
        CertificateAuthorities,
        RequestHeaderAuthenticator,
        TokenReviewAuthenticator,
        X509Authenticator,
    )
    from k8swatch.server import (
        BearerTokenAuthenticator,
        StaticTokenAuthenticator,
        UnionAuthenticator,
    )

    def authorities(source: str, pem: bytes) -> CertificateAuthorities:
        try:
            return CertificateAuthorities.from_pem(pem)
        except ValueError as exc:
            raise SecurityError(f"{source}: not PEM certificates: {exc}") from None

    chain: list[Authenticator] = []
    if front_proxy is not None:
        chain.append(
            RequestHeaderAuthenticator(
                authorities(front_proxy.source, front_proxy.ca_pem),
                allowed_names=front_proxy.allowed_names,
                username_headers=front_proxy.username_headers,
                group_headers=front_proxy.group_headers,
                extra_headers_prefixes=front_proxy.extra_headers_prefixes,
            )
        )
        security.notes.append(
            f"authentication: front-proxy request headers ({front_proxy.source}: "
            f"{', '.join(front_proxy.username_headers)})"
        )
    if client_ca is not None:
        pem, source = client_ca
        chain.append(X509Authenticator(authorities(source, pem)))
        security.notes.append(f"authentication: client certificates ({source})")
    if generated is not None:
        chain.append(X509Authenticator(CertificateAuthorities.from_pem(generated.ca_pem)))
    tokens: list[TokenAuthenticator] = []
    if args.token_auth_file:
        _check_readable("--token-auth-file", args.token_auth_file)
        try:
            tokens.append(StaticTokenAuthenticator.from_csv(args.token_auth_file))
        except (OSError, ValueError) as exc:
            raise SecurityError(f"--token-auth-file: {exc}") from None
        security.notes.append("authentication: static bearer tokens (--token-auth-file)")
    if args.authentication_kubeconfig:
        review = TokenReviewAuthenticator(
            _connection("--authentication-kubeconfig", args.authentication_kubeconfig),
            cache_ttl=args.authentication_token_webhook_cache_ttl,
        )
        tokens.append(review)
        security.notes.append("authentication: TokenReview (--authentication-kubeconfig)")
    if tokens:
        chain.append(BearerTokenAuthenticator(tokens))
    if not args.anonymous_auth:
        security.notes.append("authentication: requests without credentials get 401")
    elif chain:
        security.notes.append("authentication: requests without credentials are system:anonymous")
    return UnionAuthenticator(chain, anonymous=args.anonymous_auth)


class _AlwaysDeny:
    async def authorize(self, attributes: Any) -> Any:
        from k8swatch.server import AuthorizationResult, Decision

        return AuthorizationResult(Decision.NO_OPINION, "Everything is forbidden.")


def _authorizer(args: argparse.Namespace, security: ServingSecurity) -> Authorizer:
    from k8swatch.auth import SubjectAccessReviewAuthorizer
    from k8swatch.server import (
        ABACAuthorizer,
        AlwaysAllowAuthorizer,
        PathAuthorizer,
        UnionAuthorizer,
    )

    modes: list[str] = list(args.authorization_mode)
    explicit = bool(modes)
    if not modes:
        if args.authorization_kubeconfig:
            modes = ["Webhook"]
        elif args.authorization_policy_file:
            modes = ["ABAC"]
        elif is_loopback(args.host):
            modes = ["AlwaysAllow"]
        else:
            raise SecurityError(
                f"--host {args.host} is not loopback: choose who may do what with "
                "--authorization-mode (Webhook with --authorization-kubeconfig, ABAC with "
                "--authorization-policy-file, or AlwaysAllow to let every client do everything)"
            )
    for mode in modes:
        if mode not in _MODES:
            raise SecurityError(
                f"--authorization-mode: unknown mode {mode!r} (use {', '.join(_MODES)})"
            )
    if len(set(modes)) != len(modes):
        raise SecurityError("--authorization-mode: a mode is listed twice")
    if args.authorization_policy_file and "ABAC" not in modes:
        raise SecurityError("--authorization-policy-file needs ABAC in --authorization-mode")
    if args.authorization_kubeconfig and "Webhook" not in modes:
        raise SecurityError("--authorization-kubeconfig needs Webhook in --authorization-mode")
    chain: list[Authorizer] = []
    if args.authorization_always_allow_paths:
        chain.append(PathAuthorizer(args.authorization_always_allow_paths))
    for mode in modes:
        if mode == "AlwaysAllow":
            chain.append(AlwaysAllowAuthorizer())
        elif mode == "AlwaysDeny":
            chain.append(_AlwaysDeny())
        elif mode == "ABAC":
            if not args.authorization_policy_file:
                raise SecurityError("--authorization-mode=ABAC needs --authorization-policy-file")
            _check_readable("--authorization-policy-file", args.authorization_policy_file)
            try:
                chain.append(ABACAuthorizer.from_file(args.authorization_policy_file))
            except (OSError, ValueError) as exc:
                raise SecurityError(f"--authorization-policy-file: {exc}") from None
        else:
            review = SubjectAccessReviewAuthorizer(
                _connection("--authorization-kubeconfig", args.authorization_kubeconfig),
                allowed_ttl=args.authorization_webhook_cache_authorized_ttl,
                denied_ttl=args.authorization_webhook_cache_unauthorized_ttl,
            )
            chain.append(review)
    if explicit or modes != ["AlwaysAllow"]:  # the quick start's banner stays as it was
        security.notes.append(f"authorization: {','.join(modes)}")
    return UnionAuthorizer(chain)


@contextlib.contextmanager
def open_security(args: argparse.Namespace) -> Generator[ServingSecurity, None, None]:
    """Read the security flags; the files uvicorn needs live until the block ends.

    Raises:
        SecurityError: the flags cannot serve (the message says what to change).
    """
    if bool(args.tls_cert_file) != bool(args.tls_private_key_file):
        raise SecurityError("--tls-cert-file and --tls-private-key-file go together")
    for flag, path in (
        ("--tls-cert-file", args.tls_cert_file),
        ("--tls-private-key-file", args.tls_private_key_file),
    ):
        if path:
            _check_readable(flag, path)
    security = ServingSecurity(authenticator=None, authorizer=None)
    configmap = _authentication_configmap(args, security) if args.authentication_kubeconfig else {}
    front_proxy = _front_proxy(args, configmap)
    client_ca = _client_ca(args, configmap)
    workdir = tempfile.mkdtemp(prefix="k8swatch-tls-")  # private (0700)
    try:
        generated = None
        if args.tls_cert_file:
            security.cert_file = args.tls_cert_file
            security.key_file = args.tls_private_key_file
        elif front_proxy or client_ca or not is_loopback(args.host):
            generated = _self_signed(args.host, workdir, security)
        security.authenticator = _authenticator(
            args, security, generated=generated, front_proxy=front_proxy, client_ca=client_ca
        )
        security.authorizer = _authorizer(args, security)
        trusted = [front_proxy.ca_pem] if front_proxy else []
        if client_ca:
            trusted.append(client_ca[0])
        if generated is not None:
            trusted.append(generated.ca_pem)
        if trusted:
            bundle = Path(workdir, "client-ca.pem")
            bundle.write_bytes(b"\n".join(pem.strip() for pem in trusted) + b"\n")
            security.client_ca_bundle = str(bundle)
        if security.tls:
            _check_tls(security)
        yield security
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


KUBECONFIG_USER = "k8swatch-admin"
KUBECONFIG_GROUPS = ("system:masters",)


def _self_signed(host: str, workdir: str, security: ServingSecurity) -> SelfSignedCertificate:
    import socket

    from k8swatch.auth import generate_self_signed_certificate

    hosts = [] if host in ("0.0.0.0", "::", "") else [host.strip("[]")]
    with contextlib.suppress(OSError):
        hosts.append(socket.gethostname())
    generated = generate_self_signed_certificate(
        hosts, client_name=KUBECONFIG_USER, client_groups=KUBECONFIG_GROUPS
    )
    cert = Path(workdir, "serving.crt")
    key = Path(workdir, "serving.key")
    cert.write_bytes(generated.cert_pem)
    key.touch(mode=0o600)
    key.write_bytes(generated.key_pem)
    security.cert_file = str(cert)
    security.key_file = str(key)
    security.kubeconfig_ca = generated.ca_pem
    security.kubeconfig_client_cert = generated.client_cert_pem
    security.kubeconfig_client_key = generated.client_key_pem
    security.notes.append(
        "TLS: a generated self-signed serving certificate; the kubeconfig trusts its CA and "
        f"holds a client certificate for {KUBECONFIG_USER} ({', '.join(KUBECONFIG_GROUPS)}); "
        "give --tls-cert-file and --tls-private-key-file to use your own"
    )
    return generated


def _check_tls(security: ServingSecurity) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(security.cert_file, security.key_file)
    except (ssl.SSLError, OSError) as exc:
        raise SecurityError(
            f"--tls-cert-file/--tls-private-key-file: not a certificate and its key: {exc}"
        ) from None
    if security.client_ca_bundle:
        try:
            context.load_verify_locations(security.client_ca_bundle)
        except (ssl.SSLError, OSError) as exc:
            raise SecurityError(f"a client CA file is not PEM certificates: {exc}") from None
