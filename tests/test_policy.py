"""The policy guard: SeccompPolicy refuses allow-all profiles and high-risk syscalls.

Pure function tests of :mod:`seccomp_operator.policy` (what admission and the
controller call), the CRD's schema and CEL rules, and the SeccompPolicy CRD checked
like the other CRDs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from seccomp_operator import policy
from seccomp_operator.findings import Severity
from seccomp_operator.policy import PolicyError, check, parse_policy, violations
from tests.test_manifests import REPO, _cel_program, _strict, _walk

POLICY_CRD = REPO / "crds" / "seccomppolicies.yaml"

ALLOW, ERRNO, LOG, NOTIFY = "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"


def body(name: str = "tenants", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompPolicy",
            "metadata": {"name": name}, "spec": spec}  # fmt: skip


TENANTS = parse_policy(
    body(
        namespaces=["team-a"],
        denyAllowAllDefault=True,
        deniedSyscalls=list(policy.HIGH_RISK_SYSCALLS),
    )
)

ALLOW_ALL = {"defaultAction": ALLOW}
ALLOWS_BPF = {
    "defaultAction": ERRNO,
    "syscalls": [
        {"names": ["read", "write"], "action": ALLOW},
        {"names": ["bpf", "getpid"], "action": ALLOW},
    ],
}
GOOD = {"defaultAction": ERRNO, "syscalls": [{"names": ["read", "write", "exit_group"], "action": ALLOW}]}


# --- the acceptance test: allow-all and bpf are refused, with the reason ------------------------


def test_policy_refuses_an_allow_all_profile_and_one_that_allows_bpf() -> None:
    found = check(ALLOW_ALL, "team-a", [TENANTS])
    assert found and all(f.severity is Severity.ERROR for f in found)
    message = policy.admission_message(found)
    assert 'SeccompPolicy "tenants"' in message
    assert "allow every syscall by default (SCMP_ACT_ALLOW)" in message
    assert found[0].path == "spec.defaultAction"
    # allow-all also lets every denied syscall through: each is named
    named = {f.message.split("allow the syscall ")[1].split(":")[0] for f in found[1:]}
    assert named == set(policy.HIGH_RISK_SYSCALLS)

    found = check(ALLOWS_BPF, "team-a", [TENANTS])
    assert len(found) == 1
    (f,) = found
    assert f.severity is Severity.ERROR
    assert f.path == "spec.syscalls[1]"
    assert 'SeccompPolicy "tenants"' in f.message and 'namespace "team-a"' in f.message
    assert "allow the syscall bpf" in f.message and "SCMP_ACT_ALLOW" in f.message
    assert "bpf" in policy.admission_message(found)


def test_compliant_profile_and_other_namespaces_pass() -> None:
    assert check(GOOD, "team-a", [TENANTS]) == []
    assert check(ALLOW_ALL, "team-b", [TENANTS]) == []  # not covered
    assert check(ALLOWS_BPF, "team-b", [TENANTS]) == []
    assert check("not a mapping", "team-a", [TENANTS]) == []  # the parser reports that
    assert check(ALLOWS_BPF, "team-a", []) == []


@pytest.mark.parametrize(
    ("spec", "path", "words"),
    [
        # conditional allow still lets some calls through
        (
            {"defaultAction": ERRNO, "syscalls": [{"names": ["ptrace"], "action": ALLOW,
              "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
            "spec.syscalls[0]", "conditionally, SCMP_ACT_ALLOW",
        ),
        # LOG allows
        ({"defaultAction": ERRNO, "syscalls": [{"names": ["unshare"], "action": LOG}]},
         "spec.syscalls[0]", LOG),
        # NOTIFY delegates to a listener
        (
            {"defaultAction": ERRNO, "listenerPath": "/run/a.sock",
             "syscalls": [{"names": ["mount"], "action": NOTIFY}]},
            "spec.syscalls[0]", "the listener decides",
        ),
    ],
    ids=["conditional-allow", "log", "notify"],
)  # fmt: skip
def test_denied_syscall_let_through_by_a_rule(spec: dict[str, Any], path: str, words: str) -> None:
    (f,) = check(spec, "team-a", [TENANTS])
    assert f.path == path and words in f.message


def test_allowing_default_is_fine_when_every_denied_syscall_is_refused_unconditionally() -> None:
    p = parse_policy(body(deniedSyscalls=["bpf", "ptrace"]))
    spec = {"defaultAction": ALLOW, "syscalls": [{"names": ["bpf", "ptrace"], "action": ERRNO}]}
    assert check(spec, "any", [p]) == []
    # a conditional refusal leaves other argument values allowed
    spec["syscalls"] = [
        {"names": ["bpf"], "action": ERRNO},
        {"names": ["ptrace"], "action": ERRNO, "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
    ]
    (f,) = check(spec, "any", [p])
    assert f.path == "spec.defaultAction" and "ptrace" in f.message and "no unconditional rule" in f.message


def test_allowed_actions() -> None:
    p = parse_policy(body(allowedActions=[ERRNO, ALLOW, "SCMP_ACT_KILL_PROCESS"]))
    spec = {"defaultAction": LOG, "syscalls": [{"names": ["read"], "action": ALLOW},
                                             {"names": ["mkdir"], "action": "SCMP_ACT_TRAP"}]}  # fmt: skip
    found = check(spec, "x", [p])
    assert [(f.path, f.message.split("use the action ")[1]) for f in found] == [
        ("spec.defaultAction", LOG),
        ("spec.syscalls[1].action", "SCMP_ACT_TRAP"),
    ]
    assert "allowed actions: SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS" in found[0].hint


def test_base_profile_rules_and_default_count() -> None:
    bases = {
        "lenient": {"defaultAction": ALLOW},
        "with-bpf": {"defaultAction": ERRNO, "syscalls": [{"names": ["bpf"], "action": ALLOW}]},
        "chain": {"defaultAction": ERRNO, "baseProfileName": "with-bpf"},
    }
    child = {
        "defaultAction": ERRNO,
        "baseProfileName": "chain",
        "syscalls": [{"names": ["read"], "action": ALLOW}],
    }
    (f,) = check(child, "team-a", [TENANTS], lookup_base=bases.get)
    assert "bpf" in f.message and f.path == "spec.baseProfileName(with-bpf).syscalls[0]"
    # without lookup the own spec alone complies
    assert check(child, "team-a", [TENANTS]) == []
    # a cycle is not followed forever
    cyc = {
        "a": {"defaultAction": ERRNO, "baseProfileName": "b"},
        "b": {"defaultAction": ERRNO, "baseProfileName": "a"},
    }
    assert (
        check({"defaultAction": ERRNO, "baseProfileName": "a"}, "team-a", [TENANTS], lookup_base=cyc.get)
        == []
    )


def test_namespace_selection() -> None:
    sel = parse_policy(
        body(
            namespaceSelector={
                "matchLabels": {"tier": "tenant"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod", "stage"]},
                    {"key": "exempt", "operator": "DoesNotExist"},
                ],
            },
            denyAllowAllDefault=True,
        )
    )
    assert sel.applies_to("a", {"tier": "tenant", "env": "prod"})
    assert not sel.applies_to("a", {"tier": "tenant", "env": "dev"})
    assert not sel.applies_to("a", {"tier": "tenant", "env": "prod", "exempt": "yes"})
    assert not sel.applies_to("a", None)
    not_system = {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}
    by_name_label = parse_policy(body(namespaceSelector={"matchExpressions": [not_system]}))
    assert by_name_label.applies_to("team-a") and not by_name_label.applies_to("kube-system")
    everywhere = parse_policy(body(namespaceSelector={}))
    assert everywhere.applies_to("anything")
    both = parse_policy(body(namespaces=["x"], namespaceSelector={"matchLabels": {"t": "1"}}))
    assert both.applies_to("x") and both.applies_to("y", {"t": "1"}) and not both.applies_to("y")
    assert parse_policy(body()).applies_to("any")


def test_warn_enforcement_gives_warnings() -> None:
    p = parse_policy(body(denyAllowAllDefault=True, enforcement="Warn"))
    (f,) = check(ALLOW_ALL, "x", [p])
    assert f.severity is Severity.WARNING


def test_findings_are_ordered_by_policy_name() -> None:
    a = parse_policy(body("b-second", denyAllowAllDefault=True))
    b = parse_policy(body("a-first", deniedSyscalls=["bpf"]))
    found = check(ALLOW_ALL, "x", [a, b])
    assert [f.message.split('"')[1] for f in found] == ["a-first", "b-second"]


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"denyAllowAllDefault": "yes"}, "denyAllowAllDefault"),
        ({"deniedSyscalls": "bpf"}, "deniedSyscalls must be a list"),
        ({"deniedSyscalls": [1]}, "deniedSyscalls must be a list"),
        ({"namespaceSelector": []}, "label selector"),
        ({"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Has"}]}}, "operator"),
        ({"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}, "must not be empty"),
        ({"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}},
         "must be empty"),
        ({"namespaceSelector": {"matchLabels": {"a": 1}}}, "matchLabels"),
        ({"enforcement": "Audit"}, "Deny or Warn"),
        ({"allowedActions": [None]}, "allowedActions"),
        ({"deniedSyscalls": ["x"] * (policy.MAX_POLICY_ITEMS + 1)}, "at most"),
    ],
)  # fmt: skip
def test_malformed_policies_raise_naming_policy_and_field(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(body("bad", **spec))
    assert "'bad'" in str(info.value) and words in str(info.value)


def test_parse_policies_keeps_the_good_ones_and_lists_problems() -> None:
    good, problems = policy.parse_policies([body("ok"), body("bad", enforcement="x"), {"metadata": {}}])
    assert [p.name for p in good] == ["ok"]
    assert len(problems) == 2 and "without metadata.name" in problems[1]
    with pytest.raises(PolicyError):
        parse_policy({"metadata": {"name": "x"}, "spec": []})


# --- the controller's re-check: marked, not deleted ---------------------------------------------


def test_violations_marks_existing_profiles_that_stop_complying() -> None:
    profiles = [
        ("team-a", "open", ALLOW_ALL),
        ("team-a", "bpf-tool", ALLOWS_BPF),
        ("team-a", "good", GOOD),
        ("team-a", "inherits", {"defaultAction": ERRNO, "baseProfileName": "bpf-tool"}),
        ("team-b", "open", ALLOW_ALL),
    ]
    before = copy.deepcopy(profiles)
    assert violations(profiles, []) == {}
    found = violations(profiles, [TENANTS], {"team-a": {}, "team-b": {}})
    assert sorted(found) == ["team-a/bpf-tool", "team-a/inherits", "team-a/open"]
    assert "bpf" in found["team-a/inherits"][0].message
    assert profiles == before  # nothing changed, nothing removed: the caller only marks
    # a selector policy follows namespace labels: relabelling team-b brings it in
    sel = parse_policy(
        body("labelled", namespaceSelector={"matchLabels": {"tier": "tenant"}}, denyAllowAllDefault=True)
    )
    assert violations(profiles, [sel], {"team-b": {}}) == {}
    assert sorted(violations(profiles, [sel], {"team-b": {"tier": "tenant"}})) == ["team-b/open"]


def test_condition() -> None:
    found = check(ALLOWS_BPF, "team-a", [TENANTS])
    cond = policy.condition(found, generation=3, now="2026-11-29T00:00:00Z")
    assert cond["type"] == "PolicyViolation" and cond["status"] == "True"
    assert cond["reason"] == "PolicyViolation" and "bpf" in cond["message"]
    assert cond["observedGeneration"] == 3
    ok = policy.condition([], generation=3, now="2026-11-29T00:00:00Z")
    assert (ok["status"], ok["reason"]) == ("False", "Compliant")


# --- the CRD -------------------------------------------------------------------------------------


def _crd() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(POLICY_CRD.read_text()) if d]
    assert len(docs) == 1
    return dict(docs[0])


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = _crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_crd_is_listed_documented_bounded_and_cluster_scoped() -> None:
    d = _crd()
    assert d["spec"]["scope"] == "Cluster"
    assert d["metadata"]["name"] == f"{policy.POLICY_PLURAL}.seccomp-operator.dev"
    assert d["spec"]["names"]["kind"] == policy.POLICY_KIND
    schema = _schema()
    assert schema["properties"]["metadata"] == {"type": "object"}
    for where, node in _walk(schema, ""):
        if where == ".metadata":
            continue
        assert node.get("description", "").strip(), f"no description at {where or '<root>'}"
        if node.get("type") == "array":
            assert "items" in node and "maxItems" in node, where
        if node.get("type") == "string" and where.startswith(".spec"):
            assert "maxLength" in node or "enum" in node, where
    spec_props = schema["properties"]["spec"]["properties"]
    assert {
        "namespaces",
        "namespaceSelector",
        "denyAllowAllDefault",
        "deniedSyscalls",
        "allowedActions",
    } <= set(spec_props)
    from seccomp_operator import syscalls

    assert spec_props["allowedActions"]["items"]["enum"] == list(syscalls.ACTIONS)
    kustomization = yaml.safe_load((REPO / "crds" / "kustomization.yaml").read_text())
    assert POLICY_CRD.name in kustomization["resources"]


def _validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(_strict(_schema()))


def test_a_full_policy_is_admitted_and_parses() -> None:
    doc = body(
        namespaces=["team-a"],
        namespaceSelector={"matchLabels": {"tier": "tenant"},
                           "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]},
        denyAllowAllDefault=True,
        deniedSyscalls=list(policy.HIGH_RISK_SYSCALLS),
        allowedActions=[ERRNO, ALLOW, "SCMP_ACT_KILL_PROCESS"],
        enforcement="Deny",
    )  # fmt: skip
    assert list(_validator().iter_errors(doc)) == []
    parsed = parse_policy(doc)
    assert parsed.denied_syscalls == frozenset(policy.HIGH_RISK_SYSCALLS)


@pytest.mark.parametrize(
    "spec",
    [
        {"deniedSyscalls": ["BPF"]},
        {"allowedActions": ["SCMP_ACT_DENY"]},
        {"enforcement": "Audit"},
        {"namespaces": ["Team_A"]},
        {"unknown": True},
    ],
)
def test_crd_schema_refuses_bad_policies(spec: dict[str, Any]) -> None:
    assert list(_validator().iter_errors(body(**spec)))


def cel_eval(rule: str, value: Any) -> bool:
    import celpy

    result = _cel_program(rule).evaluate({"self": celpy.json_to_cel(value)})
    return isinstance(result, celpy.celtypes.BoolType) and bool(result)


def test_crd_cel_rule_on_selector_values() -> None:
    node = _schema()["properties"]["spec"]["properties"]["namespaceSelector"]["properties"][
        "matchExpressions"
    ]
    (rule,) = node["items"]["x-kubernetes-validations"]
    assert cel_eval(rule["rule"], {"key": "a", "operator": "In", "values": ["x"]})
    assert not cel_eval(rule["rule"], {"key": "a", "operator": "In"})
    assert cel_eval(rule["rule"], {"key": "a", "operator": "Exists"})
    assert not cel_eval(rule["rule"], {"key": "a", "operator": "Exists", "values": ["x"]})


def test_policy_module_is_pure() -> None:
    text = Path(policy.__file__).read_text()
    for banned in ("import kopf", "import kubernetes", "pyseccomp", "asyncio"):
        assert banned not in text


# --- the ValidatingAdmissionPolicy binding agents to their own node ----------------------------------

VAP_FILE = REPO / "manifests" / "validating-admission-policy.yaml"
AGENT = "system:serviceaccount:seccomp-operator:seccomp-operator-agent"
NODE_KEY = "authentication.kubernetes.io/node-name"


def _vap_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(VAP_FILE.read_text()) if d]


def test_vap_manifests_validate_for_supported_kubernetes_versions() -> None:
    import kubernetes_validate

    from tests.test_manifests import k8s_versions

    docs = _vap_docs()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ValidatingAdmissionPolicy"] * 2 + ["ValidatingAdmissionPolicyBinding"] * 2
    policies = {d["metadata"]["name"] for d in docs if d["kind"] == "ValidatingAdmissionPolicy"}
    for d in docs:
        for version in k8s_versions():
            kubernetes_validate.validate(d, version, strict=True)
        if d["kind"] == "ValidatingAdmissionPolicyBinding":
            assert d["spec"]["policyName"] in policies and d["spec"]["validationActions"] == ["Deny"]
        else:
            assert d["spec"]["failurePolicy"] == "Fail"


def _cel(expr: str, activation: dict[str, Any]) -> Any:
    import celpy

    return _cel_program(expr).evaluate({k: celpy.json_to_cel(v) for k, v in activation.items()})


def vap_denials(
    name: str, *, user: str, node: str | None, operation: str, obj: Any, old: Any = None
) -> list[str] | None:
    """Evaluate one policy of the file like the API server: None when its matchConditions do
    not match, else the messages of the failed validations (empty: admitted)."""
    (policy_doc,) = [
        d for d in _vap_docs() if d["kind"] == "ValidatingAdmissionPolicy" and d["metadata"]["name"] == name
    ]
    extra = {NODE_KEY: [node]} if node is not None else {}
    request = {"userInfo": {"username": user, "extra": extra}, "operation": operation}
    act: dict[str, Any] = {"request": request, "object": obj, "oldObject": old}
    spec_ = policy_doc["spec"]
    if not all(bool(_cel(m["expression"], act)) for m in spec_.get("matchConditions", [])):
        return None
    variables: dict[str, Any] = {}
    for v in spec_.get("variables", []):
        import celpy

        value = _cel(v["expression"], {**act, "variables": variables})
        variables[v["name"]] = json_of(value, celpy)
    act["variables"] = variables
    return [
        val.get("message") or str(_cel(val["messageExpression"], act))
        for val in spec_["validations"]
        if not bool(_cel(val["expression"], act))
    ]


def json_of(value: Any, celpy: Any) -> Any:
    """A CEL value back as plain JSON (for the variables map)."""
    if isinstance(value, celpy.celtypes.MapType):
        return {str(k): json_of(v, celpy) for k, v in value.items()}
    if isinstance(value, celpy.celtypes.ListType):
        return [json_of(v, celpy) for v in value]
    if isinstance(value, celpy.celtypes.BoolType):
        return bool(value)
    if isinstance(value, celpy.celtypes.IntType):
        return int(value)
    if isinstance(value, celpy.celtypes.StringType):
        return str(value)
    return value


def _report(node: str) -> dict[str, Any]:
    return {
        "apiVersion": "seccomp-operator.dev/v1alpha1",
        "kind": "SeccompNodeStatus",
        "metadata": {"name": node},
    }


@pytest.mark.parametrize("operation", ["CREATE", "UPDATE"])
def test_vap_agent_writes_only_its_own_node_status(operation: str) -> None:
    name = "seccomp-operator-agent-own-node-status"
    old = _report("node-1") if operation == "UPDATE" else None
    ok = vap_denials(name, user=AGENT, node="node-1", operation=operation, obj=_report("node-1"), old=old)
    assert ok == []
    other = _report("node-2")
    denied = vap_denials(name, user=AGENT, node="node-1", operation=operation, obj=other, old=other)
    assert denied == ["an agent may only write the SeccompNodeStatus of its own node node-1"]
    no_node = vap_denials(name, user=AGENT, node=None, operation=operation, obj=_report("node-1"), old=old)
    assert no_node and "carries no node name" in no_node[0]
    # deleting is never the agent's job
    assert vap_denials(name, user=AGENT, node="node-1", operation="DELETE", obj=None, old=_report("node-1"))
    # other identities (controller, garbage collector) are not matched: RBAC governs them
    ctrl = "system:serviceaccount:seccomp-operator:seccomp-operator-controller"
    assert vap_denials(name, user=ctrl, node=None, operation="DELETE", obj=None, old=other) is None


def _node(name: str, taints: list[dict[str, str]] | None = None, **meta: Any) -> dict[str, Any]:
    spec_: dict[str, Any] = {"taints": taints} if taints is not None else {}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, **meta}, "spec": spec_}


OURS = {"key": "seccomp-operator.dev/not-ready", "effect": "NoSchedule"}
OTHER = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
ONLY_OURS = "an agent may only remove the seccomp-operator.dev/not-ready taint"
NO_RELABEL = "an agent may not change a Node's labels or cordon it"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (_node("node-1", [OURS, OTHER]), _node("node-1", [OTHER]), []),
        (_node("node-1", [OURS]), _node("node-1"), []),
        (_node("node-2", [OURS]), _node("node-2"), ["an agent may only change its own Node"]),
        (_node("node-1", [OURS, OTHER]), _node("node-1", [OURS]), [ONLY_OURS]),
        (_node("node-1", []), _node("node-1", [OTHER]), ["an agent may not add taints"]),
        (_node("node-1", labels={"a": "1"}), _node("node-1", labels={"a": "2"}), [NO_RELABEL]),
    ],
    ids=["remove-ours", "remove-ours-last", "other-node", "remove-other", "add-taint", "relabel"],
)  # fmt: skip
def test_vap_agent_may_only_remove_its_own_taint(old: Any, new: Any, expected: list[str]) -> None:
    got = vap_denials(
        "seccomp-operator-agent-own-node-taint",
        user=AGENT,
        node="node-1",
        operation="UPDATE",
        obj=new,
        old=old,
    )
    assert got == expected


def test_policy_index_follows_watch_events() -> None:
    index = policy.PolicyIndex()
    tenants = body("tenants", namespaceSelector={"matchLabels": {"tier": "tenant"}}, deniedSyscalls=["bpf"])
    assert index.observe_policy("ADDED", tenants)
    assert not index.observe_policy("MODIFIED", tenants)  # unchanged
    assert index.check(ALLOWS_BPF, "team-a") == []  # labels unknown yet
    assert index.observe_namespace(None, {"metadata": {"name": "team-a", "labels": {"tier": "tenant"}}})
    assert "bpf" in index.check(ALLOWS_BPF, "team-a")[0].message
    assert sorted(index.violations([("team-a", "x", ALLOWS_BPF), ("team-b", "y", ALLOWS_BPF)])) == [
        "team-a/x"
    ]
    assert index.observe_namespace("MODIFIED", {"metadata": {"name": "team-a", "labels": {}}})
    assert index.check(ALLOWS_BPF, "team-a") == []
    assert index.observe_policy("MODIFIED", body("tenants", enforcement="Sometimes"))
    assert "tenants" in index.problems and "tenants" not in index.policies
    assert not index.observe_policy("DELETED", body("tenants"))
    assert index.problems == {} and index.policies == {}
    assert not index.observe_policy("ADDED", {"metadata": {}})
