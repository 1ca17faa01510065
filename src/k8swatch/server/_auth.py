"""Authentication: who sent a request, in kube-apiserver's order.

An [`Authenticator`][k8swatch.server.Authenticator] looks at one
[`ClientRequest`][k8swatch.server.ClientRequest] and answers a
[`UserInfo`][k8swatch.server.UserInfo], ``None`` (it found no credential of
its kind) or raises [`AuthenticationError`][k8swatch.server.AuthenticationError]
(a credential was presented and is not valid).
[`UnionAuthenticator`][k8swatch.server.UnionAuthenticator] chains them as the
apiserver does; the implementations here need only the standard library
(certificate-based and delegated ones live in [`k8swatch.auth`][k8swatch.auth]).
"""

from __future__ import annotations

import csv
import hmac
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from ._types import Scope

__all__ = [
    "ALL_AUTHENTICATED",
    "ALL_UNAUTHENTICATED",
    "ANONYMOUS",
    "AuthenticationError",
    "Authenticator",
    "BearerTokenAuthenticator",
    "ClientRequest",
    "StaticTokenAuthenticator",
    "TokenAuthenticator",
    "UnionAuthenticator",
    "UserInfo",
]

logger = logging.getLogger("k8swatch.server")

ALL_AUTHENTICATED = "system:authenticated"
"""The group every authenticated user is in."""

ALL_UNAUTHENTICATED = "system:unauthenticated"
"""The group of the anonymous user."""


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _no_extra() -> Mapping[str, tuple[str, ...]]:
    return {}


def _freeze_extra(value: Mapping[str, Iterable[str]]) -> Mapping[str, tuple[str, ...]]:
    return {key: tuple(values) for key, values in value.items()}


@attrs.frozen
class UserInfo:
    """An authenticated user, as Kubernetes' ``user.Info``.

    Attributes:
        name: The user name (``system:anonymous`` for the anonymous user).
        uid: A unique id, or "".
        groups: The groups the user is in.
        extra: Extra attributes (``authentication.kubernetes.io/...``), each a
            list of values.
    """

    name: str
    uid: str = ""
    groups: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    extra: Mapping[str, tuple[str, ...]] = attrs.field(factory=_no_extra, converter=_freeze_extra)

    @property
    def anonymous(self) -> bool:
        """Whether this is ``system:anonymous``."""
        return self.name == ANONYMOUS.name


ANONYMOUS = UserInfo("system:anonymous", groups=(ALL_UNAUTHENTICATED,))
"""The anonymous user: ``system:anonymous`` in ``system:unauthenticated``."""


class AuthenticationError(Exception):
    """A credential was presented and is not valid (the request gets 401 Unauthorized).

    The message is logged, never sent to the client.
    """


@attrs.frozen
class ClientRequest:
    """What an authenticator sees of a request.

    Attributes:
        method: The HTTP method.
        path: The URL path.
        headers: The raw headers, names lower-cased, in order (repeated
            headers stay separate).
        client_cert_chain: The client's certificate chain as PEM strings, leaf
            first, already verified by the TLS layer against one of the
            trusted CAs: the ASGI TLS extension's ``client_cert_chain``
            (empty without TLS or without a client certificate).
    """

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    client_cert_chain: tuple[str, ...] = ()

    @classmethod
    def from_scope(cls, scope: Scope) -> ClientRequest:
        """Read an ASGI ``http`` *scope* (and its ``tls`` extension, when there)."""
        extensions: Mapping[str, Any] = scope.get("extensions") or {}
        tls: Mapping[str, Any] = extensions.get("tls") or {}
        pems: Iterable[Any] = tls.get("client_cert_chain") or ()
        chain = tuple(str(pem) for pem in pems)
        return cls(
            method=str(scope.get("method", "GET")).upper(),
            path=str(scope.get("path", "/")),
            headers=tuple(
                (k.decode("latin-1").lower(), v.decode("latin-1"))
                for k, v in scope.get("headers", ())
            ),
            client_cert_chain=chain,
        )

    def header(self, name: str) -> str:
        """The first value of header *name* (case-insensitive), or ""."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return ""

    def header_values(self, name: str) -> list[str]:
        """Every non-empty value of header *name*, in order (not split at commas)."""
        name = name.lower()
        return [value for key, value in self.headers if key == name and value]


@runtime_checkable
class Authenticator(Protocol):
    """Finds the user of a request."""

    async def authenticate(self, request: ClientRequest) -> UserInfo | None:
        """Return the user, or ``None`` when *request* carries no credential of this kind.

        Raises:
            AuthenticationError: a credential of this kind is there and is not valid.
        """
        ...


@runtime_checkable
class TokenAuthenticator(Protocol):
    """Finds the user of a bearer token."""

    async def authenticate_token(self, token: str) -> UserInfo | None:
        """Return the token's user, or ``None`` when the token is not known here.

        Raises:
            AuthenticationError: the token could not be checked (e.g. the
                reviewing server failed).
        """
        ...


class BearerTokenAuthenticator:
    """``Authorization: Bearer <token>``, checked by token authenticators in order.

    A bearer token that none of them knows raises
    [`AuthenticationError`][k8swatch.server.AuthenticationError] (401), as
    kube-apiserver's ``invalid bearer token``; a request without one is left
    to the next authenticator.
    """

    def __init__(self, authenticators: Iterable[TokenAuthenticator]) -> None:
        self.authenticators: tuple[TokenAuthenticator, ...] = tuple(authenticators)

    async def authenticate(self, request: ClientRequest) -> UserInfo | None:
        """Return the bearer token's user, ``None`` without a bearer token."""
        auth = request.header("authorization").strip()
        if not auth:
            return None
        parts = auth.split(" ", 2)
        if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
            return None
        token = parts[1]
        errors: list[str] = []
        for authenticator in self.authenticators:
            try:
                user = await authenticator.authenticate_token(token)
            except AuthenticationError as exc:
                errors.append(str(exc))
                continue
            if user is not None:
                return user
        raise AuthenticationError("; ".join([*errors, "invalid bearer token"]))

    async def aclose(self) -> None:
        """Close the token authenticators that have ``aclose()``."""
        await _close_all(self.authenticators)


