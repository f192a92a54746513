"""Published profiles render, and what we write is valid OCI JSON that a strict decoder reads.

Inputs are read in place from ``../shared/reference``: the Kubernetes tutorial profiles,
SPO's example ``SeccompProfile`` resources, runc's test profiles and zaz's.  Every output
is checked against ``linux.seccomp`` of the OCI runtime-spec schema (draft-04, relative
``$ref``s) and re-decoded with a strict, typed decoder (case 004's regression guard:
``errnoRet``/``index``/``value`` are unsigned integers, never strings).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from seccomp_operator import syscalls
from seccomp_operator.render import Rendered, render_mapping, render_profile_json
from seccomp_operator.spec import OCI_KEYS, parse_spec
from tests.conftest import REFERENCE

SCHEMA_DIR = REFERENCE / "oci-runtime-spec" / "schema"
UINT32 = 2**32 - 1
UINT64 = 2**64 - 1


@cache
def oci_validator() -> jsonschema.Draft4Validator:
    """A draft-04 validator for ``linux.seccomp`` of ``config-linux.json``, refs resolved in the "
    "schema dir."""
    resources = []
    for name in ("config-linux.json", "defs-linux.json", "defs.json"):
        path = SCHEMA_DIR / name
        resources.append((path.as_uri(), Resource.from_contents(json.loads(path.read_text()), DRAFT4)))
    registry: Registry[Any] = Registry().with_resources(resources)
    schema = {"$ref": (SCHEMA_DIR / "config-linux.json").as_uri() + "#/linux/properties/seccomp"}
    return jsonschema.Draft4Validator(schema, registry=registry)


def _uint(value: Any, limit: int, what: str) -> None:
    assert type(value) is int, f"{what} is {type(value).__name__}, not an integer"
    assert 0 <= value <= limit, f"{what} {value} out of range"


def assert_strict_oci(document: dict[str, Any]) -> None:
    """Decode ``document`` as Go's ``specs.LinuxSeccomp`` would, but refusing anything loose."""
    assert set(document) <= set(OCI_KEYS), f"non-OCI keys: {set(document) - set(OCI_KEYS)}"
    assert document["defaultAction"] in syscalls.ACTIONS
    if "defaultErrnoRet" in document:
        _uint(document["defaultErrnoRet"], UINT32, "defaultErrnoRet")
    for key, allowed in (("architectures", syscalls.ARCHITECTURES), ("flags", syscalls.FLAGS)):
        if key in document:
            assert document[key] and all(x in allowed for x in document[key]), key
    for key in ("listenerPath", "listenerMetadata"):
        if key in document:
            assert isinstance(document[key], str) and document[key]
    if "syscalls" in document:
        assert document["syscalls"], "syscalls must be omitted rather than empty"
        for rule in document["syscalls"]:
            assert set(rule) <= {"names", "action", "errnoRet", "args"}, rule
            assert rule["names"] and all(isinstance(n, str) and n for n in rule["names"])
            assert rule["names"] == sorted(set(rule["names"]))
            assert rule["action"] in syscalls.ACTIONS
            if "errnoRet" in rule:
                _uint(rule["errnoRet"], UINT32, "errnoRet")
            for arg in rule.get("args", []):
                assert set(arg) <= {"index", "value", "valueTwo", "op"}
                assert list(arg)[:2] == ["index", "value"] and list(arg)[-1] == "op"
                _uint(arg["index"], UINT32, "index")
                _uint(arg["value"], UINT64, "value")
                if "valueTwo" in arg:
                    _uint(arg["valueTwo"], UINT64, "valueTwo")
                assert arg["op"] in syscalls.OPERATORS
    assert list(document) == [k for k in OCI_KEYS if k in document], "key order"


def assert_well_formed(rendered: Rendered) -> None:
    """Bytes, hash, document, schema and strict decoding agree."""
    import hashlib

    assert rendered.content.endswith(b"\n")
    assert rendered.content.decode("ascii")
    assert hashlib.sha256(rendered.content).hexdigest() == rendered.sha256
    assert json.loads(rendered.content) == rendered.document
    assert json.dumps(rendered.document, indent=2, ensure_ascii=True).encode() + b"\n" == rendered.content
    oci_validator().validate(rendered.document)
    assert_strict_oci(rendered.document)
    assert rendered.bpf_instructions > 0
    assert not [f for f in rendered.findings if f.severity == "error"]


def _spo_profiles() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted((REFERENCE / "security-profiles-operator" / "examples").glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc and doc.get("kind") == "SeccompProfile":
                out.append((f"{path.name}#{i}:{doc['metadata']['name']}", doc["spec"]))
    return out


SPO = _spo_profiles()
KUBE = sorted((REFERENCE / "kubernetes-website" / "profiles").glob("*.json"))
OTHER_JSON = [
    *sorted((REFERENCE / "runc").glob("*.json")),
    *sorted((REFERENCE / "zaz").glob("*.json")),
    REFERENCE / "moby" / "fixtures" / "default-old-format.json",
]


def test_reference_inputs_found() -> None:
    assert len(KUBE) == 3
    assert len(SPO) == 11  # 1 + 1 + 1 + 4 + 4 resources in the five files


def test_schema_validator_rejects_bad_documents() -> None:
    """The schema is wired up: string errnoRet (SPO issue 1769) and unknown actions fail."""
    validator = oci_validator()
    bad = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "A", "errnoRet": "38"}]}
    messages = [e.message for e in validator.iter_errors(bad)]
    assert any("'38' is not of type 'integer'" in m for m in messages)
    assert any("'A' is not one of" in m for m in messages)
    assert not list(validator.iter_errors({"defaultAction": "SCMP_ACT_LOG"}))


