"""Issue 4 through the controller and real agents: deletion protection (case 015), per-node
kubelet roots (case 014), the not-ready taint, the report timeout and the metrics.

Cases are read in place from ``../shared/cases``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from seccomp_operator import constants as c
from seccomp_operator import metrics, paths
from seccomp_operator.agent import Agent
from seccomp_operator.devcluster import DevCluster
from tests.cluster import World, condition
from tests.conftest import CASES
from tests.polling import eventually

pytestmark = pytest.mark.integration

DENY_MKDIR: dict[str, Any] = {
    "metadata": {"name": "deny-mkdir", "namespace": "demo"},
    "spec": {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"action": "SCMP_ACT_ERRNO", "errnoRet": 13, "names": ["mkdir", "mkdirat"]}],
    },
}


async def profile_status(cluster: DevCluster, ns: str, name: str, **expected: Any) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        st = ((await cluster.get_profile(ns, name)) or {}).get("status") or {}
        return st if all(st.get(k) == v for k, v in expected.items()) else None

    result: dict[str, Any] = await eventually(probe, what=f"{ns}/{name} status {expected}")
    return result


def file_of(root: Path, ns: str, name: str) -> Path:
    return Path(paths.profile_path(str(root), ns, name))


# --- deletion protection: case 015 ----------------------------------------------------------


async def test_case_015_deletion_waits_for_pods_and_never_for_deleted_nodes(tmp_path: Path) -> None:
    case = CASES / "015-finalizer-deleted-nodes"
    profile = yaml.safe_load((case / "input.cr.yaml").read_text())
    steps = yaml.safe_load((case / "cluster-state.yaml").read_text())["steps"]
    ns, name = profile["metadata"]["namespace"], profile["metadata"]["name"]
    first_nodes, later_nodes = steps[0]["nodes"], steps[3]["nodes"]
    roots: dict[str, Path] = {}

    async with DevCluster() as cluster:
        await cluster.add_namespace(ns)
        await cluster.start_controller(status_interval=0.1)

        async def join(node: str) -> None:
            await cluster.add_node(node)
            roots[node] = tmp_path / node
            roots[node].mkdir()
            await cluster.start_agent(node, str(roots[node]), resync_seconds=2.0)

        for node in first_nodes:  # t=0: installed on 3 nodes
            await join(node)
        await cluster.apply_profile(profile)
        st = await profile_status(cluster, ns, name, phase=c.PHASE_INSTALLED, ready="3/3")
        body = await cluster.get_profile(ns, name) or {}
        assert body["metadata"]["finalizers"] == [c.FINALIZER]  # one finalizer, never one per node

        # t=1: a pod on pool-a-1 uses the profile (from an init container: any of the four places counts)
        await cluster.add_pod(
            "shop",
            "api-0",
            {
                "nodeName": "pool-a-1",
                "initContainers": [
                    {
                        "name": "init",
                        "image": "busybox",
                        "securityContext": _localhost(st["localhostProfile"]),
                    }
                ],
                "containers": [{"name": "api", "image": "busybox"}],
            },
        )
        # t=2: pool-b-1 is reclaimed: it stops counting and blocks nothing
        gone = next(n for n in first_nodes if n not in later_nodes)
        await cluster.stop_role(f"agent/{gone}")
        await cluster.delete_node(gone)
        await profile_status(cluster, ns, name, phase=c.PHASE_INSTALLED, ready="2/2", desiredNodes=2)
        # t=3: a node joins later and receives the existing profile
        newcomer = next(n for n in later_nodes if n not in first_nodes)
        await join(newcomer)
        await profile_status(cluster, ns, name, phase=c.PHASE_INSTALLED, ready="3/3")
        assert file_of(roots[newcomer], ns, name).exists()

        # t=4: delete: blocked while shop/api-0 exists; the status and an event name the pod
        await cluster.delete_profile(ns, name)
        st = await profile_status(
            cluster, ns, name, phase=c.PHASE_TERMINATING, referencingPods=["shop/api-0"]
        )
        assert st["referencingPodCount"] == 1 and st["removalAllowed"] is False
        assert "shop/api-0" in condition(st, c.COND_READY)["message"]

        async def event_posted() -> bool:
            events = (await cluster.get(f"/api/v1/namespaces/{ns}/events"))["items"]
            return any(
                e["reason"] == c.EVENT_DELETION_BLOCKED and "shop/api-0" in e["message"] for e in events
            )

        await eventually(event_posted, what="an event names the pod that blocks deletion")
        body = await cluster.get_profile(ns, name) or {}
        assert body["metadata"]["finalizers"] == [c.FINALIZER]
        for node in later_nodes:  # the file stays while a pod may still start with it
            assert file_of(roots[node], ns, name).exists(), node

        # t=5: the pod goes: deletion completes on its own; files removed on every node
        await cluster.delete_pod("shop", "api-0")

        async def deleted() -> bool:
            return await cluster.get_profile(ns, name) is None

        await eventually(deleted, what="profile deleted once the last pod is gone")
        for node in later_nodes:
            await eventually(
                lambda n=node: not file_of(roots[n], ns, name).exists(), what=f"file removed on {node}"
            )


def _localhost(path: str) -> dict[str, Any]:
    return {"seccompProfile": {"type": "Localhost", "localhostProfile": path}}


async def test_finished_pod_does_not_block_deletion(world: World) -> None:
    cluster = world.cluster
    await cluster.apply_profile(DENY_MKDIR)
    st = await world.wait_status("demo", "deny-mkdir", "ready", phase=c.PHASE_INSTALLED, ready="3/3")
    spec = {
        "securityContext": _localhost(st["localhostProfile"]),
        "containers": [{"name": "job", "image": "busybox"}],
    }
    await cluster.add_pod("demo", "job-done", spec, phase="Succeeded")
    await cluster.delete_profile("demo", "deny-mkdir")

    async def deleted() -> bool:
        return await cluster.get_profile("demo", "deny-mkdir") is None

    await eventually(deleted, what="deletion not blocked by a finished pod")


# --- per-node kubelet root: case 014 ----------------------------------------------------------


async def test_case_014_kubelet_root_per_node_label(tmp_path: Path) -> None:
    case = CASES / "014-kubelet-root-dir-distros"
    env = yaml.safe_load((case / "node-env.yaml").read_text())["nodes"]
    expected = yaml.safe_load((case / "expected.node-status.yaml").read_text())
    profile = yaml.safe_load((case / "input.cr.yaml").read_text())
    ns, name = profile["metadata"]["namespace"], profile["metadata"]["name"]
    roots = {n["name"]: n["kubeletRoot"] for n in env if str(n["kubeletRoot"]).startswith("/")}
    candidates = tuple(sorted(set(roots.values())))

    def host(node: str) -> Path:
        """A temporary directory standing in for the node's own file system root."""
        return tmp_path / node

    def on_host(node: str, path: str) -> str:
        return str(host(node)) + path

    async with DevCluster() as cluster:
        await cluster.add_namespace(ns)
        await cluster.start_controller(status_interval=0.1)
        for node, root in roots.items():
            Path(on_host(node, root)).mkdir(parents=True)
            # The DaemonSet's flag says /var/lib/kubelet; the node label says where this kubelet is.
            labels = {} if root == c.DEFAULT_KUBELET_ROOT else {c.KUBELET_ROOT_LABEL: on_host(node, root)}
            await cluster.add_node(node, labels=labels)
            await cluster.start_agent(
                node,
                on_host(node, c.DEFAULT_KUBELET_ROOT),
                candidates=tuple(on_host(node, r) for r in candidates),
            )
        # The wrong-root case: a k0s node without the label; the default root does not exist there.
        wrong = "k0s-node-unlabelled"
        Path(on_host(wrong, "/var/lib/k0s/kubelet")).mkdir(parents=True)
        await cluster.add_node(wrong)
        await cluster.start_agent(
            wrong,
            on_host(wrong, c.DEFAULT_KUBELET_ROOT),
            candidates=tuple(on_host(wrong, r) for r in candidates),
        )
        await cluster.apply_profile(profile)
        st = await profile_status(cluster, ns, name, installedNodes=len(roots), failedNodes=1)

        for want in expected[:-1]:
            node = want["node"]
            report = ((await cluster.get_node_status(node)) or {})["status"]
            entry = report["profiles"][f"{ns}/{name}"]
            assert entry["state"] == want["state"] == c.NODE_INSTALLED
            assert entry["path"] == on_host(node, want["path"]), node
            assert Path(entry["path"]).is_file()
            assert report["kubeletRoot"] == on_host(node, roots[node])
            assert report["seccompRoot"] == on_host(node, roots[node]) + "/seccomp"

        # Wrong root: a per-node Error naming the candidate that exists; no tree created.
        report = ((await cluster.get_node_status(wrong)) or {})["status"]
        assert report["state"] == c.NODE_ERROR
        assert "/var/lib/kubelet" in report["message"] and "not" in report["message"]
        assert on_host(wrong, "/var/lib/k0s/kubelet") in report["message"]
        assert not Path(on_host(wrong, c.DEFAULT_KUBELET_ROOT)).exists()
        failed = [n for n in st["notReadyNodes"] if n["name"] == wrong]
        assert failed and failed[0]["state"] == c.NODE_ERROR
        assert on_host(wrong, "/var/lib/k0s/kubelet") in failed[0]["message"]


