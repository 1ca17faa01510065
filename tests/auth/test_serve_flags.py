"""``k8swatch serve``'s security flags: refusals, the generated certificate, the old alias."""

from __future__ import annotations

import base64
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from k8swatch.cli import main
from tests.coder.test_cli import Served

from .test_serve_tls import KUBECTL, env_for


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["serve", "--port=0", *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--host=0.0.0.0"],
            "error: --host 0.0.0.0 is not loopback: choose who may do what with "
            "--authorization-mode",
        ),
        (["--tls-cert-file=/x.crt"], "--tls-cert-file and --tls-private-key-file go together"),
        (
            ["--tls-cert-file=/nonexistent.crt", "--tls-private-key-file=/nonexistent.key"],
            "--tls-cert-file '/nonexistent.crt': the file does not exist or cannot be read",
        ),
        (
            ["--authorization-mode=ABAC"],
            "--authorization-mode=ABAC needs --authorization-policy-file",
        ),
        (["--authorization-mode=RBAC"], "--authorization-mode: unknown mode 'RBAC'"),
        (
            ["--authorization-policy-file=/p.jsonl"],
            "--authorization-policy-file '/p.jsonl': the file does not exist",
        ),
        (
            ["--authorization-mode=AlwaysAllow", "--authorization-policy-file=/p"],
            "--authorization-policy-file needs ABAC in --authorization-mode",
        ),
        (["--client-ca-file=/nope.crt"], "--client-ca-file '/nope.crt': the file does not exist"),
        (
            ["--authorization-mode=Webhook"],
            "--authorization-kubeconfig is needed outside a cluster",
        ),
        (["--write-kubeconfig=/a", "--kubeconfig=/b"], "give --write-kubeconfig only"),
    ],
)
def test_refused_flag_combinations(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    code, err = run_main(capsys, *args)
    assert code == 2
    assert message in err


def test_bad_files_are_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    policy = tmp_path / "policy.jsonl"
    policy.write_text('{"user": "bob"}\n{"user": 1}\n')
    code, err = run_main(
        capsys, "--authorization-mode=ABAC", f"--authorization-policy-file={policy}"
    )
    assert code == 2
    assert f"--authorization-policy-file: {policy}, line 2: user must be a string" in err
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("only,two\n")
    code, err = run_main(capsys, f"--token-auth-file={tokens}")
    assert code == 2
    assert "must have at least 3 columns (token, user name, user uid), found 2 on line 1" in err
    not_pem = tmp_path / "ca.crt"
    not_pem.write_text("not a certificate\n")
    code, err = run_main(capsys, f"--client-ca-file={not_pem}")
    assert code == 2
    assert f"error: --client-ca-file {not_pem}: not PEM certificates" in err


@pytest.mark.kubectl
def test_off_loopback_a_self_signed_certificate_is_made_and_trusted(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    env = env_for(tmp_path)
    served = Served(
        [
            "serve",
            "--host=0.0.0.0",
            "--port=0",
            "--authorization-mode=AlwaysAllow",
            "--fake-build-mode=instant",
            f"--kubeconfig={kubeconfig}",  # the deprecated alias still works
        ],
        env,
    )
    try:
        url = served.value("URL: ")
        assert url.startswith("https://127.0.0.1:")
        assert any("self-signed serving certificate" in line for line in served.lines)
        assert any(
            "--kubeconfig is deprecated, use --write-kubeconfig" in line for line in served.lines
        )
        assert kubeconfig.stat().st_mode & 0o777 == 0o600
        assert not any("client-key-data" in line for line in served.lines), "key printed"
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        assert cluster["server"] == url
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
        context = ssl.create_default_context(cadata=ca)
        assert httpx.get(f"{url}/healthz", verify=context, timeout=10).text == "ok"
        with pytest.raises(httpx.ConnectError):  # not trusted without the CA
            httpx.get(f"{url}/healthz", timeout=10)
        listed = subprocess.run(
            [
                KUBECTL,
                "--kubeconfig",
                str(kubeconfig),
                "get",
                "coderworkspaces",
                "-A",
                "-o",
                "name",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
        # kubectl is the kubeconfig's k8swatch-admin, from the generated client certificate
        assert listed.stdout.split() == [
            "coderworkspace.aggregation.coder.com/acme.alice.dev-workspace"
        ]
    finally:
        assert served.stop() == 0, "".join(served.lines)


def test_the_quick_start_stays_plain_http_on_loopback(tmp_path: Path) -> None:
    served = Served(["serve", "--port=0", "--fake-build-mode=instant"], env_for(tmp_path))
    try:
        url = served.value("URL: ")
        assert url.startswith("http://127.0.0.1:")
        # the banner is the one the README shows: nothing about TLS or authorization
        assert not any(
            line.startswith(("authentication:", "authorization:", "TLS:")) for line in served.lines
        )
        response = httpx.get(
            f"{url}/apis/aggregation.coder.com/v1alpha1/coderworkspaces", timeout=10
        )
        assert response.status_code == 200
    finally:
        assert served.stop() == 0


def test_anonymous_auth_false_answers_401(tmp_path: Path) -> None:
    served = Served(
        ["serve", "--port=0", "--fake-build-mode=instant", "--anonymous-auth=false"],
        env_for(tmp_path),
    )
    try:
        url = served.value("URL: ")
        assert any("without credentials get 401" in line for line in served.lines)
        for path in ("/apis", "/healthz"):  # authentication comes before the always-allowed paths
            response = httpx.get(f"{url}{path}", timeout=10)
            assert response.status_code == 401, path
            assert response.json()["reason"] == "Unauthorized"
    finally:
        assert served.stop() == 0
