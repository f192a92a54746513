"""Real-world cases, status and node parts, through the controller and three agents.

Each case is read in place from ``../shared/cases``.  The rendering parts of the
same cases are in test_cases_rendering.py; here we check what the cluster shows:
which profiles are refused (status Invalid, no file on any node), which are
installed (file on every node equal to the case's expected JSON), and the status
facts the cases ask for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from seccomp_operator import constants as c
from seccomp_operator.devcluster import DevCluster
from tests.cluster import NODES, World, condition
from tests.conftest import CASES
from tests.polling import eventually

pytestmark = pytest.mark.integration


def docs(case: str) -> dict[str, dict[str, Any]]:
    """The SeccompProfile documents of a case's input.cr.yaml, by name."""
    text = (CASES / case / "input.cr.yaml").read_text()
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all(text) if d}


async def apply_all(world: World, case: str) -> dict[str, dict[str, Any]]:
    found = docs(case)
    for doc in found.values():
        await world.cluster.apply_profile(doc)
    return found


async def settled(world: World, ns: str, name: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        st = await world.status(ns, name)
        return st if st.get("phase") in (c.PHASE_INSTALLED, c.PHASE_INVALID) else None

    result: dict[str, Any] = await eventually(probe, what=f"{ns}/{name} settled")
    return result


def installed_json(world: World, ns: str, name: str) -> Any:
    """The JSON every node holds for the profile (asserting all nodes agree)."""
    contents = world.contents(ns, name)
    assert None not in contents.values(), contents
    assert len(set(contents.values())) == 1
    return json.loads(next(iter(contents.values())) or b"")


def error_paths(status: dict[str, Any]) -> list[str]:
    return [f["path"] for f in status.get("findings") or [] if f["severity"] == "error"]


async def test_case_004_errnoret_string_type(world: World) -> None:
    case = "004-errnoret-string-type"
    await apply_all(world, case)
    good = await settled(world, "demo", "deny-keyring")
    assert good["phase"] == c.PHASE_INSTALLED
    expected = json.loads((CASES / case / "expected.deny-keyring.json").read_text())
    assert installed_json(world, "demo", "deny-keyring") == expected  # numbers, not strings
    bad = await settled(world, "demo", "bad-errno")
    assert bad["phase"] == c.PHASE_INVALID
    # one message per problem: ENOSYS as a string (suggest 38), errno on ALLOW, 65537
    assert error_paths(bad) == [f"spec.syscalls[{i}].errnoRet" for i in range(3)]
    messages = " ".join(f["message"] + f["hint"] for f in bad["findings"])
    assert "38" in messages and "65535" in messages
    assert condition(bad, c.COND_INVALID)["status"] == "True"
    assert world.contents("demo", "bad-errno") == {n: None for n in NODES}


async def test_case_005_default_errnoret(world: World) -> None:
    case = "005-default-errnoret-enosys"
    await apply_all(world, case)
    await settled(world, "demo", "web-enosys")
    expected = json.loads((CASES / case / "expected.web-enosys.json").read_text())
    written = installed_json(world, "demo", "web-enosys")
    assert written == expected
    assert isinstance(written["defaultErrnoRet"], int)
    assert "defaultErrno" not in written  # CRI-O-only string forms are never written
    assert all("errno" not in rule for rule in written["syscalls"])
    eperm = await settled(world, "demo", "web-eperm")
    assert eperm["phase"] == c.PHASE_INSTALLED  # valid, installed, but with the warning
    warnings = [f for f in eperm["findings"] if f["severity"] == "warning"]
    assert any("openat2" in f["message"] and "clone3" in f["message"] for f in warnings)
    bad = await settled(world, "demo", "bad-default-errno")
    assert bad["phase"] == c.PHASE_INVALID
    assert "spec.defaultErrnoRet" in error_paths(bad)
    assert world.contents("demo", "bad-default-errno") == {n: None for n in NODES}


async def test_case_020_empty_names_deny_all(world: World) -> None:
    case = "020-empty-names-deny-all"
    await apply_all(world, case)
    outcomes = (CASES / case / "expected.outcomes.txt").read_text()
    verdicts = {
        line.split()[1]: line.split()[2]
        for line in outcomes.splitlines()
        if line[:2] in ("a)", "b)", "c)", "d)")
    }
    assert verdicts == {
        "generated-empty": "REFUSED",
        "kill-all": "ACCEPTED",
        "profile-block": "ACCEPTED",
        "allow-empty-deny": "REFUSED",
    }
    for name in ("generated-empty", "allow-empty-deny"):  # a) and d): REFUSED
        st = await settled(world, "demo", name)
        assert st["phase"] == c.PHASE_INVALID
        assert "spec.syscalls[0].names" in error_paths(st)
        assert world.contents("demo", name) == {n: None for n in NODES}
    for name, words in (("kill-all", "killed"), ("profile-block", "cannot start")):  # b), c): warnings
        st = await settled(world, "demo", name)
        assert st["phase"] == c.PHASE_INSTALLED
        assert any(words in f["message"] for f in st["findings"] if f["severity"] == "warning"), st[
            "findings"
        ]
    assert installed_json(world, "demo", "profile-block") == {"defaultAction": "SCMP_ACT_ERRNO"}


async def test_case_016_status_populated_with_unhealthy_agents(tmp_path: Path) -> None:
    case = CASES / "016-status-never-populated"
    state = yaml.safe_load((case / "cluster-state.yaml").read_text())
    expected = yaml.safe_load((case / "expected.status.yaml").read_text())["status"]
    profile = yaml.safe_load((case / "input.cr.yaml").read_text())
    async with DevCluster() as cluster:
        await cluster.add_namespace(profile["metadata"]["namespace"])
        await cluster.start_controller(status_interval=0.1)
        for node in state["nodes"]:
            await cluster.add_node(node["name"])
            if node["agent"] == "running":
                root = tmp_path / node["name"]
                root.mkdir()
                await cluster.start_agent(node["name"], str(root))
            elif node["agent"] == "crashlooping":
                await cluster.set_agent_pod(node["name"], ready=False, reason="CrashLoopBackOff")
        await cluster.apply_profile(profile)
        ns, name = profile["metadata"]["namespace"], profile["metadata"]["name"]

        async def probe() -> dict[str, Any] | None:
            body = await cluster.get_profile(ns, name) or {}
            st = body.get("status") or {}
            return st if st.get("installedNodes") == expected["installed"] else None

        st = await eventually(probe, what="status with 1 installed node")
    assert st["phase"] == expected["phase"]
    assert st["localhostProfile"] == expected["localhostProfile"]
    assert st["desiredNodes"] == expected["desired"]
    assert st["ready"] == f"{expected['installed']}/{expected['desired']}"
    listed = {n["name"]: n for n in st["notReadyNodes"]}
    for node in expected["nodes"]:
        if node["state"] == "Installed":
            assert node["name"] not in listed
            continue
        assert listed[node["name"]]["state"] == node["state"] == c.NODE_UNKNOWN
    assert "CrashLoopBackOff" in listed["node-2"]["message"]
    assert "no node agent" in listed["node-3"]["message"]
    ready = condition(st, "Ready")
    exp_ready = expected["conditions"][0]
    assert (ready["status"], ready["reason"]) == (exp_ready["status"], exp_ready["reason"])
    assert "1/3" in ready["message"] and "node-2" in ready["message"] and "node-3" in ready["message"]
