"""The opt-in pod check: pods that reference seccomp-operator profiles that are missing or not Ready.

Two layers: the pure decision (:mod:`seccomp_operator.pod_admission`: pod + lookup -> problems)
and the two Kopf handlers (warn, strict) reached through the controller's real HTTPS webhook
server with AdmissionReviews, against a real :class:`~seccomp_operator.controller.Controller`
whose status loop computed the profiles' statuses from node reports.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from seccomp_operator import constants as c
from seccomp_operator import controller_handlers, pod_admission
from seccomp_operator.controller import Controller, ControllerConfig
from seccomp_operator.pod_admission import ProfileState
from tests.webhooks import POD_RESOURCE, admission_registered, make_certificate, review, webhook_client

# --- pods ------------------------------------------------------------------------------------


def localhost(path: str) -> dict[str, Any]:
    return {"seccompProfile": {"type": "Localhost", "localhostProfile": path}}


def ours(ns: str, name: str) -> str:
    return f"{c.MANAGED_SUBDIR}/{ns}/{name}{c.PROFILE_SUFFIX}"


def pod(
    *,
    pod_profile: str | None = None,
    containers: Mapping[str, str | None] | None = None,
    init: Mapping[str, str | None] | None = None,
    ephemeral: Mapping[str, str | None] | None = None,
    namespace: str = "apps",
) -> dict[str, Any]:
    """A Pod as a ReplicaSet creates it (``generateName``, no name); profile paths per container."""

    def items(named: Mapping[str, str | None] | None) -> list[dict[str, Any]]:
        out = []
        for name, path in (named or {}).items():
            item: dict[str, Any] = {"name": name, "image": "busybox"}
            if path is not None:
                item["securityContext"] = localhost(path)
            out.append(item)
        return out

    spec: dict[str, Any] = {"containers": items(containers or {"app": None})}
    if pod_profile is not None:
        spec["securityContext"] = localhost(pod_profile)
    if init:
        spec["initContainers"] = items(init)
    if ephemeral:
        spec["ephemeralContainers"] = items(ephemeral)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "web-7d9f-", "namespace": namespace, "labels": {"app": "web"}},
        "spec": spec,
    }


def lookup_of(states: Mapping[str, ProfileState]) -> pod_admission.Lookup:
    return states.get


READY = ProfileState(ready=True, phase=c.PHASE_INSTALLED, ready_nodes="3/3", reason=c.REASON_ALL_INSTALLED)
ROLLING = ProfileState(
    ready=False, phase=c.PHASE_PROGRESSING, ready_nodes="2/3", reason=c.REASON_NODES_NOT_INSTALLED
)


# --- the pure decision -------------------------------------------------------------------------


def test_every_place_is_checked_and_named() -> None:
    p = pod(
        pod_profile=ours("apps", "sandbox"),
        containers={"app": ours("apps", "web"), "sidecar": ours("shared", "base")},
        init={"setup": ours("apps", "init")},
        ephemeral={"debugger": ours("apps", "debug")},
    )
    problems = pod_admission.check_pod(p, lookup_of({"shared/base": READY, "apps/init": ROLLING}))
    assert [(str(x.reference.where), x.kind, x.key) for x in problems] == [
        ("spec.securityContext.seccompProfile.localhostProfile", c.POD_PROBLEM_MISSING, "apps/sandbox"),
        (
            'spec.containers[0].securityContext.seccompProfile.localhostProfile (container "app")',
            c.POD_PROBLEM_MISSING,
            "apps/web",
        ),
        (
            'spec.initContainers[0].securityContext.seccompProfile.localhostProfile (init container "setup")',
            c.POD_PROBLEM_NOT_READY,
            "apps/init",
        ),
        (
            "spec.ephemeralContainers[0].securityContext.seccompProfile.localhostProfile "
            '(ephemeral container "debugger")',
            c.POD_PROBLEM_MISSING,
            "apps/debug",
        ),
    ]
    assert problems[0].detail == "SeccompProfile apps/sandbox does not exist"
    assert problems[2].detail == (
        "SeccompProfile apps/init is not Ready "
        "(phase Progressing, ready on 2/3 nodes, reason NodesNotInstalled)"
    )


def test_only_localhost_profiles_in_the_managed_directory_count() -> None:
    p = pod(
        containers={
            "own-file": "profiles/audit.json",  # a Localhost file of someone else
            "agent-self": f"{c.SELF_PROFILE_SUBDIR}/agent.json",  # a sibling directory, not ours
            "plain": None,
        },
        init={"normalised": "./seccomp-operator//apps/web.json"},  # the kubelet opens our file
    )
    p["spec"]["containers"][2]["securityContext"] = {"seccompProfile": {"type": "RuntimeDefault"}}
    # The legacy annotation is not read by the kubelet any more: not checked.
    p["metadata"]["annotations"] = {
        "container.seccomp.security.alpha.kubernetes.io/app": "localhost/seccomp-operator/apps/gone.json"
    }
    problems = pod_admission.check_pod(p, lookup_of({}))
    assert [(x.reference.path, x.key) for x in problems] == [
        ("spec.initContainers[0].securityContext.seccompProfile.localhostProfile", "apps/web")
    ]
    assert pod_admission.check_pod(p, lookup_of({"apps/web": READY})) == []


def test_a_path_no_profile_can_have_is_reported() -> None:
    p = pod(containers={"flat": "seccomp-operator/web.json", "no-suffix": "seccomp-operator/apps/web"})
    problems = pod_admission.check_pod(p, lookup_of({"apps/web": READY}))
    assert [(x.kind, x.key) for x in problems] == [(c.POD_PROBLEM_MALFORMED, None)] * 2
    assert str(problems[0]).endswith(
        '"seccomp-operator/web.json" is not a file seccomp-operator writes '
        "(seccomp-operator/<namespace>/<name>.json)"
    )


def test_a_ready_profile_of_another_namespace_is_fine() -> None:
    p = pod(namespace="team-a", containers={"app": ours("platform", "baseline")})
    assert pod_admission.check_pod(p, lookup_of({"platform/baseline": READY})) == []


def test_state_from_the_controller_status() -> None:
    def status(ready: str, observed: int, phase: str, nodes: str) -> dict[str, Any]:
        cond = {"type": c.COND_READY, "status": ready, "reason": "R", "observedGeneration": observed}
        return {"phase": phase, "ready": nodes, "conditions": [{"type": c.COND_PROGRESSING}, cond]}

    ready = pod_admission.state_from_status(status("True", 4, c.PHASE_INSTALLED, "3/3"), generation=4)
    assert ready == ProfileState(True, c.PHASE_INSTALLED, "3/3", "R")
    stale = pod_admission.state_from_status(status("True", 3, c.PHASE_INSTALLED, "3/3"), generation=4)
    assert not stale.ready and stale.reason == "status describes generation 3, the spec is at 4"
    deleting = pod_admission.state_from_status(status("True", 4, c.PHASE_INSTALLED, "3/3"), deleting=True)
    assert not deleting.ready and deleting.phase == c.PHASE_TERMINATING
    disabled = pod_admission.state_from_status(status("False", 4, c.PHASE_DISABLED, "0/3"), generation=4)
    assert not disabled.ready and disabled.describe() == "phase Disabled, reason R"
    for nothing in (None, {}, {"conditions": "garbage", "phase": 3}):
        empty = pod_admission.state_from_status(nothing)
        assert not empty.ready and empty.describe() == "no status yet"


def test_adding_ephemeral_containers_checks_only_the_new_ones() -> None:
    before = pod(
        pod_profile=ours("apps", "gone"),
        containers={"app": ours("apps", "gone")},
        ephemeral={"old-debugger": ours("apps", "gone")},
    )
    after = copy.deepcopy(before)
    after["spec"]["ephemeralContainers"] += [
        {"name": "own", "image": "busybox", "securityContext": localhost(ours("apps", "debug"))},
        {"name": "inherits", "image": "busybox"},
        {
            "name": "runtime-default",
            "image": "busybox",
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        },
    ]
    problems = pod_admission.check_pod(after, lookup_of({}), old=before)
    assert [x.reference.where for x in problems] == [
        "spec.ephemeralContainers[1].securityContext.seccompProfile.localhostProfile "
        '(ephemeral container "own")',
        'spec.securityContext.seccompProfile.localhostProfile (inherited by ephemeral container "inherits")',
    ]
    assert [x.key for x in problems] == ["apps/debug", "apps/gone"]
    assert pod_admission.check_pod(before, lookup_of({}), old=before) == []


def test_refusal_message_and_warnings_fit_their_limits() -> None:
    many = pod(containers={f"c{i}": ours("apps", f"p{i}") for i in range(60)})
    problems = pod_admission.check_pod(many, lookup_of({}))
    message = pod_admission.refusal_message(problems)
    assert message.startswith(
        "seccomp-operator (seccomp-operator.dev/pod-admission=strict): "
        "60 seccomp profile references cannot be used: "
    )
    assert 'spec.containers[19].securityContext.seccompProfile.localhostProfile (container "c19")' in message
    assert "containers[20]" not in message and message.endswith("; and 40 more")
    texts = pod_admission.warning_texts(problems)
    assert texts[0] == (
        "seccomp-operator: spec.containers[0].securityContext.seccompProfile.localhostProfile "
        '(container "c0"): SeccompProfile apps/p0 does not exist'
    )
    assert all(len(t) <= pod_admission.WARNING_MAX_CHARS for t in texts)
    assert sum(len(t.encode()) for t in texts) <= pod_admission.WARNINGS_MAX_BYTES
    assert texts[-1].startswith("and ") and texts[-1].endswith(" more warnings")
    assert len(texts) - 1 + int(texts[-1].split()[1]) == 60


# --- through the webhook server, against a real controller ---------------------------------------


class _QuietApi:
    """The controller's API seam: status writes and events succeed and are kept."""

    def __init__(self) -> None:
        self.statuses: dict[str, Mapping[str, Any]] = {}

    async def list_nodes(self) -> list[dict[str, Any]]:
        return []

    async def list_agent_pods(self) -> list[dict[str, Any]]:
        return []

    async def list_node_statuses(self) -> list[dict[str, Any]]:
        return []

    async def list_pods(self) -> list[dict[str, Any]]:
        return []

    async def patch_profile_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self.statuses[f"{namespace}/{name}"] = status

    async def delete_node_status(self, name: str) -> None:
        return None

    async def post_event(self, involved: Mapping[str, Any], **_: Any) -> None:
        return None


