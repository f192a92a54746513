"""What the agent installs is enforced by the real runtime (containerd + runc).

The agent writes into a temporary kubelet root exactly as on a node; the file it
wrote is then given to ``ctr run --seccomp-profile``.  Also: every reference
profile (Kubernetes docs, SPO examples) rendered by us is accepted by runc.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from seccomp_operator import constants as c
from seccomp_operator import paths
from seccomp_operator.agent import Agent, AgentConfig
from seccomp_operator.containerd import Containerd, runc_accepts
from seccomp_operator.render import render_mapping, render_profile_json
from tests.conftest import REFERENCE

pytestmark = pytest.mark.containerd


def deny_mkdir(errno_ret: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "deny-mkdir", "namespace": "demo"},
        "spec": {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"action": "SCMP_ACT_ERRNO", "errnoRet": errno_ret, "names": ["mkdir", "mkdirat"]}],
        },
    }


async def install(agent: Agent, body: dict[str, Any], event: str = "ADDED") -> Path:
    """Feed one watch event to an offline agent, let it reconcile, return the file it wrote."""
    agent.observe(event, body)
    await agent.step()
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    entry = agent.report.entries[f"{ns}/{name}"]
    assert entry.state == c.NODE_INSTALLED, entry
    return Path(paths.profile_path(agent.cfg.kubelet_root, ns, name))


async def test_installed_profile_denies_with_configured_errno(
    containerd: Containerd, busybox_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "var-lib-kubelet"
    root.mkdir()
    agent = Agent(AgentConfig(node_name="node-1", kubelet_root=str(root)), api=None)
    profile = await install(agent, deny_mkdir(13))

    denied = containerd.run(profile, ["/bin/mkdir", "/tmp/x"], busybox_root)
    assert denied.rc != 0, denied.describe()
    assert "Permission denied" in denied.stderr + denied.stdout  # EACCES, errnoRet 13
    allowed = containerd.run(profile, ["/bin/ls", "/"], busybox_root)
    assert allowed.rc == 0, allowed.describe()
    assert "bin" in allowed.stdout.split()

    # An update of the resource: the agent rewrites the file, the runtime sees the new errno.
    profile = await install(agent, deny_mkdir(38), event="MODIFIED")
    denied = containerd.run(profile, ["/bin/mkdir", "/tmp/x"], busybox_root)
    assert denied.rc != 0 and "Function not implemented" in denied.stderr + denied.stdout, denied.describe()


async def test_log_default_lets_everything_run(
    containerd: Containerd, busybox_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "var-lib-kubelet"
    root.mkdir()
    agent = Agent(AgentConfig(node_name="node-1", kubelet_root=str(root)), api=None)
    body = {"metadata": {"name": "audit", "namespace": "demo"}, "spec": {"defaultAction": "SCMP_ACT_LOG"}}
    profile = await install(agent, body)
    made = containerd.run(profile, ["/bin/sh", "-c", "mkdir /tmp/x && ls -d /tmp/x"], busybox_root)
    assert made.rc == 0, made.describe()
    assert "/tmp/x" in made.stdout


def _reference_profiles() -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for f in sorted((REFERENCE / "kubernetes-website" / "profiles").glob("*.json")):
        out.append((f"k8s-docs/{f.name}", render_profile_json(f.read_text()).content))
    for f in sorted((REFERENCE / "security-profiles-operator" / "examples").glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(f.read_text()) if d and d.get("kind") == "SeccompProfile"]
        specs = {d["metadata"]["name"]: d["spec"] for d in docs}
        for d in docs:
            rendered = render_mapping(d["spec"], lookup_base=specs.get, name=d["metadata"]["name"])
            out.append((f"spo/{f.name}#{d['metadata']['name']}", rendered.content))
    return out


def test_runc_accepts_every_rendered_reference_profile(
    containerd: Containerd, busybox_root: Path, tmp_path: Path
) -> None:
    profiles = _reference_profiles()
    assert len(profiles) >= 14  # 3 Kubernetes docs profiles + 11 SPO example resources
    rejected = []
    for label, content in profiles:
        path = tmp_path / (label.replace("/", "_").replace("#", "_") + ".json")
        path.write_bytes(content)
        accepted, detail = runc_accepts(path, rootfs=busybox_root, address=containerd.address)
        if not accepted:
            rejected.append(f"{label}: {detail}")
    assert not rejected, "\n".join(rejected)