# --- the scheduling race: the not-ready taint ------------------------------------------------------


async def test_taint_removed_only_after_initial_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = {"key": c.NOT_READY_TAINT_KEY, "effect": c.NOT_READY_TAINT_EFFECT}
    foreign = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    gate, entered = threading.Event(), threading.Event()
    real_step = Agent.step
    held: list[Agent] = []

    async def held_step(self: Agent) -> None:
        if not held:  # only the first (initial) step is held
            held.append(self)
            entered.set()
            await asyncio.to_thread(gate.wait, 60)
        await real_step(self)

    monkeypatch.setattr(Agent, "step", held_step)
    async with DevCluster() as cluster:
        await cluster.add_namespace("demo")
        await cluster.add_node("fresh", taints=[ours, foreign])
        await cluster.start_controller(status_interval=0.1)
        await cluster.apply_profile(DENY_MKDIR)
        try:
            await cluster.start_agent("fresh", str(tmp_path))
            await eventually(entered.is_set, what="the agent's first step started")
            node = await cluster.get_node("fresh") or {}
            assert ours in node["spec"]["taints"]  # held before the initial sync
            assert not file_of(tmp_path, "demo", "deny-mkdir").exists()
        finally:
            gate.set()

        async def untainted() -> list[dict[str, Any]] | None:
            taints = ((await cluster.get_node("fresh")) or {}).get("spec", {}).get("taints") or []
            return (
                None
                if any(t.get("key") == c.NOT_READY_TAINT_KEY for t in taints)
                else [dict(t) for t in taints]
            )

        left = await eventually(untainted, what="the not-ready taint removed after the initial sync")
        assert left == [foreign]  # other taints are left alone
        assert file_of(tmp_path, "demo", "deny-mkdir").exists()  # written before the taint went
        assert held[0].synced.is_set()