NODES = ("node-1", "node-2")
SPEC = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO", "names": ["mkdir"]}]}


def profile_body(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.PROFILE_KIND,
        "metadata": {"namespace": ns, "name": name, "generation": 1, "uid": f"uid-{name}"},
        "spec": SPEC,
    }


async def running_controller() -> Controller:
    """A controller that has seen two nodes with ready agents and three profiles:

    ``platform/baseline`` installed on both nodes (Ready), ``apps/web`` on one of two
    (Progressing), ``apps/off`` Disabled.  Statuses computed by its own status loop.
    """
    core = Controller(ControllerConfig(status_interval=0.0), _QuietApi())
    for node in NODES:
        core.observe_node(None, {"metadata": {"name": node}})
        core.observe_agent_pod(
            None,
            {
                "metadata": {"namespace": "seccomp-operator", "name": f"agent-{node}"},
                "spec": {"nodeName": node},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            },
        )
    disabled = profile_body("apps", "off")
    disabled["spec"] = {**SPEC, "state": c.STATE_DISABLED}
    for body in (profile_body("platform", "baseline"), profile_body("apps", "web"), disabled):
        core.observe_profile(None, body)
    expected = {key: core.verdict(t.snap).content_hash for key, t in core.profiles.items()}

    def installed(*keys: str) -> dict[str, Any]:
        return {k: {"state": c.NODE_INSTALLED, "contentHash": expected[k]} for k in keys}

    core.observe_report(
        None,
        {"metadata": {"name": "node-1"}, "status": {"profiles": installed("platform/baseline", "apps/web")}},
    )
    core.observe_report(
        None, {"metadata": {"name": "node-2"}, "status": {"profiles": installed("platform/baseline")}}
    )
    await core.flush()
    return core


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"), "tls")


