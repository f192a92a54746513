"""Files given to the offline tools: hostile names and wrong shapes are refused with a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from seccomp_operator import cli, kubectl_plugin


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("field", "value"), [("name", "../../etc/passwd"), ("namespace", "../..")])
def test_names_that_are_not_dns_subdomains_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: str
) -> None:
    meta = {"name": "ok", "namespace": "demo", field: value}
    f = write(
        tmp_path,
        "p.yaml",
        "apiVersion: seccomp-operator.dev/v1alpha1\nkind: SeccompProfile\n"
        f"metadata: {{name: {meta['name']!r}, namespace: {meta['namespace']!r}}}\n"
        "spec: {defaultAction: SCMP_ACT_LOG}\n",
    )
    assert cli.main(["render", str(f)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing rendered
    assert f"metadata.{field}" in captured.err and "DNS subdomain" in captured.err
    assert cli.main(["lint", str(f)]) == 2


def test_yaml_list_at_the_top_is_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path, "list.yaml", "- names: [read]\n  action: SCMP_ACT_ALLOW\n")
    assert cli.main(["render", str(f)]) == 2
    err = capsys.readouterr().err
    assert "is a list" in err and "spec.syscalls" in err


def test_kubectl_plugin_without_a_cluster_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert kubectl_plugin.main(["nodes"]) != 0
    assert "no cluster to talk to" in capsys.readouterr().err


def test_kubectl_plugin_with_an_unreachable_server_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert kubectl_plugin.main(["--server", "http://127.0.0.1:1", "nodes"]) != 0
    assert "API unreachable" in capsys.readouterr().err