# --- bounded wait for a ready agent that does not report -----------------------------------------


async def test_report_timeout_marks_silent_node_unknown(tmp_path: Path) -> None:
    async with DevCluster() as cluster:
        await cluster.add_namespace("demo")
        await cluster.start_controller(status_interval=0.1, report_timeout=1.0)
        agents: dict[str, Agent] = {}
        for node in ("n1", "n2", "n3"):
            await cluster.add_node(node)
            (tmp_path / node).mkdir()
            agents[node] = (await cluster.start_agent(node, str(tmp_path / node))).agent
        for agent in agents.values():
            await eventually(agent.synced.is_set, what="initial sync")
        gate = threading.Event()
        silent = agents["n3"]
        real: Callable[[], Awaitable[None]] = silent.step

        async def held() -> None:
            await asyncio.to_thread(gate.wait, 60)
            await real()

        silent.step = held  # type: ignore[method-assign]
        try:
            await cluster.apply_profile(DENY_MKDIR)
            st = await profile_status(cluster, "demo", "deny-mkdir", installedNodes=2, pendingNodes=1)
            late = await profile_status(
                cluster, "demo", "deny-mkdir", installedNodes=2, phase=c.PHASE_PENDING
            )
            entry = next(n for n in late["notReadyNodes"] if n["name"] == "n3")
            assert entry["state"] == c.NODE_UNKNOWN and entry["reason"] == c.REASON_REPORT_TIMEOUT
            assert "agent has not reported within 1s" in entry["message"]
            assert condition(late, c.COND_PROGRESSING)["status"] == "False"
            assert st["ready"] == late["ready"] == "2/3"
        finally:
            gate.set()
        await profile_status(cluster, "demo", "deny-mkdir", phase=c.PHASE_INSTALLED, ready="3/3")


