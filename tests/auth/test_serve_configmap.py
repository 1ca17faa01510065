"""``k8swatch serve --authentication-kubeconfig`` reads the cluster's front-proxy settings.

The cluster is ``ReviewServer``: it serves
``kube-system/extension-apiserver-authentication`` (or refuses to) and
answers SubjectAccessReview, so the user the front proxy names is seen in
the reviews.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
import yaml

from tests.coder.test_cli import Served

from .conftest import TLSServer, kubeconfig_for, user_cert
from .test_delegated import REVIEWER_TOKEN, ReviewServer
from .test_serve_tls import TEMPLATES, env_for


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ReviewServer, Path]]:
    tmp = tmp_path_factory.mktemp("cluster")
    ca = trustme.CA(organization_name="k8swatch tests cluster CA")
    reviews = ReviewServer()
    with TLSServer(reviews, ca.issue_cert("127.0.0.1"), tmp) as url:
        yield reviews, kubeconfig_for(tmp / "cluster.kubeconfig", url, ca, token=REVIEWER_TOKEN)


def serve(tmp: Path, kubeconfig: Path) -> Served:
    return Served(
        [
            "serve",
            "--port=0",
            "--fake-build-mode=instant",
            f"--write-kubeconfig={tmp / 'k8swatch.kubeconfig'}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
        ],
        env_for(tmp),
    )


def trust_written_ca(tmp: Path) -> ssl.SSLContext:
    config = yaml.safe_load((tmp / "k8swatch.kubeconfig").read_text())
    ca = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    return ssl.create_default_context(cadata=ca.decode())


def test_the_front_proxy_ca_and_headers_come_from_the_configmap(
    cluster: tuple[ReviewServer, Path], proxy_ca: trustme.CA, tmp_path: Path
) -> None:
    reviews, kubeconfig = cluster
    reviews.configmap = (
        200,
        {
            "requestheader-client-ca-file": proxy_ca.cert_pem.bytes().decode(),
            "requestheader-allowed-names": json.dumps(["front-proxy"]),
            "requestheader-username-headers": json.dumps(["X-Proxy-User"]),
            "requestheader-group-headers": json.dumps(["X-Proxy-Group"]),
            "requestheader-extra-headers-prefix": json.dumps(["X-Proxy-Extra-"]),
        },
    )
    served = serve(tmp_path, kubeconfig)
    try:
        assert served.value("URL: ").startswith("https://")  # a client CA: TLS, self-signed
        assert any(
            "extension-apiserver-authentication: X-Proxy-User" in line for line in served.lines
        )
        context = trust_written_ca(tmp_path)
        user_cert(proxy_ca, "front-proxy").configure_cert(context)
        with httpx.Client(base_url=served.value("URL: "), verify=context, timeout=30) as proxy:
            response = proxy.get(
                TEMPLATES,
                headers={
                    "X-Proxy-User": "heidi",
                    "X-Proxy-Group": "devs",
                    "X-Proxy-Extra-Scopes": "s1",
                },
            )
        assert response.status_code == 403  # the review server allows devs widgets only
        assert 'User "heidi" cannot list resource "codertemplates"' in response.json()["message"]
        spec = reviews.access_reviews[-1]["spec"]
        assert (spec["user"], spec["groups"], spec["extra"]) == (
            "heidi",
            ["devs", "system:authenticated"],
            {"scopes": ["s1"]},
        )
    finally:
        assert served.stop() == 0, "".join(served.lines)


@pytest.mark.parametrize("code", [403, 404])
def test_a_refused_configmap_means_the_flags(
    cluster: tuple[ReviewServer, Path], tmp_path: Path, code: int
) -> None:
    reviews, kubeconfig = cluster
    reviews.configmap = (code, {})
    served = serve(tmp_path, kubeconfig)
    try:
        assert served.value("URL: ").startswith("http://127.0.0.1:")  # loopback, no client CA
        assert any(f"answered HTTP {code}; using the flags" in line for line in served.lines)
        response = httpx.get(f"{served.value('URL: ')}/healthz", timeout=10)
        assert response.text == "ok"
    finally:
        assert served.stop() == 0, "".join(served.lines)
