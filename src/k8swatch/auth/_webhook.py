"""Delegated authentication and authorization: TokenReview and SubjectAccessReview."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Any, Generic, TypeVar, cast

import httpx

from k8swatch.server import (
    Attributes,
    AuthenticationError,
    AuthorizationResult,
    Decision,
    UserInfo,
)

from ._cluster import ClusterConnection

__all__ = ["SubjectAccessReviewAuthorizer", "TokenReviewAuthenticator"]

logger = logging.getLogger("k8swatch.auth")

_V = TypeVar("_V")
_MAX_ENTRIES = 10_000


class _TTLCache(Generic[_V]):
    """A bounded cache whose entries expire (monotonic clock)."""

    def __init__(self) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, _V]] = OrderedDict()

    def get(self, key: Hashable) -> tuple[bool, _V | None]:
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        expires, value = entry
        if time.monotonic() >= expires:
            del self._entries[key]
            return False, None
        return True, value

    def put(self, key: Hashable, value: _V, ttl: float) -> None:
        if ttl <= 0:
            return
        self._entries[key] = (time.monotonic() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > _MAX_ENTRIES:
            self._entries.popitem(last=False)


class _Reviewer:
    """POSTs review objects to one cluster with a lazily opened client."""

    def __init__(self, connection: ClusterConnection, path: str, timeout: float) -> None:
        self.connection = connection
        self._path = path
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def review(self, body: dict[str, Any]) -> dict[str, Any]:
        if self._client is None:
            self._client = self.connection.client(timeout=self._timeout)
        response = await self._client.post(
            self._path,
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        if response.status_code != 201 and response.status_code != 200:
            raise RuntimeError(f"the review answered HTTP {response.status_code}")
        data = response.json()
        if not isinstance(data, dict):
            raise RuntimeError("the review answered something that is not an object")
        status: Any = cast("dict[str, Any]", data).get("status") or {}
        if not isinstance(status, dict):
            raise RuntimeError("the review's status is not an object")
        return cast("dict[str, Any]", status)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in cast("list[object]", value))


class TokenReviewAuthenticator:
    """Bearer tokens reviewed by a cluster (``authentication.k8s.io/v1`` ``TokenReview``).

    What ``--authentication-kubeconfig`` does in kube's aggregated servers.
    Answers (authenticated or not) are cached for *cache_ttl* seconds, keyed
    by the token's SHA-256; a failed review is not cached and refuses the
    token (401).

    Args:
        connection: The cluster.
        cache_ttl: Seconds an answer is reused (kube's default: 10).
        audiences: The audiences to ask for (``spec.audiences``), if any.
        timeout: Seconds per review.
    """

    def __init__(
        self,
        connection: ClusterConnection,
        *,
        cache_ttl: float = 10.0,
        audiences: Iterable[str] = (),
        timeout: float = 10.0,
    ) -> None:
        self.cache_ttl = cache_ttl
        self.audiences: tuple[str, ...] = tuple(audiences)
        self._reviewer = _Reviewer(
            connection, "/apis/authentication.k8s.io/v1/tokenreviews", timeout
        )
        self._cache: _TTLCache[UserInfo | None] = _TTLCache()

    async def authenticate_token(self, token: str) -> UserInfo | None:
        """The token's user, or ``None`` when the cluster says it is not authenticated.

        Raises:
            AuthenticationError: the review failed (unreachable, not 2xx, not JSON).
        """
        key = hashlib.sha256(token.encode()).hexdigest()
        found, user = self._cache.get(key)
        if found:
            return user
        spec: dict[str, Any] = {"token": token}
        if self.audiences:
            spec["audiences"] = list(self.audiences)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        try:
            status = await self._reviewer.review(body)
        except (httpx.HTTPError, RuntimeError, ValueError) as exc:
            logger.warning("TokenReview failed: %s", exc)
            raise AuthenticationError(f"token review failed: {exc}") from None
        user = None
        if status.get("authenticated") is True:
            info: Any = status.get("user") or {}
            if isinstance(info, dict):
                fields = cast("dict[str, Any]", info)
                raw_extra: Any = fields.get("extra") or {}
                extra = (
                    {str(k): _strings(v) for k, v in cast("dict[str, Any]", raw_extra).items()}
                    if isinstance(raw_extra, dict)
                    else {}
                )
                user = UserInfo(
                    str(fields.get("username", "")),
                    uid=str(fields.get("uid", "")),
                    groups=_strings(fields.get("groups")),
                    extra=extra,
                )
                if not user.name:
                    user = None
        elif status.get("error"):
            logger.info("TokenReview: %s", status.get("error"))
        self._cache.put(key, user, self.cache_ttl)
        return user

    async def aclose(self) -> None:
        """Close the HTTP client (idempotent)."""
        await self._reviewer.aclose()


class SubjectAccessReviewAuthorizer:
    """Access decided by a cluster (``authorization.k8s.io/v1`` ``SubjectAccessReview``).

    ``--authorization-mode=Webhook`` with ``--authorization-kubeconfig``:
    ``allowed`` is ``ALLOW``, ``denied`` is ``DENY``, anything else no
    opinion (with the cluster's reason). Allowed answers are cached for
    *allowed_ttl*, the others for *denied_ttl* seconds (kube's delegated
    defaults: 10 and 10); a failed review is not cached and gives no opinion
    with an error (500 unless a later authorizer allows).

    Args:
        connection: The cluster.
        allowed_ttl: Seconds an allowed answer is reused.
        denied_ttl: Seconds any other answer is reused.
        timeout: Seconds per review.
    """

    def __init__(
        self,
        connection: ClusterConnection,
        *,
        allowed_ttl: float = 10.0,
        denied_ttl: float = 10.0,
        timeout: float = 10.0,
    ) -> None:
        self.allowed_ttl = allowed_ttl
        self.denied_ttl = denied_ttl
        self._reviewer = _Reviewer(
            connection, "/apis/authorization.k8s.io/v1/subjectaccessreviews", timeout
        )
        self._cache: _TTLCache[AuthorizationResult] = _TTLCache()

    @staticmethod
    def review_spec(attributes: Attributes) -> dict[str, Any]:
        """The ``SubjectAccessReview`` spec for *attributes* (empty fields left out)."""
        user = attributes.user
        info = attributes.request
        spec: dict[str, Any] = {}
        if info.resource_request:
            resource = {
                "namespace": info.namespace,
                "verb": info.verb,
                "group": info.api_group,
                "version": info.api_version,
                "resource": info.resource,
                "subresource": info.subresource,
                "name": info.name,
            }
            spec["resourceAttributes"] = {k: v for k, v in resource.items() if v}
        else:
            spec["nonResourceAttributes"] = {"path": info.path, "verb": info.verb}
        if user.name:
            spec["user"] = user.name
        if user.groups:
            spec["groups"] = list(user.groups)
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra.items()}
        if user.uid:
            spec["uid"] = user.uid
        return spec

    async def authorize(self, attributes: Attributes) -> AuthorizationResult:
        """Ask the cluster (or the cache)."""
        spec = self.review_spec(attributes)
        key = json.dumps(spec, sort_keys=True)
        found, cached = self._cache.get(key)
        if found and cached is not None:
            return cached
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": spec,
        }
        try:
            status = await self._reviewer.review(body)
        except (httpx.HTTPError, RuntimeError, ValueError) as exc:
            logger.warning("SubjectAccessReview failed: %s", exc)
            return AuthorizationResult(
                Decision.NO_OPINION, error=f"subject access review failed: {exc}"
            )
        reason = str(status.get("reason", "") or "")
        if status.get("denied") is True:  # denied wins, even over allowed
            result = AuthorizationResult(Decision.DENY, reason)
        elif status.get("allowed") is True:
            result = AuthorizationResult(Decision.ALLOW, reason)
        else:
            result = AuthorizationResult(Decision.NO_OPINION, reason)
        ttl = self.allowed_ttl if result.decision is Decision.ALLOW else self.denied_ttl
        self._cache.put(key, result, ttl)
        return result

    async def aclose(self) -> None:
        """Close the HTTP client (idempotent)."""
        await self._reviewer.aclose()
