"""The main job end to end: the real controller and three real agents against the API emulator.

Each agent writes into its own temporary kubelet root; the files are real.  The
emulator plays the API server and, for agent pods, the kubelet (see devcluster).
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
import yaml

from seccomp_operator import constants as c
from tests.cluster import NODES, World, condition, expected_bytes
from tests.conftest import CASES
from tests.polling import eventually

pytestmark = pytest.mark.integration

DENY_MKDIR: dict[str, Any] = {
    "metadata": {"name": "deny-mkdir", "namespace": "demo"},
    "spec": {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"action": "SCMP_ACT_ERRNO", "errnoRet": 13, "names": ["mkdirat", "mkdir"]}],
    },
}


async def test_create_update_delete_rollout(world: World) -> None:
    cluster = world.cluster
    await cluster.apply_profile(DENY_MKDIR)
    want = expected_bytes(DENY_MKDIR)

    st = await world.wait_status("demo", "deny-mkdir", "ready", phase=c.PHASE_INSTALLED, ready="3/3")
    assert world.contents("demo", "deny-mkdir") == {n: want for n in NODES}
    assert st["localhostProfile"] == "seccomp-operator/demo/deny-mkdir.json"
    for node in NODES:  # the status path is exactly where the file is
        assert (world.roots[node] / "seccomp" / st["localhostProfile"]).read_bytes() == want
    assert condition(st, c.COND_READY)["status"] == "True"
    assert condition(st, c.COND_PROGRESSING)["status"] == "False"
    assert st["installedNodes"] == st["desiredNodes"] == 3
    assert st["observedGeneration"] == 1
    old_hash = st["contentHash"]

    # Update, with node-3's agent held back: Progressing with 2/3 on the new hash.
    gate = threading.Event()  # the agent runs in its own thread and loop
    slow = cluster.roles["agent/node-3"].agent
    real_step = slow.step

    async def held_step() -> None:
        await asyncio.to_thread(gate.wait, 60)
        await real_step()

    slow.step = held_step  # type: ignore[method-assign]
    updated = json.loads(json.dumps(DENY_MKDIR))
    updated["spec"]["syscalls"][0]["errnoRet"] = 38
    await cluster.apply_profile(updated)
    new = expected_bytes(updated)
    st = await world.wait_status(
        "demo", "deny-mkdir", "progressing", phase=c.PHASE_PROGRESSING, installedNodes=2
    )
    assert st["contentHash"] != old_hash
    assert st["observedGeneration"] == 2
    assert condition(st, c.COND_PROGRESSING)["status"] == "True"
    assert condition(st, c.COND_READY)["status"] == "False"
    assert [n["name"] for n in st["notReadyNodes"]] == ["node-3"]
    assert st["notReadyNodes"][0]["state"] == c.NODE_OUTDATED
    assert world.contents("demo", "deny-mkdir")["node-3"] == want  # still the old, complete file
    gate.set()
    st = await world.wait_status("demo", "deny-mkdir", "ready again", phase=c.PHASE_INSTALLED, ready="3/3")
    assert world.contents("demo", "deny-mkdir") == {n: new for n in NODES}

    # Delete: the finalizer holds until every node removed the file, then the object goes.
    await cluster.delete_profile("demo", "deny-mkdir")
    await eventually(
        lambda: all(v is None for v in world.contents("demo", "deny-mkdir").values()), what="files removed"
    )

    async def gone() -> bool:
        return await cluster.get_profile("demo", "deny-mkdir") is None

    await eventually(gone, what="profile object deleted (finalizer released)")


async def test_agent_down_is_reported_never_ready(world: World) -> None:
    cluster = world.cluster
    await cluster.stop_agent("node-2", reason="CrashLoopBackOff")
    await cluster.apply_profile(DENY_MKDIR)
    st = await world.wait_status("demo", "deny-mkdir", "2/3", ready="2/3", installedNodes=2)
    assert st["phase"] != c.PHASE_INSTALLED
    assert condition(st, c.COND_READY)["status"] == "False"
    down = [n for n in st["notReadyNodes"] if n["name"] == "node-2"]
    assert down and down[0]["state"] == c.NODE_UNKNOWN
    assert "CrashLoopBackOff" in down[0]["message"]
    assert "node-2" in condition(st, c.COND_READY)["message"]
    assert world.contents("demo", "deny-mkdir")["node-2"] is None
    # The agent comes back: it installs and the profile becomes Ready.
    await cluster.start_agent("node-2", str(world.roots["node-2"]), resync_seconds=2.0)
    await world.wait_status("demo", "deny-mkdir", "3/3", phase=c.PHASE_INSTALLED, ready="3/3")


async def test_invalid_profile_is_refused_and_nothing_written(world: World) -> None:
    cluster = world.cluster
    bad = {
        "metadata": {"name": "bad", "namespace": "demo"},
        "spec": {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"action": "SCMP_ACT_ALLOW", "errnoRet": 1, "names": ["getpid"]}],
        },
    }
    await cluster.apply_profile(bad)
    st = await world.wait_status("demo", "bad", "invalid", phase=c.PHASE_INVALID)
    assert any(f["path"] == "spec.syscalls[0].errnoRet" and f["severity"] == "error" for f in st["findings"])
    assert condition(st, c.COND_READY)["status"] == "False"
    assert condition(st, c.COND_INVALID)["status"] == "True"
    assert "spec.syscalls[0].errnoRet" in condition(st, c.COND_READY)["message"]

    async def every_agent_reports_error() -> bool:
        for node in NODES:
            report = await cluster.get_node_status(node)
            entry = ((report or {}).get("status") or {}).get("profiles", {}).get("demo/bad")
            if not entry or entry["state"] != c.NODE_ERROR:
                return False
        return True

    await eventually(every_agent_reports_error, what="agents report the invalid profile as Error")
    assert world.contents("demo", "bad") == {n: None for n in NODES}
    events = await cluster.get("/api/v1/namespaces/demo/events")
    assert any(e["reason"] == c.EVENT_INVALID and "errnoRet" in e["message"] for e in events["items"])


async def test_files_restored_and_orphans_collected(world: World) -> None:
    cluster = world.cluster
    await cluster.apply_profile(DENY_MKDIR)
    await world.wait_status("demo", "deny-mkdir", "ready", phase=c.PHASE_INSTALLED, ready="3/3")
    want = expected_bytes(DENY_MKDIR)
    f1 = world.file("node-1", "demo", "deny-mkdir")
    f2 = world.file("node-2", "demo", "deny-mkdir")
    f1.unlink()
    f2.write_bytes(b"{}")  # `{}` would mean unconfined under runc
    await eventually(lambda: f1.exists() and f1.read_bytes() == want, what="deleted file restored")
    await eventually(lambda: f2.read_bytes() == want, what="tampered file restored")
    # A file whose resource was deleted while the agent was down is removed at start-up.
    await cluster.stop_agent("node-3")
    orphan = world.file("node-3", "demo", "gone-while-down")
    orphan.write_bytes(b'{"defaultAction": "SCMP_ACT_ALLOW"}\n')
    foreign = world.roots["node-3"] / "seccomp" / "someone-else.json"
    foreign.write_bytes(b"{}")
    await cluster.start_agent("node-3", str(world.roots["node-3"]), resync_seconds=2.0)
    await eventually(lambda: not orphan.exists(), what="orphan removed at start-up")
    assert foreign.read_bytes() == b"{}"  # never touched outside the managed directory
    assert world.file("node-3", "demo", "deny-mkdir").read_bytes() == want


async def test_disabled_profile_is_removed_and_reenabled(world: World) -> None:
    cluster = world.cluster
    await cluster.apply_profile(DENY_MKDIR)
    await world.wait_status("demo", "deny-mkdir", "ready", phase=c.PHASE_INSTALLED)
    disabled = json.loads(json.dumps(DENY_MKDIR))
    disabled["spec"]["state"] = "Disabled"
    await cluster.apply_profile(disabled)
    st = await world.wait_status("demo", "deny-mkdir", "disabled", phase=c.PHASE_DISABLED, ready="3/3")
    assert condition(st, c.COND_READY)["status"] == "False"
    assert world.contents("demo", "deny-mkdir") == {n: None for n in NODES}
    await cluster.apply_profile(DENY_MKDIR)
    await world.wait_status("demo", "deny-mkdir", "ready", phase=c.PHASE_INSTALLED, ready="3/3")


async def test_base_profile_resolution_and_missing_base(world: World) -> None:
    cluster = world.cluster
    docs = list(
        yaml.safe_load_all((CASES / "010-runtime-startup-syscalls-drift" / "input.cr.yaml").read_text())
    )
    app = next(d for d in docs if d["metadata"]["name"] == "agent-app")
    base = next(d for d in docs if d["metadata"]["name"] == "runc-base-old")
    await cluster.apply_profile(app)
    st = await world.wait_status("demo", "agent-app", "pending on base", phase=c.PHASE_PENDING)
    assert condition(st, c.COND_READY)["reason"] == c.REASON_BASE_MISSING
    assert "runc-base-old" in condition(st, c.COND_READY)["message"]
    assert world.contents("demo", "agent-app") == {n: None for n in NODES}
    await cluster.apply_profile(base)
    await world.wait_status("demo", "agent-app", "ready", phase=c.PHASE_INSTALLED, ready="3/3")
    expected = json.loads(
        (CASES / "010-runtime-startup-syscalls-drift" / "expected.agent-app.union.json").read_text()
    )
    for data in world.contents("demo", "agent-app").values():
        assert data is not None and json.loads(data) == expected


async def test_case_012_same_name_two_namespaces(world: World) -> None:
    cluster = world.cluster
    await cluster.add_namespace("team-a")
    await cluster.add_namespace("team-b")
    docs = list(
        yaml.safe_load_all((CASES / "012-status-localhostprofile-path" / "input.cr.yaml").read_text())
    )
    for doc in docs:
        await cluster.apply_profile(doc)
    st_a = await world.wait_status("team-a", "log-trace", "ready", phase=c.PHASE_INSTALLED, ready="3/3")
    st_b = await world.wait_status("team-b", "log-trace", "ready", phase=c.PHASE_INSTALLED, ready="3/3")
    assert st_a["localhostProfile"] != st_b["localhostProfile"]
    for node in NODES:
        seccomp = world.roots[node] / "seccomp"
        a, b = seccomp / st_a["localhostProfile"], seccomp / st_b["localhostProfile"]
        assert json.loads(a.read_bytes())["defaultAction"] == "SCMP_ACT_LOG"
        assert json.loads(b.read_bytes())["defaultAction"] == "SCMP_ACT_ERRNO"
        # the node report carries the same path and the hash of what is on disk
        report = (await cluster.get_node_status(node) or {})["status"]["profiles"]["team-a/log-trace"]
        assert report["path"] == str(a) and report["contentHash"] == st_a["contentHash"]
    await cluster.delete_profile("team-b", "log-trace")
    await eventually(
        lambda: all(not (world.roots[n] / "seccomp" / st_b["localhostProfile"]).exists() for n in NODES),
        what="team-b files removed",
    )
    for node in NODES:
        assert (world.roots[node] / "seccomp" / st_a["localhostProfile"]).exists()


async def test_node_deleted_blocks_nothing(world: World) -> None:
    cluster = world.cluster
    await cluster.apply_profile(DENY_MKDIR)
    await world.wait_status("demo", "deny-mkdir", "ready", phase=c.PHASE_INSTALLED, ready="3/3")
    await cluster.stop_role("agent/node-3")
    await cluster.delete_node("node-3")
    await world.wait_status("demo", "deny-mkdir", "2/2", phase=c.PHASE_INSTALLED, ready="2/2", desiredNodes=2)

    async def report_gone() -> bool:
        return await cluster.get_node_status("node-3") is None

    await eventually(report_gone, what="the deleted node's report is removed")
    await cluster.delete_profile("demo", "deny-mkdir")

    async def gone() -> bool:
        return await cluster.get_profile("demo", "deny-mkdir") is None

    await eventually(gone, what="deletion completes without the deleted node")


async def test_policy_marks_existing_profiles_and_never_deletes_them(world: World) -> None:
    """A SeccompPolicy created after the profiles: they are marked, still installed."""
    cluster = world.cluster
    allow_all = {
        "metadata": {"name": "allow-all", "namespace": "demo"},
        "spec": {"defaultAction": "SCMP_ACT_ALLOW"},
    }
    allow_bpf = {
        "metadata": {"name": "allow-bpf", "namespace": "demo"},
        "spec": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "syscalls": [{"action": "SCMP_ACT_ALLOW", "names": ["bpf", "read", "write", "exit_group"]}],
        },
    }
    compliant = {
        "metadata": {"name": "compliant", "namespace": "demo"},
        "spec": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "syscalls": [{"action": "SCMP_ACT_ALLOW", "names": ["read", "write", "exit_group"]}],
        },
    }
    for body in (allow_all, allow_bpf, compliant):
        await cluster.apply_profile(body)
    await world.wait_status("demo", "allow-bpf", "ready", phase=c.PHASE_INSTALLED, ready="3/3")
    await cluster.create(
        f"/apis/{c.GROUP}/{c.VERSION}/seccomppolicies",
        {
            "apiVersion": c.API_VERSION,
            "kind": "SeccompPolicy",
            "metadata": {"name": "no-high-risk"},
            "spec": {
                "namespaces": ["demo"],
                "denyAllowAllDefault": True,
                "deniedSyscalls": ["bpf", "ptrace"],
            },
        },
    )

    async def violation(name: str) -> dict[str, Any] | None:
        st = await world.status("demo", name)
        conds = {cd["type"]: cd for cd in st.get("conditions") or []}
        cond = conds.get("PolicyViolation")
        return cond if cond and cond["status"] == "True" else None

    cond = await eventually(lambda: violation("allow-all"), what="allow-all marked")
    assert "no-high-risk" in cond["message"]
    cond = await eventually(lambda: violation("allow-bpf"), what="allow-bpf marked")
    assert "bpf" in cond["message"]
    st = await world.status("demo", "compliant")
    assert {cd["type"]: cd["status"] for cd in st["conditions"]}.get("PolicyViolation") == "False"
    # marked, not deleted: the files stay on every node
    assert all(v is not None for v in world.contents("demo", "allow-bpf").values())
