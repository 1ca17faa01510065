"""ABAC (Kubernetes' rules, both file formats), static tokens and the unions, without a server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8swatch.server import (
    ANONYMOUS,
    ABACAuthorizer,
    ABACPolicy,
    Attributes,
    AuthenticationError,
    BearerTokenAuthenticator,
    ClientRequest,
    Decision,
    PathAuthorizer,
    StaticTokenAuthenticator,
    UnionAuthenticator,
    UnionAuthorizer,
    UserInfo,
    forbidden_error,
    request_info,
)

G = "aggregation.coder.com"
WS = f"/apis/{G}/v1alpha1/namespaces/default/coderworkspaces"
BOB = UserInfo("bob", groups=("devs", "system:authenticated"))


def attrs_for(user: UserInfo, method: str, path: str, **query: str) -> Attributes:
    return Attributes(user, request_info(method, path, {k: [v] for k, v in query.items()}))


def v1(**spec: object) -> ABACPolicy:
    return ABACPolicy.from_json(
        json.dumps(
            {
                "apiVersion": "abac.authorization.kubernetes.io/v1beta1",
                "kind": "Policy",
                "spec": spec,
            }
        )
    )


def test_readonly_allows_get_list_watch_only() -> None:
    policy = v1(user="bob", namespace="*", resource="*", apiGroup="*", readonly=True)
    assert policy.matches(attrs_for(BOB, "GET", WS))
    assert policy.matches(attrs_for(BOB, "GET", WS, watch="true"))
    assert policy.matches(attrs_for(BOB, "GET", f"{WS}/w"))
    for method, path in [
        ("POST", WS),
        ("PUT", f"{WS}/w"),
        ("PATCH", f"{WS}/w"),
        ("DELETE", f"{WS}/w"),
    ]:
        assert not policy.matches(attrs_for(BOB, method, path)), method


def test_resource_rules_match_resource_requests_only() -> None:
    policy = v1(user="bob", namespace="default", resource="coderworkspaces", apiGroup=G)
    assert policy.matches(attrs_for(BOB, "POST", WS))
    assert not policy.matches(attrs_for(BOB, "GET", "/apis"))
    assert not policy.matches(attrs_for(BOB, "GET", WS.replace("default", "other")))
    assert not policy.matches(
        attrs_for(BOB, "GET", WS.replace("coderworkspaces", "codertemplates"))
    )
    # no namespace in the rule: only cluster-scoped / all-namespaces requests
    cluster = v1(user="bob", resource="coderworkspaces", apiGroup=G)
    assert not cluster.matches(attrs_for(BOB, "GET", WS))
    assert cluster.matches(attrs_for(BOB, "GET", f"/apis/{G}/v1alpha1/coderworkspaces"))
    # no apiGroup in the rule: the core group only
    assert not v1(user="bob", namespace="*", resource="*").matches(attrs_for(BOB, "GET", WS))


def test_non_resource_rules() -> None:
    exact = v1(user="bob", nonResourcePath="/apis")
    assert exact.matches(attrs_for(BOB, "GET", "/apis"))
    assert not exact.matches(attrs_for(BOB, "GET", f"/apis/{G}"))
    assert not exact.matches(attrs_for(BOB, "GET", WS))
    prefix = v1(user="bob", nonResourcePath="/apis/*")
    assert prefix.matches(attrs_for(BOB, "GET", f"/apis/{G}/v1alpha1"))
    assert v1(user="bob", nonResourcePath="*").matches(attrs_for(BOB, "GET", "/metrics"))
    assert not v1(user="bob", nonResourcePath="*").matches(attrs_for(BOB, "GET", WS))


def test_subjects() -> None:
    anyone = v1(user="*", nonResourcePath="*")
    assert (anyone.user, anyone.group) == ("", "system:authenticated")
    assert anyone.matches(attrs_for(BOB, "GET", "/apis"))
    assert not anyone.matches(attrs_for(ANONYMOUS, "GET", "/apis"))
    unauth = v1(group="system:unauthenticated", nonResourcePath="*")
    assert unauthed_ok(unauth)
    both = v1(user="bob", group="ops", nonResourcePath="*")
    assert not both.matches(attrs_for(BOB, "GET", "/apis"))
    assert not v1(nonResourcePath="*").matches(attrs_for(BOB, "GET", "/apis")), "no subject"


def unauthed_ok(policy: ABACPolicy) -> bool:
    return policy.matches(attrs_for(ANONYMOUS, "GET", "/version"))


def test_unversioned_v0_lines() -> None:
    everything = ABACPolicy.from_json('{"user": "bob"}')
    assert everything == ABACPolicy(
        user="bob", api_group="*", resource="*", namespace="*", non_resource_path="*"
    )
    authenticated = ABACPolicy.from_json('{"readonly": true}')
    assert authenticated.group == "system:authenticated"
    scoped = ABACPolicy.from_json('{"user": "bob", "namespace": "default"}')
    assert (scoped.resource, scoped.non_resource_path) == ("*", "")


async def test_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.jsonl"
    path.write_text(
        "# comment\n\n"
        '{"apiVersion": "abac.authorization.kubernetes.io/v1beta1", "kind": "Policy",'
        ' "spec": {"user": "bob", "namespace": "*", "resource": "*", "apiGroup": "*",'
        ' "readonly": true}}\n'
    )
    authorizer = ABACAuthorizer.from_file(path)
    assert (await authorizer.authorize(attrs_for(BOB, "GET", WS))).decision is Decision.ALLOW
    denied = await authorizer.authorize(attrs_for(BOB, "POST", WS))
    assert (denied.decision, denied.reason) == (Decision.NO_OPINION, "No policy matched.")
    path.write_text('# ok\n{"apiVersion": "v9", "kind": "Policy"}\n')
    with pytest.raises(ValueError, match=r"line 2: unknown policy type"):
        ABACAuthorizer.from_file(path)
    path.write_text('{"user": 3}\n')
    with pytest.raises(ValueError, match=r"line 1: user must be a string"):
        ABACAuthorizer.from_file(path)
    path.write_text("{not json\n")
    with pytest.raises(ValueError, match=r"line 1"):
        ABACAuthorizer.from_file(path)


def test_forbidden_messages_are_the_apiservers() -> None:
    error = forbidden_error(attrs_for(UserInfo("bob"), "POST", WS), "No policy matched.")
    assert error.status.code == 403
    assert error.status.reason == "Forbidden"
    assert error.status.message == (
        f'coderworkspaces.{G} is forbidden: User "bob" cannot create resource "coderworkspaces" '
        f'in API group "{G}" in the namespace "default": No policy matched.'
    )
    named = forbidden_error(attrs_for(UserInfo("bob"), "PUT", f"{WS}/w/status"))
    assert named.status.message == (
        f'coderworkspaces.{G} "w" is forbidden: User "bob" cannot update resource '
        f'"coderworkspaces/status" in API group "{G}" in the namespace "default"'
    )
    cluster = forbidden_error(
        attrs_for(UserInfo("bob"), "GET", f"/apis/{G}/v1alpha1/coderworkspaces", watch="1")
    )
    assert cluster.status.message.endswith(
        f'cannot watch resource "coderworkspaces" in API group "{G}" at the cluster scope'
    )
    path = forbidden_error(attrs_for(ANONYMOUS, "GET", "/metrics"))
    assert path.status.message == 'forbidden: User "system:anonymous" cannot get path "/metrics"'


async def test_union_authorizer_order_and_always_allowed_paths() -> None:
    union = UnionAuthorizer(
        [PathAuthorizer(), ABACAuthorizer([v1(user="bob", nonResourcePath="/apis")])]
    )
    assert (
        await union.authorize(attrs_for(ANONYMOUS, "GET", "/healthz"))
    ).decision is Decision.ALLOW
    assert (await union.authorize(attrs_for(ANONYMOUS, "GET", "/livez"))).decision is Decision.ALLOW
    assert (
        await union.authorize(attrs_for(ANONYMOUS, "GET", "/readyz"))
    ).decision is Decision.ALLOW
    metrics = await union.authorize(attrs_for(ANONYMOUS, "GET", "/metrics"))
    assert (metrics.decision, metrics.reason) == (Decision.NO_OPINION, "No policy matched.")
    assert (await union.authorize(attrs_for(BOB, "GET", "/apis"))).decision is Decision.ALLOW
    prefixed = PathAuthorizer(["/debug/*"])
    assert (
        await prefixed.authorize(attrs_for(ANONYMOUS, "GET", "/debug/x"))
    ).decision is Decision.ALLOW


def token_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens.csv"
    path.write_text(text)
    return path


def request(**headers: str) -> ClientRequest:
    return ClientRequest("GET", "/apis", tuple((k.lower(), v) for k, v in headers.items()))


async def test_static_token_file(tmp_path: Path) -> None:
    tokens = StaticTokenAuthenticator.from_csv(
        token_file(tmp_path, 'tok-a,alice,1,"devs,ops"\ntok-b,bob,2\n,nobody,3\n')
    )
    assert await tokens.authenticate_token("tok-a") == UserInfo(
        "alice", uid="1", groups=("devs", "ops")
    )
    assert await tokens.authenticate_token("tok-b") == UserInfo("bob", uid="2")
    assert await tokens.authenticate_token("") is None
    assert await tokens.authenticate_token("nope") is None
    with pytest.raises(ValueError, match="at least 3 columns"):
        StaticTokenAuthenticator.from_csv(token_file(tmp_path, "tok,alice\n"))


async def test_union_authenticator_anonymous_and_invalid(tmp_path: Path) -> None:
    tokens = StaticTokenAuthenticator.from_csv(token_file(tmp_path, "tok-a,alice,1\n"))
    union = UnionAuthenticator([BearerTokenAuthenticator([tokens])])
    alice = await union.authenticate(request(Authorization="Bearer tok-a"))
    assert alice == UserInfo("alice", uid="1", groups=("system:authenticated",))
    assert await union.authenticate(request()) == ANONYMOUS
    assert await union.authenticate(request(Authorization="Basic abc")) == ANONYMOUS
    with pytest.raises(AuthenticationError, match="invalid bearer token"):
        await union.authenticate(request(Authorization="Bearer wrong"))
    strict = UnionAuthenticator([BearerTokenAuthenticator([tokens])], anonymous=False)
    with pytest.raises(AuthenticationError):
        await strict.authenticate(request())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
SPEC_KEYS = ["user", "group", "readonly", "apiGroup", "resource", "namespace", "nonResourcePath"]


@given(st.one_of(JSON, st.dictionaries(st.sampled_from(SPEC_KEYS), JSON)), st.booleans())
def test_any_policy_line_parses_or_is_a_value_error(value: object, versioned: bool) -> None:
    if versioned:
        value = {
            "apiVersion": "abac.authorization.kubernetes.io/v1beta1",
            "kind": "Policy",
            "spec": value,
        }
    try:
        policy = ABACPolicy.from_json(json.dumps(value))
    except ValueError:
        return
    assert all(isinstance(getattr(policy, f), str) for f in ("user", "group", "resource"))
    assert isinstance(policy.readonly, bool)


@given(st.text(max_size=40))
def test_any_text_line_parses_or_is_a_value_error(text: str) -> None:
    try:
        ABACPolicy.from_json(text)
    except ValueError:
        pass


def load_tokens(text: str) -> StaticTokenAuthenticator:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "tokens.csv")
        path.write_text(text, newline="")
        return StaticTokenAuthenticator.from_csv(path)


CELL = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=6
)


@given(
    st.lists(
        st.tuples(
            CELL, CELL, CELL, st.lists(CELL.filter(lambda c: "," not in c), min_size=1, max_size=3)
        ),
        max_size=5,
    )
)
async def test_token_csv_round_trips(rows: list[tuple[str, str, str, list[str]]]) -> None:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    expected: dict[str, UserInfo] = {}
    for token, name, uid, groups in rows:
        writer.writerow([token, name, uid, ",".join(groups)])
        if token:
            expected[token] = UserInfo(name, uid=uid, groups=tuple(",".join(groups).split(",")))
    tokens = load_tokens(buffer.getvalue())
    for token, user in expected.items():
        assert await tokens.authenticate_token(token) == user