class StaticTokenAuthenticator:
    """Tokens from a static list, as kube-apiserver's ``--token-auth-file``.

    Args:
        tokens: token → user.
    """

    def __init__(self, tokens: Mapping[str, UserInfo]) -> None:
        self._tokens = dict(tokens)

    @classmethod
    def from_csv(cls, path: str | Path) -> StaticTokenAuthenticator:
        """Read kube's token CSV: ``token,user,uid[,"group1,group2"]`` per line.

        An empty token is skipped, a repeated token keeps its last line (both
        logged), as kube-apiserver does.

        Raises:
            ValueError: a line has fewer than three columns.
            OSError: the file cannot be read.
        """
        tokens: dict[str, UserInfo] = {}
        with Path(path).open(newline="") as handle:
            for number, record in enumerate(csv.reader(handle), start=1):
                if len(record) < 3:
                    raise ValueError(
                        f"token file {str(path)!r} must have at least 3 columns "
                        f"(token, user name, user uid), found {len(record)} on line {number}"
                    )
                token, name, uid = record[0], record[1], record[2]
                if not token:
                    logger.warning("empty token in token file %r, record %d", str(path), number)
                    continue
                if token in tokens:
                    logger.warning("duplicate token in token file %r, record %d", str(path), number)
                groups = tuple(record[3].split(",")) if len(record) >= 4 else ()
                tokens[token] = UserInfo(name, uid=uid, groups=groups)
        return cls(tokens)

    async def authenticate_token(self, token: str) -> UserInfo | None:
        """The user of *token*, or ``None``."""
        for known, user in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return user
        return None


class UnionAuthenticator:
    """Authenticators tried in order, the first user found wins (kube's union).

    When none finds a user: if any raised, the request is unauthenticated
    (401); otherwise it is the anonymous user when *anonymous* is on, and
    unauthenticated when it is off (``--anonymous-auth=false``). Every user
    found gets the ``system:authenticated`` group, as kube adds it.
    """

    def __init__(self, authenticators: Sequence[Authenticator], *, anonymous: bool = True) -> None:
        self.authenticators: tuple[Authenticator, ...] = tuple(authenticators)
        self.anonymous = anonymous

    async def authenticate(self, request: ClientRequest) -> UserInfo | None:
        """Return the first user found, the anonymous user, or raise.

        Raises:
            AuthenticationError: a credential was not valid, or no credential
                was given and anonymous requests are off.
        """
        errors: list[str] = []
        for authenticator in self.authenticators:
            try:
                user = await authenticator.authenticate(request)
            except AuthenticationError as exc:
                errors.append(str(exc))
                continue
            if user is not None:
                return _with_authenticated_group(user)
        if errors:
            raise AuthenticationError("; ".join(errors))
        if self.anonymous:
            return ANONYMOUS
        raise AuthenticationError("no credentials and anonymous requests are off")

    async def aclose(self) -> None:
        """Close the authenticators that have ``aclose()``."""
        await _close_all(self.authenticators)


async def _close_all(parts: Iterable[object]) -> None:
    """``aclose()`` every part that has one (each once)."""
    seen: set[int] = set()
    for part in parts:
        close = getattr(part, "aclose", None)
        if close is not None and id(part) not in seen:
            seen.add(id(part))
            await close()


def _with_authenticated_group(user: UserInfo) -> UserInfo:
    if user.anonymous or ALL_AUTHENTICATED in user.groups:
        return user
    return attrs.evolve(user, groups=(*user.groups, ALL_AUTHENTICATED))
