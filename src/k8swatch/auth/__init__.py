"""Certificate-based and delegated authentication and authorization for ``create_app``.

The protocols and the plain implementations live in
[`k8swatch.server`][k8swatch.server]; these need the ``auth`` extra
(``cryptography``, ``httpx``, ``pyyaml``):

- [`X509Authenticator`][k8swatch.auth.X509Authenticator]: client certificates
  (``--client-ca-file``), CN is the user, O the groups;
- [`RequestHeaderAuthenticator`][k8swatch.auth.RequestHeaderAuthenticator]:
  users named by a front proxy such as kube-aggregator (``--requestheader-*``);
- [`TokenReviewAuthenticator`][k8swatch.auth.TokenReviewAuthenticator] and
  [`SubjectAccessReviewAuthorizer`][k8swatch.auth.SubjectAccessReviewAuthorizer]:
  delegated to a cluster reached through a
  [`ClusterConnection`][k8swatch.auth.ClusterConnection];
- [`generate_self_signed_certificate`][k8swatch.auth.generate_self_signed_certificate]:
  a serving certificate and its CA.
"""

from __future__ import annotations

from k8swatch._util import fix_module_metadata as _fix_module_metadata

from ._cluster import ClusterConnection as ClusterConnection
from ._serving import SelfSignedCertificate as SelfSignedCertificate
from ._serving import generate_self_signed_certificate as generate_self_signed_certificate
from ._webhook import SubjectAccessReviewAuthorizer as SubjectAccessReviewAuthorizer
from ._webhook import TokenReviewAuthenticator as TokenReviewAuthenticator
from ._x509 import CertificateAuthorities as CertificateAuthorities
from ._x509 import RequestHeaderAuthenticator as RequestHeaderAuthenticator
from ._x509 import X509Authenticator as X509Authenticator

__all__ = (
    "CertificateAuthorities",
    "ClusterConnection",
    "RequestHeaderAuthenticator",
    "SelfSignedCertificate",
    "SubjectAccessReviewAuthorizer",
    "TokenReviewAuthenticator",
    "X509Authenticator",
    "generate_self_signed_certificate",
)

_fix_module_metadata(__name__, globals())
