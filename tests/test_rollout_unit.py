"""Pure rollout aggregation: report timeout and deletion waiting for pods (no cluster)."""

from __future__ import annotations

from seccomp_operator import constants as c
from seccomp_operator import rollout

HASH = "a" * 64


def views() -> list[rollout.NodeView]:
    ready = rollout.AgentInfo(ready=True)
    done = {"state": "Ready", "profiles": {"ns/p": {"state": c.NODE_INSTALLED, "contentHash": HASH}}}
    return [
        rollout.NodeView("n1", ready, done),
        rollout.NodeView("n2", ready, {"state": "Ready", "profiles": {}}),
        rollout.NodeView("n3", ready, None),
    ]


def status(**kw: object) -> dict[str, object]:
    args: dict[str, object] = {
        "namespace": "ns",
        "name": "p",
        "generation": 1,
        "enabled": True,
        "deleting": False,
        "verdict": rollout.Verdict(HASH),
        "nodes": views(),
        "previous": None,
        "now": "2026-01-01T00:00:00Z",
        "localhost_profile": "seccomp-operator/ns/p.json",
    }
    args.update(kw)
    return rollout.profile_status(**args)  # type: ignore[arg-type]


def test_lagging_nodes_become_unknown_after_the_timeout() -> None:
    st = status()
    assert st["phase"] == c.PHASE_PROGRESSING
    st = status(overdue={"n2": 120.0, "n3": 120.0, "n1": 120.0})
    assert st["phase"] == c.PHASE_PENDING  # nobody is working on it any more
    nodes = {n["name"]: n for n in st["notReadyNodes"]}  # type: ignore[union-attr]
    assert set(nodes) == {"n2", "n3"}  # n1 has the current hash: overdue does not apply
    for n in nodes.values():
        assert (n["state"], n["reason"]) == (c.NODE_UNKNOWN, c.REASON_REPORT_TIMEOUT)
        assert n["message"] == "agent has not reported within 120s"
    assert st["ready"] == "1/3" and st["pendingNodes"] == 2


def test_deletion_waiting_for_pods_is_capped_and_named() -> None:
    pods = [f"shop/api-{i:02d}" for i in range(25)]
    st = status(deleting=True, pods=pods)
    assert st["phase"] == c.PHASE_TERMINATING
    assert st["referencingPods"] == pods[:20] and st["referencingPodCount"] == 25
    assert st["removalAllowed"] is False
    ready = next(cd for cd in st["conditions"] if cd["type"] == c.COND_READY)  # type: ignore[union-attr]
    assert "25 pod(s)" in ready["message"] and "shop/api-00" in ready["message"]
    st = status(deleting=True, removal_allowed=True)
    assert st["removalAllowed"] is True and st["referencingPodCount"] == 0
    assert status(removal_allowed=True)["removalAllowed"] is False  # only while deleting