@pytest.fixture
async def post(certificate: tuple[Path, Path]) -> AsyncIterator[Any]:
    """``post(handler_id, review)`` against the webhook server, memo.core a running controller."""
    with admission_registered():
        memo = SimpleNamespace(core=await running_controller())
        async with webhook_client(certificate, memo) as send:
            yield send


def pod_review(
    p: dict[str, Any], old: dict[str, Any] | None = None, *, sub: str | None = None
) -> dict[str, Any]:
    return review("CREATE" if old is None else "UPDATE", p, old, resource=POD_RESOURCE, subresource=sub)


MIXED = pod(
    containers={"app": ours("apps", "web"), "sidecar": ours("platform", "baseline")},
    init={"setup": ours("apps", "missing")},
    ephemeral=None,
)


async def test_the_controller_statuses_are_what_the_check_reads() -> None:
    core = await running_controller()
    assert {k: t.status["phase"] for k, t in core.profiles.items()} == {
        "platform/baseline": c.PHASE_INSTALLED,
        "apps/web": c.PHASE_PROGRESSING,
        "apps/off": c.PHASE_DISABLED,
    }


async def test_warn_mode_admits_with_one_warning_per_problem(post: Any) -> None:
    answer = await post(c.WEBHOOK_PATH_POD_WARN, pod_review(MIXED))
    assert answer["allowed"] is True and "status" not in answer
    assert answer["warnings"] == [
        "seccomp-operator: spec.containers[0].securityContext.seccompProfile.localhostProfile "
        '(container "app"): SeccompProfile apps/web is not Ready (phase Progressing, ready on 1/2 nodes, '
        "reason NodesNotInstalled)",
        "seccomp-operator: spec.initContainers[0].securityContext.seccompProfile.localhostProfile "
        '(init container "setup"): SeccompProfile apps/missing does not exist',
    ]


