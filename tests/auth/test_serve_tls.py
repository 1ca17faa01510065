"""``k8swatch serve`` over real TLS: client certificates, a front proxy, tokens and ABAC.

One server for the module, started as a user starts it, with certificates
made by the tests (trustme): a serving certificate, users' client
certificates (``--client-ca-file``), a front proxy's certificate
(``--requestheader-client-ca-file``, CN ``front-proxy``), static tokens and an
ABAC policy in which bob may only read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests.coder.test_cli import Served

from .conftest import client_context, kubeconfig_for, user_cert

G = "aggregation.coder.com"
WS = f"/apis/{G}/v1alpha1/namespaces/default/coderworkspaces"
TEMPLATES = f"/apis/{G}/v1alpha1/namespaces/default/codertemplates"
KUBECTL = str(Path(sys.executable).parent / "kubectl")

POLICY = [
    {"group": "devs", "namespace": "*", "resource": "*", "apiGroup": "*"},
    {"group": "devs", "nonResourcePath": "*"},
    {"user": "bob", "namespace": "*", "resource": "*", "apiGroup": "*", "readonly": True},
    {"user": "carol", "namespace": "*", "resource": "codertemplates", "apiGroup": G},
    {"group": "system:authenticated", "nonResourcePath": "*", "readonly": True},
]
BOB_CREATE_403 = (
    f'coderworkspaces.{G} is forbidden: User "bob" cannot create resource "coderworkspaces" '
    f'in API group "{G}" in the namespace "default": No policy matched.'
)
MANIFEST = json.dumps(
    {
        "apiVersion": f"{G}/v1alpha1",
        "kind": "CoderWorkspace",
        "metadata": {"name": "acme.alice.tls"},
        "spec": {"organization": "acme", "templateName": "starter-template", "running": False},
    }
)


def env_for(tmp: Path) -> dict[str, str]:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ)
    env["HOME"] = str(home)
    env.pop("KUBECONFIG", None)
    env.pop("CODER_SESSION_TOKEN", None)
    return env


class Setup:
    def __init__(self, url: str, tmp: Path, server_ca: trustme.CA, env: dict[str, str]) -> None:
        self.url = url
        self.tmp = tmp
        self.server_ca = server_ca
        self.env = env

    def client(self, cert: trustme.LeafCert | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, verify=client_context(self.server_ca, cert), timeout=30
        )

    def kubectl(
        self, kubeconfig: Path, *args: str, stdin: str = ""
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=False,
        )


@pytest.fixture(scope="module")
def certs(client_ca: trustme.CA, proxy_ca: trustme.CA) -> dict[str, trustme.LeafCert]:
    return {
        "alice": user_cert(client_ca, "alice", "devs"),
        "proxy": user_cert(proxy_ca, "front-proxy"),
        "intruder": user_cert(proxy_ca, "intruder"),
    }


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
    server_ca: trustme.CA,
    serving_cert: trustme.LeafCert,
    client_ca: trustme.CA,
    proxy_ca: trustme.CA,
) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("serve-tls")
    cert, key = tmp / "tls.crt", tmp / "tls.key"
    serving_cert.cert_chain_pems[0].write_to_path(str(cert))
    serving_cert.private_key_pem.write_to_path(str(key))
    client_ca.cert_pem.write_to_path(str(tmp / "client-ca.crt"))
    proxy_ca.cert_pem.write_to_path(str(tmp / "proxy-ca.crt"))
    (tmp / "tokens.csv").write_text('bob-token,bob,1001,"readers"\n')
    (tmp / "policy.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "apiVersion": "abac.authorization.kubernetes.io/v1beta1",
                    "kind": "Policy",
                    "spec": spec,
                }
            )
            + "\n"
            for spec in POLICY
        )
    )
    env = env_for(tmp)
    served = Served(
        [
            "serve",
            "--port=0",
            "--namespace=default",
            f"--write-kubeconfig={tmp / 'written.kubeconfig'}",
            "--fake-build-mode=instant",
            f"--tls-cert-file={cert}",
            f"--tls-private-key-file={key}",
            f"--client-ca-file={tmp / 'client-ca.crt'}",
            f"--requestheader-client-ca-file={tmp / 'proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy",
            f"--token-auth-file={tmp / 'tokens.csv'}",
            "--authorization-mode=ABAC",
            f"--authorization-policy-file={tmp / 'policy.jsonl'}",
        ],
        env,
    )
    try:
        yield Setup(served.value("URL: "), tmp, server_ca, env)
    finally:
        assert served.stop() == 0, "".join(served.lines)


def test_serves_https_only(setup: Setup) -> None:
    assert setup.url.startswith("https://127.0.0.1:")
    plain = setup.url.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{plain}/healthz", timeout=10)
    written = (setup.tmp / "written.kubeconfig").read_text()
    assert f"server: {setup.url}\n" in written


@pytest.mark.kubectl
def test_kubectl_with_a_client_certificate(
    setup: Setup, certs: dict[str, trustme.LeafCert]
) -> None:
    kubeconfig = kubeconfig_for(
        setup.tmp / "alice.kubeconfig", setup.url, setup.server_ca, cert=certs["alice"]
    )
    listed = setup.kubectl(kubeconfig, "get", "coderworkspaces", "-o", "name")
    assert listed.returncode == 0, listed.stderr
    assert "coderworkspace.aggregation.coder.com/acme.alice.dev-workspace" in listed.stdout.split()
    created = setup.kubectl(kubeconfig, "create", "-f", "-", stdin=MANIFEST)
    assert created.returncode == 0, created.stderr
    deleted = setup.kubectl(kubeconfig, "delete", "coderworkspace", "acme.alice.tls")
    assert deleted.returncode == 0, deleted.stderr


@pytest.mark.kubectl
def test_a_read_only_token_user_gets_the_apiservers_403(setup: Setup) -> None:
    kubeconfig = kubeconfig_for(
        setup.tmp / "bob.kubeconfig", setup.url, setup.server_ca, token="bob-token"
    )
    listed = setup.kubectl(kubeconfig, "get", "coderworkspaces", "-o", "name")
    assert listed.returncode == 0, listed.stderr
    created = setup.kubectl(kubeconfig, "create", "-f", "-", stdin=MANIFEST)
    assert created.returncode == 1
    assert f'Error from server (Forbidden): error when creating "STDIN": {BOB_CREATE_403}' in (
        created.stderr
    )
    with setup.client() as client:
        response = client.post(WS, content=MANIFEST, headers={"Authorization": "Bearer bob-token"})
    assert response.status_code == 403
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": BOB_CREATE_403,
        "reason": "Forbidden",
        "details": {"group": G, "kind": "coderworkspaces"},
        "code": 403,
    }


def test_an_invalid_token_is_401(setup: Setup) -> None:
    with setup.client() as client:
        response = client.get(WS, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_anonymous_requests_are_judged_by_authorization(setup: Setup) -> None:
    with setup.client() as client:
        for path in ("/healthz", "/livez", "/readyz"):
            health = client.get(path)
            assert (health.status_code, health.text) == (200, "ok"), path
        apis = client.get("/apis")
        assert apis.status_code == 403
        assert apis.json()["message"] == (
            'forbidden: User "system:anonymous" cannot get path "/apis": No policy matched.'
        )
        metrics = client.get("/metrics")  # an ordinary non-resource path
        assert metrics.status_code == 403
        assert 'cannot get path "/metrics"' in metrics.json()["message"]
        watch = client.get(WS, params={"watch": "1"})
        assert watch.status_code == 403
        assert watch.json()["message"].startswith(
            f'coderworkspaces.{G} is forbidden: User "system:anonymous" cannot watch resource'
        )


def test_the_front_proxy_names_the_user(setup: Setup, certs: dict[str, trustme.LeafCert]) -> None:
    headers = {"X-Remote-User": "carol", "X-Remote-Group": "viewers"}
    with setup.client(certs["proxy"]) as proxy:
        templates = proxy.get(TEMPLATES, headers=headers)
        assert templates.status_code == 200, templates.text
        assert templates.json()["kind"] == "CoderTemplateList"
        workspaces = proxy.get(WS, headers=headers)
        assert workspaces.status_code == 403
        assert 'User "carol" cannot list resource "coderworkspaces"' in workspaces.json()["message"]
        # the proxy's certificate alone is nobody
        alone = proxy.get(TEMPLATES)
        assert alone.status_code == 401


def test_request_headers_from_anyone_else_are_ignored(
    setup: Setup, certs: dict[str, trustme.LeafCert]
) -> None:
    headers = {"X-Remote-User": "carol", "X-Remote-Group": "devs"}
    with setup.client() as anonymous:
        response = anonymous.get(TEMPLATES, headers=headers)
        assert response.status_code == 403
        assert 'User "system:anonymous"' in response.json()["message"]
        as_bob = anonymous.post(
            WS, content=MANIFEST, headers={**headers, "Authorization": "Bearer bob-token"}
        )
        assert as_bob.status_code == 403
        assert as_bob.json()["message"] == BOB_CREATE_403
    with setup.client(certs["alice"]) as alice:
        # alice's own certificate: she is alice (in devs), whatever the headers say
        response = alice.get(WS, headers={"X-Remote-User": "mallory"})
        assert response.status_code == 200
    with setup.client(certs["intruder"]) as intruder:
        # the proxy CA's certificate, but a CN not in --requestheader-allowed-names
        response = intruder.get(TEMPLATES, headers=headers)
        assert response.status_code == 401
