"""Client-certificate authentication: x509 users and front-proxy request headers."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from k8swatch.server import AuthenticationError, ClientRequest, UserInfo

__all__ = ["CertificateAuthorities", "RequestHeaderAuthenticator", "X509Authenticator"]


class CertificateAuthorities:
    """The CA certificates of one PEM bundle (``--client-ca-file``, ...).

    The TLS layer verifies a client's chain against every CA it trusts;
    this tells which bundle issued a client certificate, so that one CA's
    certificates are users and another's are front proxies.
    """

    def __init__(self, certificates: Iterable[x509.Certificate]) -> None:
        self.certificates: tuple[x509.Certificate, ...] = tuple(certificates)
        if not self.certificates:
            raise ValueError("no CA certificate")

    @classmethod
    def from_pem(cls, data: bytes) -> CertificateAuthorities:
        """Read a PEM bundle.

        Raises:
            ValueError: no certificate in *data*, or a malformed one.
        """
        return cls(x509.load_pem_x509_certificates(data))

    @classmethod
    def from_file(cls, path: str | Path) -> CertificateAuthorities:
        """Read a PEM bundle file (raises ``OSError``, ``ValueError``)."""
        try:
            return cls.from_pem(Path(path).read_bytes())
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    def verify(self, chain: Sequence[str]) -> x509.Certificate:
        """Return the client certificate (first of *chain*, PEM) if one of these CAs issued it.

        The certificate must be issued directly by a CA in the bundle (put
        intermediate CAs in the bundle), be within its validity period and,
        when it has an extended key usage, allow client authentication.

        Raises:
            AuthenticationError: it does not verify.
        """
        try:
            leaf = x509.load_pem_x509_certificate(chain[0].encode("ascii"))
        except (ValueError, UnicodeEncodeError, IndexError) as exc:
            raise AuthenticationError(f"x509: unreadable client certificate: {exc}") from None
        now = datetime.datetime.now(datetime.timezone.utc)
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            raise AuthenticationError("x509: certificate has expired or is not yet valid")
        try:
            usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            pass
        else:
            if (
                ExtendedKeyUsageOID.CLIENT_AUTH not in usage
                and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in usage
            ):
                raise AuthenticationError("x509: certificate specifies an incompatible key usage")
        for ca in self.certificates:
            try:
                leaf.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue  # not this CA: try the next
            return leaf
        raise AuthenticationError("x509: certificate signed by unknown authority")


def _common_name(certificate: x509.Certificate) -> str:
    # Go's pkix.Name keeps the last CN of the subject.
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[-1].value if names else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _organizations(certificate: x509.Certificate) -> tuple[str, ...]:
    out: list[str] = []
    for attr in certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME):
        value = attr.value
        out.append(value if isinstance(value, str) else value.decode("utf-8", "replace"))
    return tuple(out)


class X509Authenticator:
    """Users from client certificates (``--client-ca-file``): CN is the user, O the groups."""

    def __init__(self, authorities: CertificateAuthorities) -> None:
        self.authorities = authorities

    async def authenticate(self, request: ClientRequest) -> UserInfo | None:
        """The certificate's user; ``None`` without a client certificate.

        Raises:
            AuthenticationError: the certificate is not from these CAs, or has no CN.
        """
        if not request.client_cert_chain:
            return None
        leaf = self.authorities.verify(request.client_cert_chain)
        name = _common_name(leaf)
        if not name:
            raise AuthenticationError("common name of user/client cert cannot be empty")
        return UserInfo(name, groups=_organizations(leaf))


class RequestHeaderAuthenticator:
    """Users a front proxy names in request headers (``--requestheader-*``).

    Only a client whose certificate verifies against *authorities* (the
    ``--requestheader-client-ca-file``) and whose CN is in *allowed_names*
    (any CN when empty) may name a user; the headers of anyone else are
    ignored (such a client gets an error here, and is then judged by the
    other authenticators). The certificate is never a user itself: without a
    user-name header there is no user.

    Args:
        authorities: The front proxy's CA.
        allowed_names: The allowed CNs of the proxy's client certificate.
        username_headers: Headers naming the user, the first non-empty wins.
        group_headers: Headers naming groups, every value of each one.
        extra_headers_prefixes: Prefixes of headers carrying extra
            attributes: ``X-Remote-Extra-Scopes: a`` gives ``scopes: [a]``
            (the key lower-cased, then %-decoded, as kube reads it).
    """

    def __init__(
        self,
        authorities: CertificateAuthorities,
        *,
        allowed_names: Iterable[str] = (),
        username_headers: Iterable[str] = ("X-Remote-User",),
        group_headers: Iterable[str] = ("X-Remote-Group",),
        extra_headers_prefixes: Iterable[str] = ("X-Remote-Extra-",),
    ) -> None:
        self.authorities = authorities
        self.allowed_names: frozenset[str] = frozenset(allowed_names)
        self.username_headers: tuple[str, ...] = tuple(h.lower() for h in username_headers)
        self.group_headers: tuple[str, ...] = tuple(h.lower() for h in group_headers)
        self.extra_headers_prefixes: tuple[str, ...] = tuple(
            p.lower() for p in extra_headers_prefixes
        )

    async def authenticate(self, request: ClientRequest) -> UserInfo | None:
        """The user the proxy names; ``None`` without a client certificate or user header.

        Raises:
            AuthenticationError: the client certificate is not the front proxy's.
        """
        if not request.client_cert_chain:
            return None
        leaf = self.authorities.verify(request.client_cert_chain)
        if self.allowed_names:
            name = _common_name(leaf)
            if name not in self.allowed_names:
                raise AuthenticationError(
                    f"x509: subject with cn={name} is not in the allowed list"
                )
        user = ""
        for header in self.username_headers:
            user = request.header(header)
            if user:
                break
        if not user:
            return None
        groups: list[str] = []
        for header in self.group_headers:
            groups.extend(request.header_values(header))
        extra: dict[str, list[str]] = {}
        for key, value in request.headers:
            for prefix in self.extra_headers_prefixes:
                if key.startswith(prefix) and len(key) > len(prefix):
                    # lower-cased, then %-decoded, in kube's order
                    extra.setdefault(unquote(key[len(prefix) :].lower()), []).append(value)
        return UserInfo(user, groups=groups, extra=extra)
