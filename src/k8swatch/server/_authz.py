"""Authorization: may this user do this, in kube-apiserver's terms.

An [`Authorizer`][k8swatch.server.Authorizer] judges
[`Attributes`][k8swatch.server.Attributes] (the user and the
[`RequestInfo`][k8swatch.server.RequestInfo]) and answers a
[`Decision`][k8swatch.server.Decision] with a reason.
[`UnionAuthorizer`][k8swatch.server.UnionAuthorizer] tries them in order like
``--authorization-mode=A,B``. [`ABACAuthorizer`][k8swatch.server.ABACAuthorizer]
is Kubernetes' ABAC, rule for rule.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from k8swatch._status import Status, StatusError, forbidden

from ._auth import ALL_AUTHENTICATED, UserInfo, _close_all
from ._requestinfo import RequestInfo

__all__ = [
    "ABACAuthorizer",
    "ABACPolicy",
    "AlwaysAllowAuthorizer",
    "Attributes",
    "AuthorizationResult",
    "Authorizer",
    "Decision",
    "PathAuthorizer",
    "UnionAuthorizer",
    "forbidden_error",
]

_READ_ONLY_VERBS = frozenset({"get", "list", "watch"})


class Decision(enum.Enum):
    """An authorizer's answer, as Kubernetes' ``authorizer.Decision``."""

    ALLOW = "Allow"
    """The request is allowed; later authorizers are not asked."""
    DENY = "Deny"
    """The request is denied; later authorizers are not asked."""
    NO_OPINION = "NoOpinion"
    """This authorizer has no opinion; the next one is asked (none left: denied)."""


@attrs.frozen
class AuthorizationResult:
    """A [`Decision`][k8swatch.server.Decision], why, and what went wrong deciding.

    Attributes:
        decision: The decision.
        reason: Why (it ends the 403 message).
        error: Why no decision could be made (e.g. the reviewing server
            failed). A request not allowed with an error gets 500
            InternalError instead of 403, as kube-apiserver answers; the error
            is logged, not sent.
    """

    decision: Decision
    reason: str = ""
    error: str = ""


@attrs.frozen
class Attributes:
    """What is being authorized: who (*user*) asks to do what (*request*)."""

    user: UserInfo
    request: RequestInfo

    @property
    def read_only(self) -> bool:
        """Whether the verb is ``get``, ``list`` or ``watch`` (kube's ``IsReadOnly``)."""
        return self.request.verb in _READ_ONLY_VERBS


@runtime_checkable
class Authorizer(Protocol):
    """Decides whether a request is allowed."""

    async def authorize(self, attributes: Attributes) -> AuthorizationResult:
        """Judge *attributes* (no opinion with an ``error`` when it cannot)."""
        ...


class AlwaysAllowAuthorizer:
    """Allows every request (``--authorization-mode=AlwaysAllow``)."""

    async def authorize(self, attributes: Attributes) -> AuthorizationResult:
        """Allow."""
        return AuthorizationResult(Decision.ALLOW)


class PathAuthorizer:
    """Allows the non-resource paths given, kube's ``--authorization-always-allow-paths``.

    A path ending in ``*`` allows every path starting with what precedes it;
    other requests get no opinion.
    """

    def __init__(self, paths: Iterable[str] = ("/healthz", "/livez", "/readyz")) -> None:
        self.paths: tuple[str, ...] = tuple(paths)
        self._exact = frozenset(p for p in self.paths if not p.endswith("*"))
        self._prefixes = tuple(p[:-1] for p in self.paths if p.endswith("*"))

    async def authorize(self, attributes: Attributes) -> AuthorizationResult:
        """Allow a listed non-resource path; no opinion otherwise."""
        info = attributes.request
        if not info.resource_request and (
            info.path in self._exact or info.path.startswith(self._prefixes)
        ):
            return AuthorizationResult(Decision.ALLOW)
        return AuthorizationResult(Decision.NO_OPINION)


class UnionAuthorizer:
    """Authorizers asked in order: the first ``ALLOW`` or ``DENY`` decides.

    When all have no opinion the result has no opinion (the request is
    denied) and its reason joins theirs, one per line, as kube does; their
    errors are joined too.
    """

    def __init__(self, authorizers: Sequence[Authorizer]) -> None:
        self.authorizers: tuple[Authorizer, ...] = tuple(authorizers)

    async def authorize(self, attributes: Attributes) -> AuthorizationResult:
        """The first decision that is not ``NO_OPINION``."""
        reasons: list[str] = []
        errors: list[str] = []
        for authorizer in self.authorizers:
            result = await authorizer.authorize(attributes)
            if result.decision is not Decision.NO_OPINION:
                return result
            if result.reason:
                reasons.append(result.reason)
            if result.error:
                errors.append(result.error)
        return AuthorizationResult(Decision.NO_OPINION, "\n".join(reasons), "; ".join(errors))

    async def aclose(self) -> None:
        """Close the authorizers that have ``aclose()``."""
        await _close_all(self.authorizers)


@attrs.frozen
class ABACPolicy:
    """One ABAC rule, as ``abac.authorization.kubernetes.io`` ``PolicySpec``.

    ``"*"`` matches anything in each field. A rule with ``user`` or ``group``
    ``"*"`` matches every authenticated user (kube converts it to the group
    ``system:authenticated``). *namespace*, *resource* and *api_group* match
    resource requests only (an empty value matches only an empty attribute:
    no namespace means cluster-scoped and all-namespaces requests);
    *non_resource_path* matches non-resource paths only (exactly, ``*``, or a
    prefix ending in ``*``). *readonly* restricts the rule to ``get``,
    ``list`` and ``watch``.
    """

    user: str = ""
    group: str = ""
    readonly: bool = False
    api_group: str = ""
    resource: str = ""
    namespace: str = ""
    non_resource_path: str = ""

    @classmethod
    def from_json(cls, line: str) -> ABACPolicy:
        """Decode one line of an ABAC policy file (``v1beta1`` or the unversioned ``v0``).

        Raises:
            ValueError: not a JSON object, an unknown ``apiVersion``/``kind``,
                or a field of the wrong type.
        """
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("a policy must be a JSON object")
        obj: dict[str, Any] = data  # pyright: ignore[reportUnknownVariableType]
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if api_version is None and kind is None:
            return cls._from_v0(obj)
        if api_version != "abac.authorization.kubernetes.io/v1beta1" or kind != "Policy":
            raise ValueError(
                f"unknown policy type apiVersion={api_version!r} kind={kind!r} "
                '(want "abac.authorization.kubernetes.io/v1beta1", "Policy")'
            )
        spec: Any = obj.get("spec") or {}
        if not isinstance(spec, dict):
            raise ValueError("spec must be an object")
        fields: dict[str, Any] = spec  # pyright: ignore[reportUnknownVariableType]
        user = _string(fields, "user")
        group = _string(fields, "group")
        if user == "*" or group == "*":
            user, group = "", ALL_AUTHENTICATED
        return cls(
            user=user,
            group=group,
            readonly=_bool(fields, "readonly"),
            api_group=_string(fields, "apiGroup"),
            resource=_string(fields, "resource"),
            namespace=_string(fields, "namespace"),
            non_resource_path=_string(fields, "nonResourcePath"),
        )

    @classmethod
    def _from_v0(cls, fields: dict[str, Any]) -> ABACPolicy:
        user = _string(fields, "user")
        group = _string(fields, "group")
        namespace = _string(fields, "namespace")
        resource = _string(fields, "resource")
        if (not user and not group) or user == "*" or group == "*":
            user, group = ("" if user == "*" else user), ALL_AUTHENTICATED
        return cls(
            user=user,
            group=group,
            readonly=_bool(fields, "readonly"),
            api_group="*",
            resource=resource or "*",
            namespace=namespace or "*",
            non_resource_path="*" if not namespace and not resource else "",
        )

    def subject_matches(self, user: UserInfo) -> bool:
        """Kube's ``subjectMatches``: the rule names this user or one of its groups."""
        matched = False
        if self.user:
            if self.user != "*" and self.user != user.name:
                return False
            matched = True
        if self.group:
            if self.group != "*" and self.group not in user.groups:
                return False
            matched = True
        return matched

    def matches(self, attributes: Attributes) -> bool:
        """Whether this rule allows *attributes* (subject, verb, then resource or path)."""
        if not self.subject_matches(attributes.user):
            return False
        if self.readonly and not attributes.read_only:
            return False
        info = attributes.request
        if info.resource_request:
            return (
                self.namespace in ("*", info.namespace)
                and self.resource in ("*", info.resource)
                and self.api_group in ("*", info.api_group)
            )
        path = self.non_resource_path
        return (
            path == "*"
            or path == info.path
            or (path.endswith("*") and info.path.startswith(path.rstrip("*")))
        )


def _string(fields: dict[str, Any], key: str) -> str:
    value = fields.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {value!r}")
    return value


def _bool(fields: dict[str, Any], key: str) -> bool:
    value = fields.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {value!r}")
    return value


class ABACAuthorizer:
    """Kubernetes' ABAC (``--authorization-mode=ABAC``): allowed when any rule matches.

    No match is no opinion with the reason ``No policy matched.``, as kube's.
    """

    def __init__(self, policies: Iterable[ABACPolicy]) -> None:
        self.policies: tuple[ABACPolicy, ...] = tuple(policies)

    @classmethod
    def from_file(cls, path: str | Path) -> ABACAuthorizer:
        """Read ``--authorization-policy-file``: one JSON policy per line.

        Blank lines and lines starting with ``#`` are skipped.

        Raises:
            ValueError: a line is not a valid policy (its number is in the message).
            OSError: the file cannot be read.
        """
        policies: list[ABACPolicy] = []
        for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            try:
                policies.append(ABACPolicy.from_json(text))
            except ValueError as exc:
                raise ValueError(f"{path}, line {number}: {exc}: {text}") from None
        return cls(policies)

    async def authorize(self, attributes: Attributes) -> AuthorizationResult:
        """Allow when a rule matches; no opinion (``No policy matched.``) otherwise."""
        for policy in self.policies:
            if policy.matches(attributes):
                return AuthorizationResult(Decision.ALLOW)
        return AuthorizationResult(Decision.NO_OPINION, "No policy matched.")


def forbidden_error(attributes: Attributes, reason: str = "") -> StatusError:
    """The 403 Forbidden Status kube-apiserver sends for a denied request.

    ``<resource>.<group> "<name>" is forbidden: User "bob" cannot create
    resource "<resource>" in API group "<group>" in the namespace "<ns>"``,
    then ``: <reason>`` when there is one.
    """
    info = attributes.request
    user = json.dumps(attributes.user.name, ensure_ascii=False)
    verb = info.verb
    if not info.resource_request:
        message = f"User {user} cannot {verb} path {json.dumps(info.path, ensure_ascii=False)}"
    else:
        resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
        quoted = json.dumps(resource, ensure_ascii=False)
        group = json.dumps(info.api_group, ensure_ascii=False)
        where = (
            f"in the namespace {json.dumps(info.namespace, ensure_ascii=False)}"
            if info.namespace
            else "at the cluster scope"
        )
        message = f"User {user} cannot {verb} resource {quoted} in API group {group} {where}"
    if reason:
        message = f"{message}: {reason}"
    if not info.resource_request or not info.resource:
        # An empty GroupResource: kube's message is just "forbidden: <err>".
        return StatusError(Status(code=403, reason="Forbidden", message=f"forbidden: {message}"))
    return forbidden(info.resource, info.name, message, group=info.api_group)