async def test_strict_mode_refuses_naming_every_container_profile_and_reason(post: Any) -> None:
    disabled = copy.deepcopy(MIXED)
    disabled["spec"]["securityContext"] = localhost(ours("apps", "off"))
    answer = await post(c.WEBHOOK_PATH_POD_STRICT, pod_review(disabled))
    assert answer["allowed"] is False and "warnings" not in answer
    assert answer["status"]["code"] == 403
    message = answer["status"]["message"]
    assert message.startswith(
        "seccomp-operator (seccomp-operator.dev/pod-admission=strict): "
        "3 seccomp profile references cannot be used: "
    )
    for part in (
        "spec.securityContext.seccompProfile.localhostProfile: SeccompProfile apps/off is not Ready "
        "(phase Disabled, reason Disabled)",
        'spec.containers[0].securityContext.seccompProfile.localhostProfile (container "app"): '
        "SeccompProfile apps/web is not Ready (phase Progressing, ready on 1/2 nodes",
        'spec.initContainers[0].securityContext.seccompProfile.localhostProfile (init container "setup"): '
        "SeccompProfile apps/missing does not exist",
    ):
        assert part in message
    assert "sidecar" not in message and "platform/baseline" not in message


async def test_pods_whose_profiles_are_ready_pass_in_both_modes(post: Any) -> None:
    good = pod(namespace="team-a", containers={"app": ours("platform", "baseline"), "plain": None})
    for path in (c.WEBHOOK_PATH_POD_WARN, c.WEBHOOK_PATH_POD_STRICT):
        answer = await post(path, pod_review(good))
        assert answer["allowed"] is True and "warnings" not in answer and "status" not in answer


async def test_kubectl_debug_adds_an_ephemeral_container(post: Any) -> None:
    running = pod(containers={"app": ours("platform", "baseline")})
    bad = copy.deepcopy(running)
    bad["spec"]["ephemeralContainers"] = [
        {"name": "debugger-x1", "image": "busybox", "securityContext": localhost(ours("apps", "nope"))}
    ]
    refused = await post(
        c.WEBHOOK_PATH_POD_STRICT, pod_review(bad, running, sub=c.EPHEMERAL_CONTAINERS_SUBRESOURCE)
    )
    assert refused["allowed"] is False
    assert (
        "spec.ephemeralContainers[0].securityContext.seccompProfile.localhostProfile "
        '(ephemeral container "debugger-x1")' in refused["status"]["message"]
    )
    # An old container's problem is not the new container's business: only new ones are checked.
    legacy = pod(containers={"app": ours("apps", "missing")})
    added = copy.deepcopy(legacy)
    added["spec"]["ephemeralContainers"] = [
        {
            "name": "debugger-x2",
            "image": "busybox",
            "securityContext": localhost(ours("platform", "baseline")),
        }
    ]
    allowed = await post(
        c.WEBHOOK_PATH_POD_STRICT, pod_review(added, legacy, sub=c.EPHEMERAL_CONTAINERS_SUBRESOURCE)
    )
    assert allowed["allowed"] is True and "warnings" not in allowed
    # Other pod updates (labels, image) are not the check's business either.
    relabelled = copy.deepcopy(legacy)
    relabelled["metadata"]["labels"]["tier"] = "front"
    other = await post(c.WEBHOOK_PATH_POD_STRICT, pod_review(relabelled, legacy))
    assert other["allowed"] is True and "warnings" not in other


async def test_without_the_controller_snapshots_pods_pass_with_a_warning(
    certificate: tuple[Path, Path],
) -> None:
    """Like failurePolicy Ignore when the controller is down: availability first."""
    with admission_registered():
        async with webhook_client(certificate, SimpleNamespace()) as send:
            answer = await send(c.WEBHOOK_PATH_POD_STRICT, pod_review(MIXED))
    assert answer["allowed"] is True
    assert answer["warnings"] == [
        "seccomp-operator could not check the pod's seccomp profiles: the controller is starting"
    ]


def test_pod_handlers_on_the_controller_registry() -> None:
    with admission_registered() as admission:
        handlers = {str(h.id): h for h in controller_handlers.registry._webhooks.get_all_handlers()}
        assert admission.POD_HANDLER_IDS == {
            c.POD_ADMISSION_WARN: c.WEBHOOK_PATH_POD_WARN,
            c.POD_ADMISSION_STRICT: c.WEBHOOK_PATH_POD_STRICT,
        }
    for handler_id in (c.WEBHOOK_PATH_POD_WARN, c.WEBHOOK_PATH_POD_STRICT):
        handler = handlers[handler_id]
        assert set(handler.operations or ()) == {"CREATE", "UPDATE"}
        assert handler.subresource == "*" and handler.ignore_failures is True
        assert handler.selector is not None and handler.selector.select([POD_RESOURCE]) == {POD_RESOURCE}
        assert handler.labels is None  # no objectSelector: the namespace label chooses
