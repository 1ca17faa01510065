"""Delegated authentication and authorization against a review server speaking the real APIs.

``ReviewServer`` is a small HTTPS server in the tests that answers
``authentication.k8s.io/v1`` TokenReview and ``authorization.k8s.io/v1``
SubjectAccessReview as kube-apiserver does (and records what it was asked).
The app under test is ``create_app`` with
``TokenReviewAuthenticator`` and ``SubjectAccessReviewAuthorizer`` reaching it
through a kubeconfig, served over TLS by uvicorn; the storage records
``current_user()`` on every call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from k8swatch import ListOptions, MemoryStorage
from k8swatch.auth import (
    CertificateAuthorities,
    ClusterConnection,
    SubjectAccessReviewAuthorizer,
    TokenReviewAuthenticator,
    X509Authenticator,
)
from k8swatch.server import (
    AuthenticationError,
    BearerTokenAuthenticator,
    PathAuthorizer,
    ResourceSpec,
    UnionAuthenticator,
    UnionAuthorizer,
    UserInfo,
    create_app,
    current_user,
)

from .conftest import TLSServer, client_context, kubeconfig_for, user_cert

REVIEWER_TOKEN = "reviewer-secret"
CONFIGMAP = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
DANA = {"username": "dana", "uid": "42", "groups": ["devs"], "extra": {"scopes": ["read"]}}


class ReviewServer:
    """An ASGI app answering TokenReview and SubjectAccessReview."""

    def __init__(self) -> None:
        self.token_reviews: list[dict[str, Any]] = []
        self.access_reviews: list[dict[str, Any]] = []
        self.reviewer_tokens = {REVIEWER_TOKEN}
        # kube-system/extension-apiserver-authentication: (HTTP status, ConfigMap data)
        self.configmap: tuple[int, dict[str, str]] = (404, {})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        if headers.get(b"authorization") not in {
            f"Bearer {t}".encode() for t in self.reviewer_tokens
        }:
            await self._send(send, 401, {"kind": "Status", "code": 401, "reason": "Unauthorized"})
            return
        if scope["method"] == "GET" and scope["path"] == CONFIGMAP:
            code, data = self.configmap
            if code != 200:
                await self._send(send, code, {"kind": "Status", "code": code})
                return
            configmap = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "extension-apiserver-authentication",
                    "namespace": "kube-system",
                },
                "data": data,
            }
            await self._send(send, 200, configmap)
            return
        review = json.loads(body)
        if scope["path"] == "/apis/authentication.k8s.io/v1/tokenreviews":
            assert (review["apiVersion"], review["kind"]) == (
                "authentication.k8s.io/v1",
                "TokenReview",
            )
            self.token_reviews.append(review)
            token = review["spec"]["token"]
            if token == "boom":
                await self._send(send, 500, {"kind": "Status", "code": 500})
                return
            status: dict[str, Any] = {"authenticated": False, "error": "token not found"}
            if token == "dana-token":
                status = {
                    "authenticated": True,
                    "user": DANA,
                    "audiences": ["https://kubernetes.default.svc"],
                }
            await self._send(
                send, 201, {**review, "metadata": {"creationTimestamp": None}, "status": status}
            )
        elif scope["path"] == "/apis/authorization.k8s.io/v1/subjectaccessreviews":
            assert (review["apiVersion"], review["kind"]) == (
                "authorization.k8s.io/v1",
                "SubjectAccessReview",
            )
            self.access_reviews.append(review)
            spec = review["spec"]
            if spec.get("user") == "erratic":
                await self._send(send, 500, {"kind": "Status", "code": 500})
                return
            await self._send(
                send,
                201,
                {**review, "metadata": {"creationTimestamp": None}, "status": decide(spec)},
            )
        else:
            await self._send(send, 404, {"kind": "Status", "code": 404})

    @staticmethod
    async def _send(send: Any, code: int, document: Mapping[str, Any]) -> None:
        body = json.dumps(document).encode()
        await send(
            {
                "type": "http.response.start",
                "status": code,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def decide(spec: Mapping[str, Any]) -> dict[str, Any]:
    """dana (devs) may do anything to widgets but delete; authenticated users read discovery."""
    resource = spec.get("resourceAttributes")
    if resource is None:
        if "system:authenticated" in spec.get("groups", []):
            return {"allowed": True, "reason": "discovery is public"}
        return {"allowed": False}
    if "devs" in spec.get("groups", []) and resource.get("resource") == "widgets":
        if resource["verb"] in ("delete", "deletecollection"):
            return {"allowed": False, "denied": True, "reason": "deletes are reviewed by humans"}
        return {"allowed": True, "reason": "devs edit widgets"}
    return {"allowed": False, "reason": "no RBAC rule matched"}


class RecordingStorage:
    """MemoryStorage that records the user it serves on every call."""

    def __init__(self) -> None:
        self.inner = MemoryStorage("example.com/v1", "Widget", resource="widgets")
        self.users: list[tuple[str, UserInfo | None]] = []

    async def get(self, namespace: str, name: str) -> Any:
        self.users.append(("get", current_user()))
        return await self.inner.get(namespace, name)

    async def list(self, namespace: str, options: ListOptions) -> Any:
        self.users.append(("list", current_user()))
        return await self.inner.list(namespace, options)

    async def create(self, namespace: str, obj: Any) -> Any:
        self.users.append(("create", current_user()))
        return await self.inner.create(namespace, obj)

    async def delete(self, namespace: str, name: str) -> Any:
        self.users.append(("delete", current_user()))
        return await self.inner.delete(namespace, name)

    async def watch(self, namespace: str, options: ListOptions) -> Any:
        self.users.append(("watch", current_user()))
        return await self.inner.watch(namespace, options)


class World:
    def __init__(
        self, url: str, server_ca: trustme.CA, reviews: ReviewServer, storage: RecordingStorage
    ) -> None:
        self.cluster_url = ""
        self.cluster_ca = trustme.CA()  # replaced by the cluster's CA
        self.url = url
        self.server_ca = server_ca
        self.reviews = reviews
        self.storage = storage

    def client(self, cert: trustme.LeafCert | None = None, token: str = "") -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(
            base_url=self.url,
            verify=client_context(self.server_ca, cert),
            headers=headers,
            timeout=30,
        )


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    server_ca: trustme.CA,
    serving_cert: trustme.LeafCert,
    client_ca: trustme.CA,
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("delegated")
    review_ca = trustme.CA(organization_name="k8swatch tests cluster CA")
    reviews = ReviewServer()
    with TLSServer(reviews, review_ca.issue_cert("127.0.0.1"), tmp) as cluster_url:
        kubeconfig = kubeconfig_for(
            tmp / "cluster.kubeconfig", cluster_url, review_ca, token=REVIEWER_TOKEN
        )
        connection = ClusterConnection.from_kubeconfig(kubeconfig)
        storage = RecordingStorage()
        app = create_app(
            [ResourceSpec("example.com", "v1", "widgets", "Widget", storage)],
            authenticator=UnionAuthenticator(
                [
                    X509Authenticator(CertificateAuthorities.from_pem(client_ca.cert_pem.bytes())),
                    BearerTokenAuthenticator([TokenReviewAuthenticator(connection, cache_ttl=60)]),
                ]
            ),
            authorizer=UnionAuthorizer(
                [
                    PathAuthorizer(),
                    SubjectAccessReviewAuthorizer(connection, allowed_ttl=60, denied_ttl=60),
                ]
            ),
        )
        served_dir = tmp / "app"
        served_dir.mkdir()
        with TLSServer(app, serving_cert, served_dir, client_cas=(client_ca,)) as url:
            world = World(url, server_ca, reviews, storage)
            world.cluster_url, world.cluster_ca = cluster_url, review_ca
            yield world


def widget(name: str) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}}


def dana_spec(**resource: str) -> dict[str, Any]:
    return {
        "resourceAttributes": resource,
        "user": "dana",
        "groups": ["devs", "system:authenticated"],
        "extra": {"scopes": ["read"]},
        "uid": "42",
    }


async def test_a_reviewed_token_is_the_user_the_cluster_names(world: World) -> None:
    before = len(world.reviews.token_reviews)
    async with world.client(token="dana-token") as client:
        listed = await client.get(WIDGETS)
        assert listed.status_code == 200, listed.text
        again = await client.get(WIDGETS)
        assert again.status_code == 200
    reviews = world.reviews.token_reviews[before:]
    assert len(reviews) <= 1, "the answer is cached"
    if reviews:
        assert reviews[0] == {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": "dana-token"},
        }
    verb, user = world.storage.users[-1]
    assert verb == "list"
    assert user == UserInfo(
        "dana", uid="42", groups=("devs", "system:authenticated"), extra={"scopes": ("read",)}
    )


async def test_every_verb_is_reviewed_as_the_apiserver_names_it(
    world: World, anyio_backend: str
) -> None:
    name = f"w-{anyio_backend}"
    async with world.client(token="dana-token") as client:
        created = await client.post(WIDGETS, json=widget(name))
        assert created.status_code == 201, created.text
        assert world.storage.users[-1][0] == "create"
        assert world.storage.users[-1][1] is not None
        assert world.storage.users[-1][1].name == "dana"
        assert (await client.get(f"{WIDGETS}/{name}")).status_code == 200
        watch = await client.get(WIDGETS, params={"watch": "1", "timeoutSeconds": "1"})
        assert watch.status_code == 200
        deleted = await client.delete(f"{WIDGETS}/{name}")
        assert deleted.status_code == 403
        assert deleted.json()["message"] == (
            f'widgets.example.com "{name}" is forbidden: User "dana" cannot delete resource '
            '"widgets" in API group "example.com" in the namespace "default": '
            "deletes are reviewed by humans"
        )
        collection = await client.delete(WIDGETS)
        assert collection.status_code == 403
        assert 'cannot deletecollection resource "widgets"' in collection.json()["message"]
    asked = [review["spec"] for review in world.reviews.access_reviews]
    common = {
        "namespace": "default",
        "group": "example.com",
        "version": "v1",
        "resource": "widgets",
    }
    for spec in (
        dana_spec(**common, verb="create"),
        dana_spec(**common, verb="get", name=name),
        dana_spec(**common, verb="watch"),
        dana_spec(**common, verb="delete", name=name),
        dana_spec(**common, verb="deletecollection"),
    ):
        assert spec in asked, spec


async def test_non_resource_paths_and_always_allowed_health(world: World) -> None:
    async with world.client() as anonymous:
        assert (await anonymous.get("/healthz")).text == "ok"
        denied = await anonymous.get("/apis")
        assert denied.status_code == 403
        assert (
            denied.json()["message"] == 'forbidden: User "system:anonymous" cannot get path "/apis"'
        )
    assert {
        "nonResourceAttributes": {"path": "/apis", "verb": "get"},
        "user": "system:anonymous",
        "groups": ["system:unauthenticated"],
    } in [review["spec"] for review in world.reviews.access_reviews]
    assert not any(
        review["spec"].get("nonResourceAttributes", {}).get("path") == "/healthz"
        for review in world.reviews.access_reviews
    ), "always-allowed paths are not reviewed"
    async with world.client(token="dana-token") as dana:
        assert (await dana.get("/apis")).status_code == 200


async def test_client_certificates_and_webhooks_together(
    world: World, client_ca: trustme.CA
) -> None:
    async with world.client(cert=user_cert(client_ca, "frank", "devs")) as frank:
        listed = await frank.get(WIDGETS)
        assert listed.status_code == 200, listed.text
    assert world.storage.users[-1][1] == UserInfo("frank", groups=("devs", "system:authenticated"))
    async with world.client(cert=user_cert(client_ca, "grace", "ops")) as grace:
        denied = await grace.get(WIDGETS)
        assert denied.status_code == 403
        assert denied.json()["message"].endswith(": no RBAC rule matched")


async def test_unknown_and_unreviewable_tokens_are_401(world: World) -> None:
    for token in ("unknown-token", "boom"):
        async with world.client(token=token) as client:
            response = await client.get(WIDGETS)
        assert response.status_code == 401, token
        assert response.json()["message"] == "Unauthorized"


async def test_a_failed_access_review_is_a_500_without_internals(
    world: World, client_ca: trustme.CA
) -> None:
    async with world.client(cert=user_cert(client_ca, "erratic", "ops")) as erratic:
        response = await erratic.get(WIDGETS)
    assert response.status_code == 500
    body = response.json()
    assert body["reason"] == "InternalError"
    assert "error id" in body["message"]
    assert "127.0.0.1" not in body["message"]


async def test_a_token_file_is_read_again_when_rotated(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import k8swatch.auth._cluster

    monkeypatch.setattr(k8swatch.auth._cluster, "_TOKEN_FILE_PERIOD", 0.0)
    token_file = tmp_path / "token"
    token_file.write_text(REVIEWER_TOKEN + "\n")
    written = kubeconfig_for(
        tmp_path / "kubeconfig", world.cluster_url, world.cluster_ca, token="x"
    )
    text = written.read_text().replace("    token: x\n", f"    tokenFile: {token_file.name}\n")
    written.write_text(text)
    connection = ClusterConnection.from_kubeconfig(written)
    assert connection.token_file == str(token_file)
    review = TokenReviewAuthenticator(connection, cache_ttl=0)
    try:
        assert await review.authenticate_token("dana-token") is not None
        world.reviews.reviewer_tokens = {"rotated"}
        token_file.write_text("rotated\n")  # kubelet rotates the projected token in place
        assert await review.authenticate_token("dana-token") is not None
        world.reviews.reviewer_tokens = {"elsewhere"}
        with pytest.raises(AuthenticationError, match="HTTP 401"):
            await review.authenticate_token("dana-token")
    finally:
        world.reviews.reviewer_tokens = {REVIEWER_TOKEN}
        await review.aclose()
