"""Client-certificate checks and the front-proxy headers, on certificates made here."""

from __future__ import annotations

import datetime

import pytest
import trustme

from k8swatch.auth import (
    CertificateAuthorities,
    RequestHeaderAuthenticator,
    X509Authenticator,
    generate_self_signed_certificate,
)
from k8swatch.server import AuthenticationError, ClientRequest, UserInfo

from .conftest import user_cert


def request(cert: trustme.LeafCert | None, *headers: tuple[str, str]) -> ClientRequest:
    chain = (cert.cert_chain_pems[0].bytes().decode(),) if cert is not None else ()
    return ClientRequest("GET", "/apis", tuple((k.lower(), v) for k, v in headers), chain)


def authorities(ca: trustme.CA) -> CertificateAuthorities:
    return CertificateAuthorities.from_pem(ca.cert_pem.bytes())


async def test_x509_users(client_ca: trustme.CA, proxy_ca: trustme.CA) -> None:
    x509 = X509Authenticator(authorities(client_ca))
    assert await x509.authenticate(request(user_cert(client_ca, "ivan", "ops"))) == UserInfo(
        "ivan", groups=("ops",)
    )
    assert await x509.authenticate(request(None)) is None
    with pytest.raises(AuthenticationError, match="signed by unknown authority"):
        await x509.authenticate(request(user_cert(proxy_ca, "ivan")))
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    expired = client_ca.issue_cert(
        "old.test", common_name="old", not_before=past, not_after=past + datetime.timedelta(days=1)
    )
    with pytest.raises(AuthenticationError, match="expired"):
        await x509.authenticate(request(expired))


async def test_a_serving_certificate_is_no_client_certificate() -> None:
    generated = generate_self_signed_certificate(
        ["example.test"], client_name="kim", client_groups=["g"]
    )
    x509 = X509Authenticator(CertificateAuthorities.from_pem(generated.ca_pem))
    serving = ClientRequest("GET", "/", (), (generated.cert_pem.decode(),))
    with pytest.raises(AuthenticationError, match="incompatible key usage"):
        await x509.authenticate(serving)
    client = ClientRequest("GET", "/", (), (generated.client_cert_pem.decode(),))
    assert await x509.authenticate(client) == UserInfo("kim", groups=("g",))


async def test_request_headers(proxy_ca: trustme.CA, client_ca: trustme.CA) -> None:
    headers = RequestHeaderAuthenticator(
        authorities(proxy_ca),
        allowed_names=["front-proxy"],
        username_headers=["X-Remote-User", "X-Other-User"],
    )
    proxy = user_cert(proxy_ca, "front-proxy")
    user = await headers.authenticate(
        request(
            proxy,
            ("X-Other-User", "judy"),
            ("X-Remote-Group", "a"),
            ("X-Remote-Group", "b,c"),
            ("X-Remote-Group", ""),
            ("X-Remote-Extra-Scopes", "s1"),
            ("X-Remote-Extra-Scopes", "s2"),
            ("X-Remote-Extra-Example.com%2FTEAM", "blue"),
        )
    )
    assert user == UserInfo(
        "judy",
        groups=("a", "b,c"),
        extra={"scopes": ("s1", "s2"), "example.com/team": ("blue",)},
    )
    assert await headers.authenticate(request(proxy)) is None, "the proxy itself is nobody"
    assert await headers.authenticate(request(None, ("X-Remote-User", "judy"))) is None
    with pytest.raises(AuthenticationError, match="cn=other is not in the allowed list"):
        await headers.authenticate(request(user_cert(proxy_ca, "other"), ("X-Remote-User", "j")))
    with pytest.raises(AuthenticationError, match="unknown authority"):
        await headers.authenticate(
            request(user_cert(client_ca, "front-proxy"), ("X-Remote-User", "j"))
        )
