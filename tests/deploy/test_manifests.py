"""deploy/aggregated and the Dockerfile: every document parses, and the pieces line up.

The manifests cannot be applied here (no cluster) and the image cannot be built
(no registry, no container runtime); these tests check what can be checked
without them: kinds and apiVersions, the flags against ``k8swatch serve
--help``, selectors, ports, probes, mounts, RBAC subjects, and the output of
``kubectl kustomize`` (offline) with stand-in certificate files.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from k8swatch.coder import (
    GROUP,
    StaticClientProvider,
    TemplateStorage,
    WorkspaceStorage,
    build_resource_specs,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "aggregated"
KUBECTL = Path(
    shutil.which("kubectl", path=str(Path(sys.executable).parent))
    or shutil.which("kubectl")
    or "kubectl"
)


def _served_version() -> str:
    """The version the Coder adapters serve, from the specs `k8swatch serve` builds."""
    provider = StaticClientProvider("", "", "")
    specs = build_resource_specs(TemplateStorage(provider), WorkspaceStorage(provider))
    (version,) = {spec.version for spec in specs}
    assert {spec.group for spec in specs} == {GROUP}
    return version


VERSION = _served_version()

# What each kind's apiVersion must be.
API_VERSIONS = {
    "Namespace": "v1",
    "ServiceAccount": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "ClusterRole": "rbac.authorization.k8s.io/v1",
    "ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
    "APIService": "apiregistration.k8s.io/v1",
}

# The flags issue 19 names for TLS, authentication and authorization (built on
# another branch); a flag in the Deployment must be one of these or one that
# `k8swatch serve --help` lists.
ISSUE_FLAGS = frozenset(
    {
        "--tls-cert-file",
        "--tls-private-key-file",
        "--write-kubeconfig",
        "--client-ca-file",
        "--requestheader-client-ca-file",
        "--requestheader-allowed-names",
        "--requestheader-username-headers",
        "--requestheader-group-headers",
        "--requestheader-extra-headers-prefix",
        "--token-auth-file",
        "--authentication-kubeconfig",
        "--authorization-kubeconfig",
        "--authorization-mode",
        "--authorization-policy-file",
        "--anonymous-auth",
    }
)

# The files kustomization.yaml turns into a ConfigMap and Secrets.
GENERATED_FROM = ("front-proxy-ca.crt", "tls.crt", "tls.key", "ca.crt", "coder-token")


def documents(directory: Path = DEPLOY) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict), f"{path.name}: a document is not a mapping"
            docs.append(doc)
    return docs


def one(docs: list[dict[str, Any]], kind: str, name: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (not name or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name}"
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (c,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = c
    return result


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return documents()


@pytest.fixture(scope="module")
def serve_flags() -> frozenset[str]:
    """The flags ``k8swatch serve --help`` lists."""
    help_text = subprocess.run(
        [sys.executable, "-m", "k8swatch.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return frozenset(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", help_text))


def test_every_document_has_a_known_kind_and_api_version(docs: list[dict[str, Any]]) -> None:
    assert docs
    for doc in docs:
        assert doc["kind"] in API_VERSIONS, doc["kind"]
        assert doc["apiVersion"] == API_VERSIONS[doc["kind"]], doc["kind"]
        assert doc["metadata"]["name"]
    kinds = {d["kind"] for d in docs}
    assert kinds >= {
        "APIService",
        "Service",
        "Deployment",
        "ServiceAccount",
        "ClusterRoleBinding",
        "RoleBinding",
    }


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_the_apiservice_names_the_coder_group_version_and_the_service(
    docs: list[dict[str, Any]],
) -> None:
    api = one(docs, "APIService")
    spec = api["spec"]
    assert (spec["group"], spec["version"]) == (GROUP, VERSION)
    assert api["metadata"]["name"] == f"{VERSION}.{GROUP}"
    assert "insecureSkipTLSVerify" not in spec
    service = one(docs, "Service", spec["service"]["name"])
    assert service["metadata"]["namespace"] == spec["service"]["namespace"]
    ports = {p["port"]: p for p in service["spec"]["ports"]}
    assert spec["service"]["port"] in ports


def test_service_and_deployment_selectors_match_the_pods(docs: list[dict[str, Any]]) -> None:
    deployment = one(docs, "Deployment")
    service = one(docs, "Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    match = deployment["spec"]["selector"]["matchLabels"]
    assert match.items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    # the Service's targetPort is a named port of the container
    c = container(docs)
    named = {p["name"]: p["containerPort"] for p in c["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in named
    # and the server listens on it
    args = flag_values(c["args"])
    assert int(args["--port"]) == named["https"]


def flag_values(args: list[str]) -> dict[str, str]:
    assert args[0] == "serve"
    out: dict[str, str] = {}
    for arg in args[1:]:
        assert arg.startswith("--"), f"{arg!r}: write flags as --name=value"
        name, _, value = arg.partition("=")
        out[name] = value
    return out


def test_every_flag_is_known(docs: list[dict[str, Any]], serve_flags: frozenset[str]) -> None:
    assert "--coder-url" in serve_flags  # the help was read
    args = flag_values(container(docs)["args"])
    unknown = set(args) - serve_flags - ISSUE_FLAGS
    assert not unknown, f"flags neither `k8swatch serve --help` nor issue 19 knows: {unknown}"
    assert args["--host"] == "0.0.0.0"
    assert set(args["--authorization-mode"].split(",")) <= {"AlwaysAllow", "ABAC", "Webhook"}
    # front-proxy authentication and delegated authentication/authorization
    for flag in (
        "--tls-cert-file",
        "--tls-private-key-file",
        "--requestheader-client-ca-file",
        "--authentication-kubeconfig",
        "--authorization-kubeconfig",
    ):
        assert args[flag], flag


def test_file_flags_point_into_mounted_volumes(docs: list[dict[str, Any]]) -> None:
    c = container(docs)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert set(mounts.values()) <= set(volumes)
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    generated = {g["name"]: g for g in kustomization["configMapGenerator"]} | {
        g["name"]: g for g in kustomization["secretGenerator"]
    }
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    for flag, value in flag_values(c["args"]).items():
        if not value.startswith("/etc/"):
            continue
        directory, _, filename = value.rpartition("/")
        assert directory in mounts, f"{flag}={value} is in no mounted volume"
        volume = volumes[mounts[directory]]
        if "configMap" in volume:
            name = volume["configMap"]["name"]
            if name in configmaps:
                keys = set(configmaps[name]["data"])
            else:
                keys = {f.partition("=")[0] for f in generated[name]["files"]}
        else:
            name = volume["secret"]["secretName"]
            keys = {f.partition("=")[0] for f in generated[name]["files"]}
        assert filename in keys, f"{flag}={value}: {name} has no key {filename}"
    # the session token comes from the generated Secret
    (env,) = [e for e in c["env"] if e["name"] == "CODER_SESSION_TOKEN"]
    ref = env["valueFrom"]["secretKeyRef"]
    assert ref["key"] in {f.partition("=")[0] for f in generated[ref["name"]]["files"]}


def test_the_kubeconfig_is_in_cluster_and_uses_the_service_account(
    docs: list[dict[str, Any]],
) -> None:
    config = yaml.safe_load(one(docs, "ConfigMap", "k8swatch-kubeconfig")["data"]["kubeconfig"])
    (cluster,) = config["clusters"]
    assert cluster["cluster"]["server"] == "https://kubernetes.default.svc"
    (user,) = config["users"]
    assert user["user"]["tokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert config["current-context"] == config["contexts"][0]["name"]


def test_probes_use_livez_and_readyz_on_the_https_port(docs: list[dict[str, Any]]) -> None:
    c = container(docs)
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["startupProbe"]["httpGet"]["path"] == "/livez"
    ports = {p["name"] for p in c["ports"]}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["scheme"] == "HTTPS"
        assert c[probe]["httpGet"]["port"] in ports
    # longer than the server's own readiness-check timeout (4 s)
    assert c["readinessProbe"]["timeoutSeconds"] >= 5


def test_rbac_binds_the_delegation_roles_to_the_service_account(
    docs: list[dict[str, Any]],
) -> None:
    deployment = one(docs, "Deployment")
    sa = one(docs, "ServiceAccount")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    subject = {
        "kind": "ServiceAccount",
        "name": sa["metadata"]["name"],
        "namespace": sa["metadata"]["namespace"],
    }
    delegator = one(docs, "ClusterRoleBinding")
    assert delegator["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "system:auth-delegator",
    }
    assert delegator["subjects"] == [subject]
    reader = one(docs, "RoleBinding")
    assert reader["metadata"]["namespace"] == "kube-system"
    assert reader["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "extension-apiserver-authentication-reader",
    }
    assert reader["subjects"] == [subject]
    namespace = one(docs, "Namespace")["metadata"]["name"]
    for doc in docs:
        if doc["kind"] in ("ServiceAccount", "Service", "Deployment", "ConfigMap"):
            assert doc["metadata"]["namespace"] == namespace, doc["metadata"]["name"]
    # the Coder resources in the aggregated view/edit roles
    for role in (
        d for d in docs if d["kind"] == "ClusterRole" and "coder" in d["metadata"]["name"]
    ):
        for rule in role["rules"]:
            assert rule["apiGroups"] == [GROUP]
            assert set(rule["resources"]) == {"coderworkspaces", "codertemplates"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], bytes]:
    """``kubectl kustomize`` of a copy of deploy/aggregated with stand-in files."""
    work = tmp_path_factory.mktemp("kustomize")
    for path in DEPLOY.glob("*.yaml"):
        shutil.copy(path, work / path.name)
    ca = b"-----BEGIN CERTIFICATE-----\nc3RhbmQtaW4gQ0E=\n-----END CERTIFICATE-----\n"
    for name in GENERATED_FROM:
        (work / name).write_bytes(ca if name == "ca.crt" else f"stand-in {name}\n".encode())
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(work)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"HOME": str(work), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d], ca


def test_kustomize_builds_and_wires_the_generated_objects(
    built: tuple[list[dict[str, Any]], bytes],
) -> None:
    docs, ca = built
    for doc in docs:
        assert doc["apiVersion"] == API_VERSIONS[doc["kind"]]
    api = one(docs, "APIService")
    assert base64.b64decode(api["spec"]["caBundle"]) == ca
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    names = {d["metadata"]["name"] for d in docs if d["kind"] in ("ConfigMap", "Secret")}
    for volume in pod["volumes"]:
        ref = volume.get("configMap", {}).get("name") or volume.get("secret", {}).get("secretName")
        if ref:
            assert ref in names, ref
    (c,) = pod["containers"]
    (env,) = c["env"]
    assert env["valueFrom"]["secretKeyRef"]["name"] in names
    secret = next(
        d
        for d in docs
        if d["kind"] == "Secret" and d["metadata"]["name"].startswith("k8swatch-serving")
    )
    assert secret["type"] == "kubernetes.io/tls"
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}


def test_generated_inputs_are_git_ignored() -> None:
    ignored = (DEPLOY / ".gitignore").read_text().split()
    for name in GENERATED_FROM:
        assert any(Path(name).match(pattern) for pattern in ignored), name


def test_dockerfile_runs_k8swatch_as_the_deployments_user(docs: list[dict[str, Any]]) -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["k8swatch"\]$', text, re.MULTILINE)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert re.search(rf"^USER {pod['securityContext']['runAsUser']}:", text, re.MULTILINE)
    (expose,) = re.findall(r"^EXPOSE (\d+)$", text, re.MULTILINE)
    assert int(expose) == container(docs)["ports"][0]["containerPort"]
    # the extras the Deployment's flags need: serve (uvicorn, httpx, metrics) and redis
    assert "[serve,redis" in text
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") :] == [
        "*",
        "!pyproject.toml",
        "!README.md",
        "!src/",
        "**/__pycache__",
    ]