# --- metrics -------------------------------------------------------------------------------------


async def test_metrics_after_reconcile(world: World) -> None:
    cluster = world.cluster
    await cluster.apply_profile(DENY_MKDIR)
    await world.wait_status("demo", "deny-mkdir", "ready", phase=c.PHASE_INSTALLED, ready="3/3")
    ctl = cluster.roles["controller"].controller.metrics.registry
    labels = {"namespace": "demo", "profile": "deny-mkdir"}

    def installed() -> bool:
        return metrics.sample(ctl, "seccomp_profile_nodes", {**labels, "state": "installed"}) == 3.0

    await eventually(installed, what="controller gauge of installed nodes")
    assert metrics.sample(ctl, "seccomp_profile_nodes", {**labels, "state": "pending"}) == 0.0
    assert metrics.sample(ctl, "seccomp_rollout_seconds_count") == 1.0
    assert (metrics.sample(ctl, "seccomp_rollout_seconds_sum") or 0) > 0
    for node in ("node-1", "node-2", "node-3"):
        reg = cluster.roles[f"agent/{node}"].agent.metrics.registry
        assert metrics.sample(reg, "seccomp_agent_profiles", {"node": node, "state": c.NODE_INSTALLED}) == 1.0
        assert metrics.sample(reg, "seccomp_agent_profiles", {"node": node, "state": c.NODE_ERROR}) == 0.0
        assert (metrics.sample(reg, "seccomp_agent_write_seconds_count", {"node": node}) or 0) >= 1
    await cluster.delete_profile("demo", "deny-mkdir")

    def forgotten() -> bool:
        return metrics.sample(ctl, "seccomp_profile_nodes", {**labels, "state": "installed"}) is None

    await eventually(forgotten, what="series of the deleted profile dropped")


async def test_metrics_and_probes_served_over_http(tmp_path: Path) -> None:
    async with DevCluster() as cluster:
        await cluster.add_node("n1")
        ctl = await cluster.start_controller(metrics_port=0)
        agent = await cluster.start_agent("n1", str(tmp_path), metrics_port=0)
        async with aiohttp.ClientSession() as http:
            for handle, series in ((ctl, "seccomp_rollout_seconds"), (agent, "seccomp_agent_profiles")):
                port = handle.memo.extras["metrics_runner"].addresses[0][1]
                base = f"http://127.0.0.1:{port}"
                async with http.get(f"{base}/metrics") as resp:
                    assert resp.status == 200 and series in await resp.text()
                async with http.get(f"{base}/healthz") as resp:
                    assert resp.status == 200
            port = agent.memo.extras["metrics_runner"].addresses[0][1]

            async def ready() -> bool:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    return resp.status == 200

            await eventually(ready, what="agent ready after its initial sync")
