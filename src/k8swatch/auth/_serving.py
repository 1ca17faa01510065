"""A self-signed serving certificate, as k8s.io/apiserver makes one when given none."""

from __future__ import annotations

import datetime
import ipaddress
import time
from collections.abc import Iterable

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["SelfSignedCertificate", "generate_self_signed_certificate"]


@attrs.frozen
class SelfSignedCertificate:
    """A serving certificate and key (PEM), and the CA that signed it (PEM).

    Clients trust *ca_pem* (a kubeconfig's ``certificate-authority-data``).
    With a client name, *client_cert_pem* and *client_key_pem* are a client
    certificate from the same CA (empty otherwise).
    """

    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes
    client_cert_pem: bytes = b""
    client_key_pem: bytes = b""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def generate_self_signed_certificate(
    hosts: Iterable[str],
    *,
    valid_days: int = 365,
    client_name: str = "",
    client_groups: Iterable[str] = (),
) -> SelfSignedCertificate:
    """A new CA (``<host>-ca@<time>``) and a serving certificate it signs for *hosts*.

    Each host is an IP address or a DNS name (its subject alternative
    names); ``localhost``, ``127.0.0.1`` and ``::1`` are always included. With
    *client_name*, the CA also signs a client certificate (CN *client_name*,
    O *client_groups*), e.g. for the kubeconfig written next to the server.
    Keys are ECDSA P-256; nothing is written to disk.
    """
    hosts = list(dict.fromkeys([*hosts, "localhost", "127.0.0.1", "::1"]))
    first = hosts[0]
    stamp = int(time.time())
    now = datetime.datetime.now(datetime.timezone.utc)
    start = now - datetime.timedelta(hours=1)
    end = now + datetime.timedelta(days=valid_days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{first}-ca@{stamp}")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{first}@{stamp}"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    client_cert = client_key = b""
    if client_name:
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, client_name)]
        subject += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in client_groups]
        ckey = ec.generate_private_key(ec.SECP256R1())
        client = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject))
            .issuer_name(ca_name)
            .public_key(ckey.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        client_cert = client.public_bytes(serialization.Encoding.PEM)
        client_key = _key_pem(ckey)
    return SelfSignedCertificate(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=_key_pem(key),
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
        client_cert_pem=client_cert,
        client_key_pem=client_key,
    )
