"""Real TLS for the auth tests: CAs and certificates made here (trustme), servers on 127.0.0.1.

- ``TLSServer``: an ASGI app served by uvicorn over TLS in a thread, with the
  CLI's protocol hook that hands the client certificate to the app;
- ``client_context``: an ``ssl.SSLContext`` trusting the serving CA and, when
  asked, presenting a client certificate;
- ``kubeconfig_for``: a kubeconfig with the CA and a client certificate or a token.
"""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.kubectl.conftest import ThreadedServer


class TLSServer(ThreadedServer):
    """*app* served by uvicorn over TLS on 127.0.0.1 (a free port) in a thread.

    Client certificates are asked for (not required) and verified against
    *client_cas*; the app reads them from the ASGI TLS extension.
    """

    def __init__(
        self,
        app: Any,
        serving: trustme.LeafCert,
        tmp: Path,
        client_cas: tuple[trustme.CA, ...] = (),
    ) -> None:
        from k8swatch._cli_uvicorn import ServeTimeouts, _protocol_class

        cert = tmp / "serving.pem"
        serving.private_key_and_cert_chain_pem.write_to_path(str(cert))
        options: dict[str, Any] = {
            "ssl_certfile": str(cert),
            # what k8swatch serve runs: its timeouts and the ASGI TLS extension
            "http": _protocol_class(ServeTimeouts(), tls=True),
        }
        if client_cas:
            bundle = tmp / "client-cas.pem"
            bundle.write_bytes(b"".join(ca.cert_pem.bytes() for ca in client_cas))
            options["ssl_ca_certs"] = str(bundle)
            options["ssl_cert_reqs"] = ssl.CERT_OPTIONAL
        super().__init__(app, scheme="https", lifespan="on", **options)


def client_context(server_ca: trustme.CA, cert: trustme.LeafCert | None = None) -> ssl.SSLContext:
    """Trusts *server_ca*; presents *cert* when given."""
    context = ssl.create_default_context()
    server_ca.configure_trust(context)
    if cert is not None:
        cert.configure_cert(context)
    return context


def kubeconfig_for(
    path: Path,
    server: str,
    server_ca: trustme.CA,
    *,
    cert: trustme.LeafCert | None = None,
    token: str = "",
    namespace: str = "default",
) -> Path:
    """Write a kubeconfig for *server* with a client certificate or a token."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    if cert is not None:
        chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
        user = (
            f"    client-certificate-data: {b64(chain)}\n"
            f"    client-key-data: {b64(cert.private_key_pem.bytes())}\n"
        )
    elif token:
        user = f"    token: {token}\n"
    else:
        user = "    {}\n"
    path.write_text(
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        "- name: c\n"
        "  cluster:\n"
        f"    server: {server}\n"
        f"    certificate-authority-data: {b64(server_ca.cert_pem.bytes())}\n"
        "contexts:\n"
        "- name: c\n"
        "  context:\n"
        "    cluster: c\n"
        "    user: u\n"
        f"    namespace: {namespace}\n"
        "current-context: c\n"
        "users:\n"
        "- name: u\n"
        "  user:\n"
        f"{user}"
    )
    return path


@pytest.fixture(scope="module")
def server_ca() -> trustme.CA:
    """The CA of the serving certificates."""
    return trustme.CA(organization_name="k8swatch tests serving CA")


@pytest.fixture(scope="module")
def client_ca() -> trustme.CA:
    """The CA of user client certificates (``--client-ca-file``)."""
    return trustme.CA(organization_name="k8swatch tests client CA")


@pytest.fixture(scope="module")
def proxy_ca() -> trustme.CA:
    """The front proxy's CA (``--requestheader-client-ca-file``)."""
    return trustme.CA(organization_name="k8swatch tests front-proxy CA")


@pytest.fixture(scope="module")
def serving_cert(server_ca: trustme.CA) -> trustme.LeafCert:
    """The serving certificate for 127.0.0.1 and localhost."""
    return server_ca.issue_cert("127.0.0.1", "localhost")


def user_cert(ca: trustme.CA, name: str, *groups: str) -> trustme.LeafCert:
    """A client certificate with CN *name* and O *groups* (trustme sets one O)."""
    return ca.issue_cert(
        f"{name}.users.test", common_name=name, organization_name=groups[0] if groups else None
    )
