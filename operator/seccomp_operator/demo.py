"""``seccomp-operator demo``: the main job on an embedded cluster, end to end.

Starts the in-process API emulator (:mod:`devcluster`), the real controller and
N agents (each with its own kubelet root under a work directory), applies the
profiles in ``examples/``, waits for the rollout, prints a per-node table, and
then, where containerd and runc are usable (root, ``ctr`` and a running daemon),
starts a container under an installed profile to show a denied syscall.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from . import constants as c
from . import paths
from .devcluster import DevCluster

#: A profile the demo applies to show a refusal: ``errnoRet`` on an allow rule.
BAD_EXAMPLE: dict[str, Any] = {
    "apiVersion": c.API_VERSION,
    "kind": c.PROFILE_KIND,
    "metadata": {"name": "demo-invalid", "namespace": "default"},
    "spec": {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"action": "SCMP_ACT_ALLOW", "errnoRet": 1, "names": ["read", "write", "exit_group"]}],
    },
}

#: Phases after which a profile's rollout is settled for the demo's purposes.
_SETTLED = {c.PHASE_INSTALLED, c.PHASE_INVALID, c.PHASE_DISABLED, c.PHASE_DEGRADED}


def example_dir() -> Path | None:
    """``examples/`` of the source checkout, if the package runs from one."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "examples"
        if (candidate / "deny-mkdir.yaml").is_file():
            return candidate
    return None


def load_examples(directory: Path) -> list[dict[str, Any]]:
    """Every SeccompProfile document in ``directory`` (recursively), sorted by file name."""
    docs: list[dict[str, Any]] = []
    for f in sorted(directory.rglob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == c.PROFILE_KIND:
                docs.append(doc)
    return docs


async def _wait_settled(cluster: DevCluster, keys: list[tuple[str, str]], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    statuses: dict[str, Any] = {}
    while True:
        for ns, name in keys:
            body = await cluster.get_profile(ns, name) or {}
            statuses[f"{ns}/{name}"] = body.get("status") or {}
        if all(s.get("phase") in _SETTLED for s in statuses.values()) or time.monotonic() > deadline:
            return statuses
        await asyncio.sleep(0.1)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows)


async def main(workdir: str | None = None, nodes: int = 3, run_container: bool = True) -> int:
    """Run the demo; return the process exit code (0 when every example settled as expected)."""
    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="seccomp-operator-demo-"))
    examples = example_dir()
    if examples is None:
        print("demo: examples/ not found (run from a source checkout)", file=sys.stderr)
        return 2
    docs = [*load_examples(examples), BAD_EXAMPLE]
    # The agents log the refused example as an error; the demo prints its findings itself.
    logging.getLogger("seccomp_operator.agent").setLevel(logging.CRITICAL)
    node_names = [f"node-{i + 1}" for i in range(nodes)]
    roots = {n: base / n / "var-lib-kubelet" for n in node_names}
    print(f"== seccomp-operator demo: API emulator, 1 controller, {nodes} agents; kubelet roots under {base}")
    async with DevCluster() as cluster:
        namespaces = sorted({d["metadata"].get("namespace", "default") for d in docs})
        for ns in namespaces:
            await cluster.add_namespace(ns)
        for n in node_names:
            roots[n].mkdir(parents=True, exist_ok=True)
            await cluster.add_node(n)
        await cluster.start_controller(status_interval=0.2)
        for n in node_names:
            await cluster.start_agent(n, str(roots[n]), resync_seconds=5.0)
        for doc in docs:
            await cluster.apply_profile(doc)
        keys = [(d["metadata"].get("namespace", "default"), d["metadata"]["name"]) for d in docs]
        print(f"== applied {len(docs) - 1} SeccompProfiles from {examples}, and one invalid one")
        statuses = await _wait_settled(cluster, keys, timeout=60)

        print("\n$ kubectl get seccompprofiles -A")
        rows = [["NAMESPACE", "NAME", "STATUS", "READY", "LOCALHOSTPROFILE"]]
        for key, st in statuses.items():
            ns, name = key.split("/", 1)
            rows.append(
                [
                    ns,
                    name,
                    str(st.get("phase", "")),
                    str(st.get("ready", "")),
                    str(st.get("localhostProfile", "")),
                ]
            )
        print(_table(rows))

        print("\n== per-node rollout (from each node's SeccompNodeStatus)")
        rows = [["PROFILE", *node_names]]
        reports = {n: ((await cluster.get_node_status(n)) or {}).get("status") or {} for n in node_names}
        for key in statuses:
            cells = [key]
            for n in node_names:
                entry = (reports[n].get("profiles") or {}).get(key) or {}
                state = entry.get("state", "-")
                digest = str(entry.get("contentHash") or "")[:8]
                cells.append(f"{state} {digest}".strip())
            rows.append(cells)
        print(_table(rows))
        invalid = {k: s for k, s in statuses.items() if s.get("phase") == c.PHASE_INVALID}
        for key, st in invalid.items():
            print(f"\n{key} is Invalid, no node wrote it; findings in its status:")
            for f in st.get("findings") or []:
                print(f"  {f.get('severity')} {f.get('path')}: {f.get('message')}")

        ok = all(s.get("phase") in _SETTLED for s in statuses.values())
        first = roots[node_names[0]]
        if run_container:
            ok = _container_demo(first, statuses) and ok
    print(f"\n== kubelet roots kept in {base}" if workdir else "")
    if not workdir:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


def _container_demo(kubelet_root: Path, statuses: dict[str, Any]) -> bool:
    """Run busybox under the installed ``deny-mkdir`` profile with containerd, if usable."""
    from . import containerd

    key = next(
        (k for k, s in statuses.items() if k.endswith("/deny-mkdir") and s.get("phase") == c.PHASE_INSTALLED),
        None,
    )
    if key is None:
        print("\n== containerd part skipped: no installed deny-mkdir profile")
        return True
    why_not = containerd.unavailable_reason()
    if why_not:
        print(f"\n== containerd part skipped: {why_not}")
        return True
    ns, name = key.split("/", 1)
    profile = Path(paths.profile_path(str(kubelet_root), ns, name))
    doc = json.loads(profile.read_bytes())
    print(f"\n== containerd + runc with the file the agent installed: {profile}")
    with tempfile.TemporaryDirectory(prefix="demo-rootfs-") as tmp:
        rootfs = containerd.busybox_rootfs(Path(tmp) / "rootfs")
        with containerd.Containerd() as daemon:
            denied = daemon.run(profile, ["/bin/mkdir", "/tmp/demo"], rootfs)
            allowed = daemon.run(profile, ["/bin/ls", "/"], rootfs)
    errno_ret = next(
        (r.get("errnoRet") for r in doc.get("syscalls", []) if "mkdirat" in r.get("names", [])), None
    )
    print(f"$ ctr run --seccomp-profile {profile.name} ... mkdir /tmp/demo   (errnoRet {errno_ret})")
    print(f"  exit {denied.rc}: {(denied.stderr or denied.stdout).strip()}")
    print(f"$ ctr run --seccomp-profile {profile.name} ... ls /")
    print(f"  exit {allowed.rc}: {' '.join(allowed.stdout.split())}")
    return bool(denied.rc != 0 and allowed.rc == 0)