def test_constants_match_oci_schema() -> None:
    """ARCHITECTURES/ACTIONS/OPERATORS/FLAGS are exactly the enums of defs-linux.json."""
    defs = json.loads((SCHEMA_DIR / "defs-linux.json").read_text())["definitions"]
    assert list(syscalls.ARCHITECTURES) == defs["SeccompArch"]["enum"]
    assert list(syscalls.ACTIONS) == defs["SeccompAction"]["enum"]
    assert list(syscalls.OPERATORS) == defs["SeccompOperators"]["enum"]
    assert list(syscalls.FLAGS) == defs["SeccompFlag"]["enum"]


@pytest.mark.parametrize("path", KUBE, ids=lambda p: p.name)
def test_kubernetes_tutorial_profiles_render(path: Path) -> None:
    rendered = render_profile_json(path.read_bytes())
    assert_well_formed(rendered)
    original = json.loads(path.read_text())
    assert rendered.document["defaultAction"] == original["defaultAction"]
    names = {n for r in original.get("syscalls", []) for n in r["names"]}
    assert {n for r in rendered.document.get("syscalls", []) for n in r["names"]} == names


@pytest.mark.parametrize(("label", "spec"), SPO, ids=[label for label, _ in SPO])
def test_spo_examples_render(label: str, spec: dict[str, Any]) -> None:
    rendered = render_mapping(spec)
    assert_well_formed(rendered)
    assert rendered.document["defaultAction"] == spec["defaultAction"]
    assert "baseProfileName" not in rendered.document
    # every name survives unless its rule has the default action
    expected = {
        n for r in spec.get("syscalls", []) if r["action"] != spec["defaultAction"] for n in r["names"]
    }
    assert {n for r in rendered.document.get("syscalls", []) for n in r["names"]} == expected
    assert rendered == render_mapping(spec), "deterministic"


@pytest.mark.parametrize("path", OTHER_JSON, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_other_published_profiles_render(path: Path) -> None:
    rendered = render_profile_json(path.read_bytes())
    assert_well_formed(rendered)
    assert '"name"' not in rendered.content.decode()


def test_runc_same_index_conditions_warned() -> None:
    """runc testdata: two conditions on one index are OR-ed by runc; we keep both and say so."""
    path = REFERENCE / "runc" / "seccomp_syscall_test1.json"
    rendered = render_profile_json(path.read_bytes())
    assert any("OR-ed" in f.message for f in rendered.findings)
    original = json.loads(path.read_text())
    kept = [r for r in rendered.document["syscalls"] if r.get("args")]
    assert len(kept) == len([r for r in original["syscalls"] if r.get("args")])


def test_roundtrip_through_render_is_a_fixed_point() -> None:
    """Rendering our own output again gives the same bytes (normal form is idempotent)."""
    for path in [*KUBE, *OTHER_JSON]:
        first = render_profile_json(path.read_bytes())
        assert render_profile_json(first.content).content == first.content
    for _, spec in SPO:
        first = render_mapping(spec)
        assert render_profile_json(first.content).content == first.content


def test_every_field_round_trips_strictly_typed() -> None:
    """Case 004's guard: every spec field, quoted numerals included, comes out as OCI-typed JSON."""
    spec = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": "38",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "listenerPath": "/run/seccomp-agent.sock",
        "listenerMetadata": "k=v",
        "baseProfileName": "base",
        "state": "Enabled",
        "syscalls": [
            {"names": ["read", "openat2", "clone3"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": "1"},
            {"names": ["mount"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["personality"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
            {
                "names": ["clone"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": "0", "value": "2114060288", "valueTwo": "0", "op": "SCMP_CMP_MASKED_EQ"}],
            },
            {"names": ["kexec_load"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["acct"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["reboot"], "action": "SCMP_ACT_KILL"},
            {"names": ["swapon"], "action": "SCMP_ACT_TRAP"},
            {"names": ["getpid"], "action": "SCMP_ACT_LOG"},
        ],
    }
    base, _ = parse_spec(
        {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["write"], "action": "SCMP_ACT_ALLOW"}]}
    )
    rendered = render_mapping(spec, lookup_base=lambda name: base)
    assert_well_formed(rendered)
    doc = rendered.document
    assert doc["defaultErrnoRet"] == 38
    assert doc["syscalls"][0]["names"] == ["clone3", "openat2", "read", "write"]
    by_action = {(r["action"], r.get("errnoRet")): r for r in doc["syscalls"]}
    assert by_action[("SCMP_ACT_ERRNO", 1)]["names"] == ["ptrace"]
    masked = {"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
    assert [r["names"] for r in doc["syscalls"] if r.get("args") == [masked]] == [["clone"]]
    assert len(doc["syscalls"]) == 10
