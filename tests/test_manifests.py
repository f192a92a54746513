"""The deployment artefacts: CRDs, manifests, examples, Dockerfile.

No cluster is needed.  Built-in kinds are checked against the Kubernetes OpenAPI
schemas that ``kubernetes-validate`` ships; SeccompProfile documents against the
CRD's own ``openAPIV3Schema`` with ``jsonschema`` (unknown fields refused, as
``kubectl`` does with server-side field validation); the CRD's CEL rules are
evaluated with ``cel-python`` where it is installed.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from seccomp_operator import __version__, paths, selfprofile
from seccomp_operator import constants as c

from .conftest import CASES, REFERENCE, REPO

CRD_DIR = REPO / "crds"
MANIFEST_DIR = REPO / "manifests"
EXAMPLE_DIR = REPO / "examples"
PROFILE_CRD = CRD_DIR / "seccompprofiles.yaml"
NODE_STATUS_CRD = CRD_DIR / "seccompnodestatuses.yaml"
POLICY_CRD = CRD_DIR / "seccomppolicies.yaml"
IMAGE = f"ghcr.io/seccomp-operator/seccomp-operator:{__version__}"

#: At least two Kubernetes versions: the oldest we support and the newest the package ships.
OLDEST_K8S = "1.30"

OCI_ACTIONS = [
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
]


# --- loading --------------------------------------------------------------------------------


def yaml_files(*dirs: Path) -> list[Path]:
    return sorted(p for d in dirs for p in d.rglob("*") if p.suffix in (".yaml", ".yml"))


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (kubectl refuses them; PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        dupes = sorted({str(k) for k in keys if keys.count(k) > 1})
        if dupes:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {dupes}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load_docs(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.load_all(f, Loader=_StrictLoader) if d is not None]


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d.get("kind") == kind]
    assert len(found) == 1, f"expected exactly one {kind}, found {len(found)}"
    return found[0]


@functools.cache
def crd(path: Path) -> dict[str, Any]:
    """The CRD in ``path`` (cached: callers must not modify it)."""
    return only(load_docs(path), "CustomResourceDefinition")


def crd_schema(path: Path) -> dict[str, Any]:
    versions = crd(path)["spec"]["versions"]
    assert len(versions) == 1
    schema: dict[str, Any] = versions[0]["schema"]["openAPIV3Schema"]
    return schema


@functools.cache
def manifest_docs() -> list[dict[str, Any]]:
    return [d for p in yaml_files(MANIFEST_DIR) for d in load_docs(p) if d.get("kind") != "Kustomization"]


def manifest(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in manifest_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: found {len(found)}"
    return found[0]


def example_profiles() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p in yaml_files(EXAMPLE_DIR) for d in load_docs(p) if d.get("kind") == c.PROFILE_KIND]


def case_doc(case: str, index: int) -> dict[str, Any]:
    path = CASES / case / "input.cr.yaml"
    assert path.is_file(), f"{path} not found (set SECCOMP_OPERATOR_SHARED)"
    return load_docs(path)[index]


# --- (a) every YAML parses --------------------------------------------------------------------

ALL_YAML = yaml_files(CRD_DIR, MANIFEST_DIR, EXAMPLE_DIR)


def test_yaml_files_are_there() -> None:
    for d in (CRD_DIR, MANIFEST_DIR, EXAMPLE_DIR):
        assert yaml_files(d), f"no YAML under {d}"


@pytest.mark.parametrize("path", ALL_YAML, ids=rel)
def test_yaml_parses(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{rel(path)} has no document"
    for doc in docs:
        assert isinstance(doc, dict), f"{rel(path)}: a document is not a mapping"
        assert doc.get("apiVersion") and doc.get("kind"), f"{rel(path)}: apiVersion/kind missing"


# --- (b) built-in kinds against the Kubernetes schemas ------------------------------------------


def k8s_versions() -> list[str]:
    import kubernetes_validate

    newest = ".".join(kubernetes_validate.latest_version().split(".")[:2])
    return sorted({OLDEST_K8S, newest})


#: Kinds of other projects' CRDs, which kubernetes-validate has no schema for; checked by hand
#: (cert-manager's Issuers and Certificates: ``test_webhook_certificates``).
NOT_BUILTIN_GROUPS = ("cert-manager.io/",)


def builtin_docs() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in yaml_files(CRD_DIR, MANIFEST_DIR, EXAMPLE_DIR):
        for i, doc in enumerate(load_docs(path)):
            if doc["kind"] in ("Kustomization", "Component", c.PROFILE_KIND):
                continue
            if str(doc["apiVersion"]).startswith(NOT_BUILTIN_GROUPS):
                continue
            yield f"{rel(path)}#{i}:{doc['kind']}", doc


BUILTIN = list(builtin_docs())


def test_builtin_kinds_cover_the_deployment() -> None:
    kinds = {doc["kind"] for _, doc in BUILTIN}
    assert {
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "DaemonSet",
        "Pod",
    } <= kinds


@pytest.mark.parametrize(("where", "doc"), BUILTIN, ids=[w for w, _ in BUILTIN])
def test_builtin_kinds_validate_strictly(where: str, doc: dict[str, Any]) -> None:
    import kubernetes_validate

    versions = k8s_versions()
    assert len(versions) >= 2
    for version in versions:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(
                f"{where} is invalid for Kubernetes {version}: {e.message} at {list(e.absolute_path)}"
            )


def test_kustomizations_list_existing_resources() -> None:
    for kfile in (CRD_DIR / "kustomization.yaml", MANIFEST_DIR / "kustomization.yaml"):
        k = load_docs(kfile)[0]
        assert k["kind"] == "Kustomization"
        for res in k["resources"]:
            target = (kfile.parent / res).resolve()
            assert target.exists(), f"{rel(kfile)}: {res} does not exist"
            if not target.is_relative_to(kfile.parent):
                # kustomize loads only kustomization directories from outside its root.
                assert (target / "kustomization.yaml").is_file(), (
                    f"{rel(kfile)}: {res} is not a kustomization"
                )
    assert load_docs(MANIFEST_DIR / "kustomization.yaml")[0]["namespace"] == "seccomp-operator"
    crd_resources = load_docs(CRD_DIR / "kustomization.yaml")[0]["resources"]
    assert sorted(crd_resources) == sorted(p.name for p in (PROFILE_CRD, NODE_STATUS_CRD, POLICY_CRD))


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) not installed")
def test_kustomize_build() -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(MANIFEST_DIR)], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("CustomResourceDefinition") == 3
    for d in docs:
        if d["kind"] in ("ServiceAccount", "Deployment", "DaemonSet"):
            assert d["metadata"]["namespace"] == "seccomp-operator"
        if d["kind"] in ("Deployment", "DaemonSet"):
            images = {ct["image"] for ct in d["spec"]["template"]["spec"]["containers"]}
            assert images == {IMAGE}


# --- (c) SeccompProfile documents against the CRD schema ----------------------------------------


def _strict(schema: Any) -> Any:
    """Copy of an OpenAPI schema in which objects with declared properties refuse others."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema:
        out["additionalProperties"] = False
    return out


@functools.cache
def profile_validator() -> jsonschema.Draft4Validator:
    # x-kubernetes-* keys are unknown keywords to jsonschema and ignored; so are the
    # formats (no format checker).  An int-or-string is anyOf integer/string.
    return jsonschema.Draft4Validator(_strict(crd_schema(PROFILE_CRD)))


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def schema_problems(doc: dict[str, Any]) -> set[str]:
    """Paths refused by the openAPIV3Schema (what the API server checks before CEL)."""
    return {_path(e.absolute_path) for e in profile_validator().iter_errors(doc)}


def _cel_walk(schema: dict[str, Any], value: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    for i, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        yield f"{path}#{i}", rule["rule"], value
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                yield from _cel_walk(sub, value[key], f"{path}.{key}" if path else key)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, sub_value in value.items():
                yield from _cel_walk(extra, sub_value, f"{path}[{key}]")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from _cel_walk(schema["items"], item, f"{path}[{i}]")


@functools.cache
def _cel_program(rule: str) -> Any:
    import celpy

    env = celpy.Environment()
    return env.program(env.compile(rule))


def cel_problems(doc: dict[str, Any]) -> set[str]:
    """``<path>#<rule index>`` of every x-kubernetes-validations rule that is not true."""
    celpy = pytest.importorskip("celpy", reason="cel-python not installed: CEL rules not evaluated")
    bad = set()
    for path, rule, value in _cel_walk(crd_schema(PROFILE_CRD), doc, ""):
        result = _cel_program(rule).evaluate({"self": celpy.json_to_cel(value)})
        if not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
            bad.add(path)
    return bad


#: Case documents the cases call valid: (case folder, document index).
VALID_CASE_DOCS = [
    ("004-errnoret-string-type", 0),
    ("005-default-errnoret-enosys", 0),
    ("005-default-errnoret-enosys", 1),
    ("006-notify-listener-rules", 4),
    ("008-action-names-runtime-support", 0),
    ("010-runtime-startup-syscalls-drift", 0),
    ("010-runtime-startup-syscalls-drift", 1),
    ("012-status-localhostprofile-path", 0),
    ("012-status-localhostprofile-path", 1),
    ("014-kubelet-root-dir-distros", 0),
    ("015-finalizer-deleted-nodes", 0),
    ("016-status-never-populated", 0),
    ("020-empty-names-deny-all", 1),
    ("020-empty-names-deny-all", 2),
]

#: Case documents that must be refused at admission: what the schema refuses, what CEL refuses.
INVALID_CASE_DOCS = [
    (
        "004-errnoret-string-type",
        1,
        {"spec.syscalls[0].errnoRet", "spec.syscalls[2].errnoRet"},  # "ENOSYS"; 65537
        {"spec.syscalls[1]#0"},  # errnoRet on SCMP_ACT_ALLOW
    ),
    ("005-default-errnoret-enosys", 2, set(), {"spec#0"}),  # defaultErrnoRet with an ALLOW default
    ("006-notify-listener-rules", 0, set(), {"spec.defaultAction#0"}),  # NOTIFY as default
    ("006-notify-listener-rules", 1, set(), {"spec.syscalls[0]#1"}),  # NOTIFY on write
    (
        "006-notify-listener-rules",
        2,
        set(),
        {"spec#1", "spec#2"},
    ),  # NOTIFY rule and metadata, no listenerPath
    ("006-notify-listener-rules", 3, set(), {"spec.listenerPath#0"}),  # relative socket path
    (
        "008-action-names-runtime-support",
        1,
        {
            "spec.defaultAction",
            "spec.syscalls[0].action",
            "spec.syscalls[1].action",
            "spec.syscalls[2].action",
        },
        set(),
    ),
    ("020-empty-names-deny-all", 0, {"spec.syscalls[0].names"}, set()),
    ("020-empty-names-deny-all", 3, {"spec.syscalls[0].names"}, set()),
]


@pytest.mark.parametrize(("case", "index"), VALID_CASE_DOCS, ids=[f"{c_}#{i}" for c_, i in VALID_CASE_DOCS])
def test_valid_case_documents_are_admitted(cases_dir: Path, case: str, index: int) -> None:
    doc = case_doc(case, index)
    assert doc["apiVersion"] == c.API_VERSION and doc["kind"] == c.PROFILE_KIND
    assert schema_problems(doc) == set()


@pytest.mark.parametrize(("case", "index"), VALID_CASE_DOCS, ids=[f"{c_}#{i}" for c_, i in VALID_CASE_DOCS])
def test_valid_case_documents_pass_cel(cases_dir: Path, case: str, index: int) -> None:
    assert cel_problems(case_doc(case, index)) == set()


@pytest.mark.parametrize(
    ("case", "index", "schema_paths", "cel_paths"),
    INVALID_CASE_DOCS,
    ids=[f"{c_}#{i}" for c_, i, _, _ in INVALID_CASE_DOCS],
)
def test_invalid_case_documents_are_refused_by_the_schema(
    cases_dir: Path, case: str, index: int, schema_paths: set[str], cel_paths: set[str]
) -> None:
    assert schema_problems(case_doc(case, index)) == schema_paths


@pytest.mark.parametrize(
    ("case", "index", "schema_paths", "cel_paths"),
    [d for d in INVALID_CASE_DOCS if d[3]],
    ids=[f"{c_}#{i}" for c_, i, _, cp in INVALID_CASE_DOCS if cp],
)
def test_invalid_case_documents_are_refused_by_cel(
    cases_dir: Path, case: str, index: int, schema_paths: set[str], cel_paths: set[str]
) -> None:
    assert cel_problems(case_doc(case, index)) == cel_paths


CEL_SYNTHETIC = [
    ({"defaultAction": "SCMP_ACT_TRACE", "defaultErrnoRet": 5}, set()),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 0}, set()),
    ({"defaultAction": "SCMP_ACT_LOG", "defaultErrnoRet": 1}, {"spec#0"}),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}, set()),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}, {"spec#2"}),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "agent.sock"}, {"spec.listenerPath#0"}),
    (
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"action": "SCMP_ACT_TRACE", "errnoRet": 7, "names": ["ptrace"]}],
        },
        set(),
    ),
    (
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"action": "SCMP_ACT_KILL", "errnoRet": "1", "names": ["x"]}],
        },
        {"spec.syscalls[0]#0"},
    ),
    (
        {
            "defaultAction": "SCMP_ACT_LOG",
            "listenerPath": "/run/agent.sock",
            "syscalls": [
                {"action": "SCMP_ACT_ALLOW", "names": ["write"]},
                {"action": "SCMP_ACT_NOTIFY", "names": ["mount", "write"]},
            ],
        },
        {"spec.syscalls[1]#1"},
    ),
]


@pytest.mark.parametrize(("spec", "expected"), CEL_SYNTHETIC, ids=[str(i) for i in range(len(CEL_SYNTHETIC))])
def test_cel_rules(spec: dict[str, Any], expected: set[str]) -> None:
    doc = {"apiVersion": c.API_VERSION, "kind": c.PROFILE_KIND, "metadata": {"name": "x"}, "spec": spec}
    assert schema_problems(doc) == set()
    assert cel_problems(doc) == expected


def test_quoted_errno_numerals_are_admitted_only_in_range() -> None:
    def doc(errno: Any) -> dict[str, Any]:
        rule = {"action": "SCMP_ACT_ERRNO", "names": ["keyctl"], "errnoRet": errno}
        return {
            "apiVersion": c.API_VERSION,
            "kind": c.PROFILE_KIND,
            "metadata": {"name": "x", "namespace": "demo"},
            "spec": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]},
        }

    for ok in (0, 1, 38, 65535, "0", "1", "38", "9999", "65535"):
        assert schema_problems(doc(ok)) == set(), ok
    for bad in (-1, 65536, "-1", "65536", "99999", "038", "", " 38", "ENOSYS", "0x26", 1.5, True):
        assert schema_problems(doc(bad)) == {"spec.syscalls[0].errnoRet"}, bad


def test_unknown_spec_fields_are_refused() -> None:
    # Case 005: a field the product does not know must be refused, not dropped silently.
    doc = {
        "apiVersion": c.API_VERSION,
        "kind": c.PROFILE_KIND,
        "metadata": {"name": "x", "namespace": "demo"},
        "spec": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrno": "ENOSYS"},
    }
    assert schema_problems(doc) == {"spec"}


@pytest.mark.parametrize(
    "spo_file",
    sorted((REFERENCE / "security-profiles-operator" / "examples").glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_spo_resources_move_over_by_changing_the_api_version(reference_dir: Path, spo_file: Path) -> None:
    for doc in load_docs(spo_file):
        moved = dict(doc, apiVersion=c.API_VERSION)
        assert schema_problems(moved) == set(), doc["metadata"]["name"]


# --- the examples ---------------------------------------------------------------------------------

EXAMPLES = example_profiles()


def test_examples_are_there() -> None:
    names = {d["metadata"]["name"] for _, d in EXAMPLES}
    assert names == {
        "audit",
        "violation",
        "fine-grained",
        "minimal-allow",
        "minimal-log",
        "deny-mkdir",
        "runc-minimal",
        "runtime-default-amd64",
        "runtime-default-arm64",
    }
    assert (EXAMPLE_DIR / "README.md").is_file()


@pytest.mark.parametrize(("path", "doc"), EXAMPLES, ids=[rel(p) for p, _ in EXAMPLES])
def test_example_profile_is_admitted(path: Path, doc: dict[str, Any]) -> None:
    assert doc["apiVersion"] == c.API_VERSION
    assert doc["kind"] == c.PROFILE_KIND
    meta = doc["metadata"]
    assert set(meta) <= {"name", "namespace", "labels", "annotations"}
    assert meta["namespace"] == "default"
    assert path.stem == meta["name"], "one profile per file, named after it"
    # A name the agent accepts as a path component, and the path pods use.
    assert paths.localhost_profile(meta["namespace"], meta["name"]) == (
        f"seccomp-operator/default/{meta['name']}.json"
    )
    assert schema_problems(doc) == set()


@pytest.mark.parametrize(("path", "doc"), EXAMPLES, ids=[rel(p) for p, _ in EXAMPLES])
def test_example_profile_passes_cel(path: Path, doc: dict[str, Any]) -> None:
    assert cel_problems(doc) == set()


@pytest.mark.parametrize("name", ["audit", "violation", "fine-grained"])
def test_k8s_docs_examples_equal_the_documentation_profiles(reference_dir: Path, name: str) -> None:
    expected = json.loads((reference_dir / "kubernetes-website" / "profiles" / f"{name}.json").read_text())
    doc = load_docs(EXAMPLE_DIR / "k8s-docs" / f"{name}.yaml")[0]
    assert doc["spec"] == expected


def _example(name: str) -> dict[str, Any]:
    found = [d for _, d in EXAMPLES if d["metadata"]["name"] == name]
    assert len(found) == 1
    return found[0]


def _names(spec: dict[str, Any]) -> list[str]:
    return [n for rule in spec.get("syscalls", []) for n in rule["names"]]


def test_minimal_allow_and_log_share_one_list(reference_dir: Path) -> None:
    allow, log = _example("minimal-allow")["spec"], _example("minimal-log")["spec"]
    assert allow["defaultAction"] == "SCMP_ACT_ERRNO"
    assert allow["defaultErrnoRet"] == 38
    assert log["defaultAction"] == "SCMP_ACT_LOG"
    assert "defaultErrnoRet" not in log
    assert allow["syscalls"] == log["syscalls"]
    # Native table only: one list for amd64 and arm64 nodes, no 32-bit compat calls.
    assert "architectures" not in allow and "architectures" not in log
    assert all(rule["action"] == "SCMP_ACT_ALLOW" for rule in allow["syscalls"])

    names = _names(allow)
    assert len(names) == len(set(names)), "a name listed twice"
    # The runtime part is SPO's runc base list, and the calls newer runc releases use.
    spo = load_docs(reference_dir / "security-profiles-operator" / "examples" / "baseprofile-runc.yaml")[0]
    assert set(_names(spo["spec"])) <= set(names)
    assert {"openat2", "statx", "faccessat2", "close_range"} <= set(names)
    # clone3 stays out: glibc falls back to clone on ENOSYS.
    assert "clone3" not in names and "clone" in names

    table = json.loads((reference_dir / "generated" / "libseccomp-2.5.4-syscalls.json").read_text())["arches"]
    unknown = [n for n in names if n not in table["SCMP_ARCH_X86_64"] and n not in table["SCMP_ARCH_AARCH64"]]
    assert unknown == [], "names unknown on both x86_64 and aarch64"
    # aarch64 lacks the legacy calls; their modern forms must be there too.
    for legacy, modern in [
        ("open", "openat"),
        ("stat", "newfstatat"),
        ("access", "faccessat"),
        ("dup2", "dup3"),
        ("pipe", "pipe2"),
        ("poll", "ppoll"),
        ("readlink", "readlinkat"),
    ]:
        assert legacy not in table["SCMP_ARCH_AARCH64"] and modern in table["SCMP_ARCH_AARCH64"]
        assert modern in names, f"{modern} (aarch64 form of {legacy}) missing"


def test_deny_mkdir() -> None:
    spec = _example("deny-mkdir")["spec"]
    assert spec == {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"action": "SCMP_ACT_ERRNO", "errnoRet": 13, "names": ["mkdir", "mkdirat"]}],
    }


def test_example_pod_uses_the_path_status_reports() -> None:
    pod = only(load_docs(EXAMPLE_DIR / "pod.yaml"), "Pod")
    profile = pod["spec"]["securityContext"]["seccompProfile"]
    assert profile == {
        "type": "Localhost",
        "localhostProfile": paths.localhost_profile("default", "minimal-allow"),
    }
    assert pod["metadata"]["namespace"] == "default"
    _example("minimal-allow")


# --- (d) the agent DaemonSet and the controller Deployment ------------------------------------------


def _containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod_spec.get("initContainers") or []) + list(pod_spec["containers"])


def _assert_hardened(pod_spec: dict[str, Any], what: str) -> None:
    pod_seccomp = (pod_spec.get("securityContext") or {}).get("seccompProfile")
    assert not pod_spec.get("hostNetwork") and not pod_spec.get("hostPID") and not pod_spec.get("hostIPC")
    for ct in _containers(pod_spec):
        sc = ct.get("securityContext") or {}
        where = f"{what}/{ct['name']}"
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: must drop ALL capabilities"
        assert not sc.get("capabilities", {}).get("add"), f"{where}: adds capabilities"
        assert sc.get("readOnlyRootFilesystem") is True, where
        assert sc.get("allowPrivilegeEscalation") is False, where
        assert not sc.get("privileged"), where
        assert sc.get("seccompProfile") or pod_seccomp, f"{where}: no seccompProfile"
        assert (sc.get("seccompProfile") or pod_seccomp)["type"] in ("RuntimeDefault", "Localhost")
        assert ct["image"] == IMAGE, f"{where}: image must be {IMAGE}"
        assert ct["resources"]["limits"]["memory"], f"{where}: no memory limit"
        assert ct["resources"]["requests"], f"{where}: no requests"


def _liveness_port(ct: dict[str, Any]) -> int:
    urls = [a.split("=", 1)[1] for a in ct["args"] if a.startswith("--liveness=")]
    assert len(urls) == 1, "pass --liveness=URL to Kopf"
    m = re.fullmatch(r"http://0\.0\.0\.0:(\d+)(/\S*)", urls[0])
    assert m, urls[0]
    probe = ct["livenessProbe"]["httpGet"]
    port = probe["port"]
    if isinstance(port, str):
        port = next(p["containerPort"] for p in ct["ports"] if p["name"] == port)
    assert probe["path"] == m.group(2)
    assert port == int(m.group(1))
    return port


def _env(ct: dict[str, Any], name: str) -> dict[str, Any]:
    found = [e for e in ct.get("env", []) if e["name"] == name]
    assert len(found) == 1, f"env {name} missing"
    return found[0]


def test_agent_daemonset() -> None:
    ds = manifest("DaemonSet", "seccomp-operator-agent")
    assert ds["metadata"]["namespace"] == "seccomp-operator"
    tmpl = ds["spec"]["template"]
    labels = {c.APP_LABEL: c.APP_LABEL_VALUE, c.AGENT_POD_LABEL: c.AGENT_POD_LABEL_VALUE}
    assert tmpl["metadata"]["labels"].items() >= labels.items()
    assert ds["spec"]["selector"]["matchLabels"] == labels
    spec = tmpl["spec"]
    _assert_hardened(spec, "agent")
    assert spec["serviceAccountName"] == "seccomp-operator-agent"
    assert spec["priorityClassName"] == "system-node-critical"
    assert {"operator": "Exists"} in spec["tolerations"], "must tolerate every taint"

    (ct,) = spec["containers"]
    assert ct["command"] == ["seccomp-operator"] and ct["args"][0] == "agent"
    assert f"--kubelet-root={c.DEFAULT_KUBELET_ROOT}" in ct["args"]
    assert _env(ct, "NODE_NAME")["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert ct["resources"]["limits"]["memory"] == "128Mi"
    _liveness_port(ct)
    # Root (to write into the root-owned directory), but without any capability.
    assert ct["securityContext"]["runAsUser"] == 0
    # The agent runs under its own recorded profile, which the init container installs.
    assert ct["securityContext"]["seccompProfile"] == {
        "type": "Localhost",
        "localhostProfile": c.SELF_PROFILE_LOCALHOST,
    }
    (init,) = spec["initContainers"]
    assert init["command"] == ["seccomp-operator"]
    assert init["args"] == ["self-profile", "install", f"--kubelet-root={c.DEFAULT_KUBELET_ROOT}"]
    assert init["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert init["securityContext"]["runAsUser"] == 0
    for container in (ct, init):
        sc = container["securityContext"]
        assert sc["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert sc["readOnlyRootFilesystem"] is True, container["name"]

    # Two host paths: the managed directory (the agent's only one) and the directory of the
    # agent's own profile (the init container's only one), each mounted at the same path.
    managed = str(paths.managed_dir(c.DEFAULT_KUBELET_ROOT))
    own = str(paths.seccomp_root(c.DEFAULT_KUBELET_ROOT) / c.SELF_PROFILE_SUBDIR)
    host_paths = {v["name"]: v["hostPath"] for v in spec["volumes"] if "hostPath" in v}
    assert sorted(host_paths.values(), key=lambda h: h["path"]) == [
        {"path": managed, "type": "DirectoryOrCreate"},
        {"path": own, "type": "DirectoryOrCreate"},
    ]
    kinds = {k for v in spec["volumes"] for k in v if k != "name"}
    assert kinds <= {"hostPath", "emptyDir"}, f"unexpected volume kinds {kinds}"
    for container, path in ((ct, managed), (init, own)):
        mounted = [m for m in container["volumeMounts"] if m["name"] in host_paths]
        assert [(host_paths[m["name"]]["path"], m["mountPath"]) for m in mounted] == [(path, path)]
        assert not mounted[0].get("readOnly")
        assert "mountPropagation" not in mounted[0]
    # What the init container writes is the file the kubelet resolves for the agent.
    written = selfprofile.self_profile_path(c.DEFAULT_KUBELET_ROOT)
    assert str(written.parent) == own
    assert written == paths.seccomp_root(c.DEFAULT_KUBELET_ROOT) / c.SELF_PROFILE_LOCALHOST


def test_controller_deployment() -> None:
    dep = manifest("Deployment", "seccomp-operator-controller")
    assert dep["metadata"]["namespace"] == "seccomp-operator"
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    spec = dep["spec"]["template"]["spec"]
    _assert_hardened(spec, "controller")
    assert spec["serviceAccountName"] == "seccomp-operator-controller"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert not any("hostPath" in v for v in spec.get("volumes", []))
    (ct,) = spec["containers"]
    assert ct["command"] == ["seccomp-operator"] and ct["args"][0] == "controller"
    assert _env(ct, "POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    _liveness_port(ct)
    # The controller must never pick the agent's label (it finds agents by it).
    assert dep["spec"]["template"]["metadata"]["labels"][c.AGENT_POD_LABEL] != c.AGENT_POD_LABEL_VALUE


def _rules(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                out.setdefault((group, res), set()).update(rule["verbs"])
    return out


def test_rbac_least_privilege() -> None:
    g = c.GROUP
    agent = _rules(manifest("ClusterRole", "seccomp-operator-agent"))
    assert agent == {
        (g, c.PROFILE_PLURAL): {"get", "list", "watch"},
        (g, c.NODE_STATUS_PLURAL): {"get", "create", "patch", "update"},
        ("", "nodes"): {"get", "patch"},  # patch: remove the not-ready taint after the initial sync
    }
    controller = _rules(manifest("ClusterRole", "seccomp-operator-controller"))
    assert controller == {
        (g, c.PROFILE_PLURAL): {"get", "list", "watch", "patch", "update"},
        (g, f"{c.PROFILE_PLURAL}/status"): {"patch", "update"},
        (g, c.NODE_STATUS_PLURAL): {"get", "list", "watch", "delete"},
        (g, "seccomppolicies"): {"get", "list", "watch"},
        ("", "nodes"): {"get", "list", "watch"},
        ("", "pods"): {"get", "list", "watch"},
        ("", "events"): {"create", "patch"},
        ("events.k8s.io", "events"): {"create", "patch"},
        ("", "namespaces"): {"list", "watch"},
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"},
    }
    for role in ("agent", "controller"):
        binding = manifest("ClusterRoleBinding", f"seccomp-operator-{role}")
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": f"seccomp-operator-{role}",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": f"seccomp-operator-{role}", "namespace": "seccomp-operator"}
        ]
        manifest("ServiceAccount", f"seccomp-operator-{role}")


def test_namespace_allows_the_agent() -> None:
    ns = manifest("Namespace", "seccomp-operator")
    # hostPath and uid 0 are refused by the baseline and restricted Pod Security levels.
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


# --- (e) the CRDs ---------------------------------------------------------------------------------


def _walk(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for key, sub in (schema.get("properties") or {}).items():
        yield from _walk(sub, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("path", [PROFILE_CRD, NODE_STATUS_CRD], ids=rel)
def test_crd_schema_is_structural_and_documented(path: Path) -> None:
    schema = crd_schema(path)
    # The API server allows nothing but `type: object` for the root metadata.
    assert schema["properties"]["metadata"] == {"type": "object"}
    for where, node in _walk(schema, ""):
        if where == ".metadata":
            continue
        assert node.get("description", "").strip(), f"{rel(path)}: no description at {where or '<root>'}"
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}]
        else:
            assert node.get("type") in ("object", "array", "string", "integer", "boolean", "number"), where
        if node.get("type") == "array":
            assert "items" in node, where
        if node.get("x-kubernetes-list-type") == "map":
            keys = node["x-kubernetes-list-map-keys"]
            assert set(keys) <= set(node["items"].get("required", [])), f"{where}: map keys must be required"
        for rule in node.get("x-kubernetes-validations") or []:
            assert rule.get("message"), f"{where}: CEL rule without message"


def test_profile_spec_is_bounded_for_cel_cost() -> None:
    # The CEL cost estimate multiplies by the largest possible list sizes and string lengths.
    spec = crd_schema(PROFILE_CRD)["properties"]["spec"]
    for where, node in _walk(spec, "spec"):
        if node.get("type") == "array":
            assert "maxItems" in node, f"{where}: unbounded list"
        if node.get("type") == "string":
            assert "maxLength" in node or "enum" in node, f"{where}: unbounded string"


def test_profile_crd_names_and_columns() -> None:
    d = crd(PROFILE_CRD)
    spec = d["spec"]
    assert d["metadata"]["name"] == f"{c.PROFILE_PLURAL}.{c.GROUP}"
    assert spec["group"] == c.GROUP
    assert spec["scope"] == "Namespaced"
    names = spec["names"]
    assert names["kind"] == c.PROFILE_KIND
    assert names["plural"] == c.PROFILE_PLURAL
    assert names["singular"] == c.PROFILE_SINGULAR
    assert names["shortNames"] == list(c.PROFILE_SHORT_NAMES)
    assert "sp" not in names["shortNames"], "sp is the security-profiles-operator's"
    assert "seccomp" in names["categories"]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == (c.VERSION, True, True)
    assert version["subresources"] == {"status": {}}
    columns = {col["name"]: col["jsonPath"] for col in version["additionalPrinterColumns"]}
    assert columns == {
        "STATUS": ".status.phase",
        "READY": ".status.ready",
        "LOCALHOSTPROFILE": ".status.localhostProfile",
        "AGE": ".metadata.creationTimestamp",
    }


def test_profile_crd_spec_fields() -> None:
    schema = crd_schema(PROFILE_CRD)
    spec = schema["properties"]["spec"]
    assert schema["required"] == ["spec"]
    assert spec["required"] == ["defaultAction"]
    props = spec["properties"]
    assert set(props) == {
        "defaultAction",
        "defaultErrnoRet",
        "architectures",
        "flags",
        "listenerPath",
        "listenerMetadata",
        "baseProfileName",
        "state",
        "syscalls",
    }
    rule = props["syscalls"]["items"]
    assert props["defaultAction"]["enum"] == OCI_ACTIONS
    assert rule["properties"]["action"]["enum"] == OCI_ACTIONS
    assert props["state"]["enum"] == [c.STATE_ENABLED, c.STATE_DISABLED]
    assert props["state"]["default"] == c.STATE_ENABLED
    assert props["syscalls"]["maxItems"] == 4096
    assert rule["properties"]["names"]["minItems"] == 1
    assert rule["properties"]["args"]["maxItems"] == 6
    assert (props["defaultErrnoRet"]["minimum"], props["defaultErrnoRet"]["maximum"]) == (0, 65535)

    # Enums equal the OCI runtime-spec's own lists.
    defs = json.loads((REFERENCE / "oci-runtime-spec" / "schema" / "defs-linux.json").read_text())[
        "definitions"
    ]
    assert props["defaultAction"]["enum"] == defs["SeccompAction"]["enum"]
    assert props["architectures"]["items"]["enum"] == defs["SeccompArch"]["enum"]
    assert props["flags"]["items"]["enum"] == defs["SeccompFlag"]["enum"]
    assert rule["properties"]["args"]["items"]["properties"]["op"]["enum"] == defs["SeccompOperators"]["enum"]


def test_profile_crd_status_fields() -> None:
    status = crd_schema(PROFILE_CRD)["properties"]["status"]["properties"]
    assert set(status) == {
        "observedGeneration",
        "phase",
        "localhostProfile",
        "contentHash",
        "ready",
        "desiredNodes",
        "installedNodes",
        "failedNodes",
        "pendingNodes",
        "notReadyNodes",
        "notReadyNodesOmitted",
        "findings",
        "conditions",
        "referencingPods",
        "referencingPodCount",
        "removalAllowed",
    }
    assert set(status["notReadyNodes"]["items"]["properties"]) == {
        "name",
        "state",
        "reason",
        "message",
        "since",
    }
    assert set(status["findings"]["items"]["properties"]) == {"severity", "path", "message", "hint"}
    cond = status["conditions"]
    assert cond["x-kubernetes-list-type"] == "map" and cond["x-kubernetes-list-map-keys"] == ["type"]
    assert set(cond["items"]["properties"]) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }
    assert status["notReadyNodes"]["maxItems"] >= c.NOT_READY_NODES_CAP


def _status_validator(path: Path) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(_strict(crd_schema(path)["properties"]["status"]))


def test_a_full_profile_status_fits_the_schema() -> None:
    status = {
        "observedGeneration": 3,
        "phase": c.PHASE_DEGRADED,
        "localhostProfile": paths.localhost_profile("demo", "web"),
        "contentHash": "a" * 64,
        "ready": "1/3",
        "desiredNodes": 3,
        "installedNodes": 1,
        "failedNodes": 1,
        "pendingNodes": 1,
        "notReadyNodes": [
            {"name": "node-2", "state": c.NODE_ERROR, "reason": "NoSpace", "message": "ENOSPC", "since": ""},
            {
                "name": "node-3",
                "state": c.NODE_UNKNOWN,
                "reason": "AgentNotReady",
                "message": "",
                "since": "",
            },
        ],
        "notReadyNodesOmitted": 0,
        "findings": [
            {"severity": "warning", "path": "spec.defaultErrnoRet", "message": "EPERM", "hint": "38"}
        ],
        "conditions": [
            {
                "type": c.COND_READY,
                "status": "False",
                "reason": c.REASON_NODES_NOT_INSTALLED,
                "message": "1/3 nodes installed",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 3,
            }
        ],
    }
    errors = [e.message for e in _status_validator(PROFILE_CRD).iter_errors(status)]
    assert errors == []


def test_node_status_crd() -> None:
    d = crd(NODE_STATUS_CRD)
    spec = d["spec"]
    assert d["metadata"]["name"] == f"{c.NODE_STATUS_PLURAL}.{c.GROUP}"
    assert spec["scope"] == "Cluster"
    assert spec["names"]["kind"] == c.NODE_STATUS_KIND
    assert spec["names"]["plural"] == c.NODE_STATUS_PLURAL
    assert spec["names"]["singular"] == c.NODE_STATUS_SINGULAR
    assert spec["names"]["shortNames"] == list(c.NODE_STATUS_SHORT_NAMES)
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == (c.VERSION, True, True)
    assert "status" not in (version.get("subresources") or {}), "the agent writes status with the object"
    columns = {col["name"]: col["jsonPath"] for col in version["additionalPrinterColumns"]}
    assert {
        "INSTALLED": ".status.installed",
        "FAILED": ".status.failed",
        "KUBELET-ROOT": ".status.kubeletRoot",
        "AGE": ".metadata.creationTimestamp",
    }.items() <= columns.items()
    status = crd_schema(NODE_STATUS_CRD)["properties"]["status"]
    assert set(status["properties"]) == {
        "nodeName",
        "kubeletRoot",
        "seccompRoot",
        "agentVersion",
        "state",
        "message",
        "installed",
        "failed",
        "profiles",
        "foreignEntries",
        "foreignEntryCount",
        "fileWatch",
    }
    entry = status["properties"]["profiles"]["additionalProperties"]
    assert set(entry["properties"]) == {"state", "contentHash", "path", "message", "lastTransitionTime"}
    assert entry["properties"]["state"]["enum"] == [c.NODE_INSTALLED, c.NODE_ERROR, c.NODE_REMOVED]


def test_a_node_report_fits_the_schema() -> None:
    root = "/var/lib/k0s/kubelet"
    report = {
        "nodeName": "k0s-node",
        "kubeletRoot": root,
        "seccompRoot": str(paths.seccomp_root(root)),
        "agentVersion": __version__,
        "state": "Ready",
        "message": "",
        "installed": 1,
        "failed": 1,
        "profiles": {
            paths.profile_key("demo", "baseline"): {
                "state": c.NODE_INSTALLED,
                "contentHash": "0" * 64,
                "path": str(paths.profile_path(root, "demo", "baseline")),
                "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            },
            paths.profile_key("demo", "broken"): {
                "state": c.NODE_ERROR,
                "path": str(paths.profile_path(root, "demo", "broken")),
                "message": "No space left on device",
                "lastTransitionTime": "",
            },
        },
    }
    validator = _status_validator(NODE_STATUS_CRD)
    assert [e.message for e in validator.iter_errors(report)] == []
    bad = copy.deepcopy(report)
    bad["profiles"]["demo/baseline"]["state"] = "Pending"
    assert [list(e.absolute_path) for e in validator.iter_errors(bad)] == [
        ["profiles", "demo/baseline", "state"]
    ]


# --- Dockerfile ---------------------------------------------------------------------------------


def test_dockerfile() -> None:
    text = (REPO / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    # Pinned to the Debian release the agent's seccomp profile was recorded on (bookworm).
    assert len(froms) == 2 and all(ln.split()[1] == "python:3.11-slim-bookworm" for ln in froms), froms
    final = text[text.rindex("\nFROM ") :]
    assert "libseccomp2" in final
    assert "COPY --from=builder" in final
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1].split(":")[0] == "65532"
    entry = [ln for ln in lines if ln.startswith("ENTRYPOINT ")]
    assert entry and json.loads(entry[-1].split(" ", 1)[1]) == ["seccomp-operator"]
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert "!operator" in ignore and "!pyproject.toml" in ignore


# --- the optional webhook component (manifests/webhook/) -----------------------------------------

WEBHOOK_DIR = MANIFEST_DIR / "webhook"
WEBHOOK_SERVICE_DNS = f"{c.WEBHOOK_SERVICE}.seccomp-operator.svc"


def webhook_docs() -> list[dict[str, Any]]:
    return [d for p in yaml_files(WEBHOOK_DIR) for d in load_docs(p) if d["kind"] != "Component"]


def webhook_doc(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in webhook_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: found {len(found)}"
    return found[0]


def webhook_component() -> dict[str, Any]:
    return only(load_docs(WEBHOOK_DIR / "kustomization.yaml"), "Component")


def patched_controller() -> dict[str, Any]:
    """The base controller Deployment with the component's JSON patch applied (as kustomize does)."""
    import jsonpatch

    (patch,) = webhook_component()["patches"]
    assert patch["target"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
        "name": "seccomp-operator-controller",
    }
    ops = yaml.safe_load(patch["patch"])
    patched: dict[str, Any] = jsonpatch.apply_patch(
        manifest("Deployment", "seccomp-operator-controller"), ops, in_place=False
    )
    return patched


def test_webhook_component_lists_its_files() -> None:
    component = webhook_component()
    assert component["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    assert sorted(component["resources"]) == sorted(
        p.name for p in yaml_files(WEBHOOK_DIR) if p.name != "kustomization.yaml"
    )
    # The base stays webhook-free: the component is opt-in.
    assert "webhook" not in load_docs(MANIFEST_DIR / "kustomization.yaml")[0]["resources"]
    for doc in webhook_docs():
        if doc["kind"] != "ValidatingWebhookConfiguration":
            assert doc["metadata"]["namespace"] == "seccomp-operator", doc["kind"]


def test_webhook_patch_gives_a_valid_controller_that_serves_the_mounted_certificate() -> None:
    import kubernetes_validate

    from seccomp_operator.cli import build_parser

    dep = patched_controller()
    for version in k8s_versions():
        kubernetes_validate.validate(dep, version, strict=True)
    spec = dep["spec"]["template"]["spec"]
    _assert_hardened(spec, "controller")  # still non-root, read-only, no capabilities
    (ct,) = spec["containers"]
    assert ct["name"] == "controller"
    args = build_parser().parse_args(ct["args"])
    assert args.webhook_host == WEBHOOK_SERVICE_DNS
    assert args.webhook_port == c.WEBHOOK_PORT
    assert (args.webhook_cert, args.webhook_key) == (
        f"{c.WEBHOOK_TLS_DIR}/tls.crt",
        f"{c.WEBHOOK_TLS_DIR}/tls.key",
    )
    assert {"name": "webhook", "containerPort": c.WEBHOOK_PORT, "protocol": "TCP"} in ct["ports"]
    (mount,) = [m for m in ct["volumeMounts"] if m["mountPath"] == c.WEBHOOK_TLS_DIR]
    assert mount["readOnly"] is True
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"] == {"secretName": c.WEBHOOK_TLS_SECRET, "defaultMode": 0o440}
    # The files are root-owned in the volume; the controller reads them through fsGroup.
    assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"] == 65532


def test_webhook_service_reaches_the_controller_pod() -> None:
    svc = webhook_doc("Service", c.WEBHOOK_SERVICE)
    pod_labels = manifest("Deployment", "seccomp-operator-controller")["spec"]["template"]["metadata"][
        "labels"
    ]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert svc["spec"]["selector"].get(c.AGENT_POD_LABEL) != c.AGENT_POD_LABEL_VALUE  # never the agents
    (port,) = svc["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (443, "webhook")


def _webhooks() -> dict[str, dict[str, Any]]:
    config = webhook_doc("ValidatingWebhookConfiguration", c.WEBHOOK_CONFIGURATION_NAME)
    return {w["name"]: w for w in config["webhooks"]}


def test_webhook_configuration_selects_namespaces_per_mode() -> None:
    from seccomp_operator import admission

    hooks = _webhooks()
    assert set(hooks) == {c.WEBHOOK_NAME_PROFILE, c.WEBHOOK_NAME_POD_WARN, c.WEBHOOK_NAME_POD_STRICT}
    for hook in hooks.values():
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
        assert "objectSelector" not in hook
        assert hook["clientConfig"]["service"]["name"] == c.WEBHOOK_SERVICE
        assert hook["clientConfig"]["service"]["namespace"] == "seccomp-operator"
        assert hook["clientConfig"]["service"]["port"] == 443
        assert "caBundle" not in hook["clientConfig"]  # injected by cert-manager
    profile = hooks[c.WEBHOOK_NAME_PROFILE]
    assert profile["clientConfig"]["service"]["path"] == f"/{admission.HANDLER_ID}"
    assert "namespaceSelector" not in profile  # every namespace's profiles
    # Fail: a SeccompPolicy is enforced only at admission.
    assert profile["failurePolicy"] == "Fail"
    assert profile["rules"] == [
        {
            "apiGroups": [c.GROUP],
            "apiVersions": [c.VERSION],
            "resources": [c.PROFILE_PLURAL],
            "operations": ["CREATE", "UPDATE"],
            "scope": "Namespaced",
        }
    ]
    for mode, name in (
        (c.POD_ADMISSION_WARN, c.WEBHOOK_NAME_POD_WARN),
        (c.POD_ADMISSION_STRICT, c.WEBHOOK_NAME_POD_STRICT),
    ):
        hook = hooks[name]
        assert hook["namespaceSelector"] == {"matchLabels": {c.POD_ADMISSION_LABEL: mode}}
        assert hook["clientConfig"]["service"]["path"] == f"/{admission.POD_HANDLER_IDS[mode]}"
        # Ignore: a controller that is down must not stop the pods of opted-in namespaces.
        assert hook["failurePolicy"] == "Ignore"
        assert 1 <= hook["timeoutSeconds"] <= 5
        assert hook["rules"] == [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "operations": ["CREATE"],
                "scope": "Namespaced",
            },
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": [f"pods/{c.EPHEMERAL_CONTAINERS_SUBRESOURCE}"],
                "operations": ["UPDATE"],
                "scope": "Namespaced",
            },
        ]


def test_webhook_certificates() -> None:
    """cert-manager objects (no schema in kubernetes-validate): the chain the webhook trusts, by hand."""
    config = webhook_doc("ValidatingWebhookConfiguration", c.WEBHOOK_CONFIGURATION_NAME)
    ns, name = config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].split("/")
    serving = webhook_doc("Certificate", name)
    assert ns == serving["metadata"]["namespace"] == "seccomp-operator"
    assert serving["spec"]["secretName"] == c.WEBHOOK_TLS_SECRET  # the Secret the controller mounts
    assert serving["spec"]["dnsNames"][0] == WEBHOOK_SERVICE_DNS
    assert serving["spec"]["privateKey"]["rotationPolicy"] == "Always"
    assert "server auth" in serving["spec"]["usages"]
    # Issued by a CA of its own (stable caBundle across renewals), itself self-signed.
    ca_issuer = webhook_doc("Issuer", serving["spec"]["issuerRef"]["name"])
    assert serving["spec"]["issuerRef"]["kind"] == "Issuer"
    ca = [
        d
        for d in webhook_docs()
        if d["kind"] == "Certificate" and d["spec"]["secretName"] == ca_issuer["spec"]["ca"]["secretName"]
    ]
    assert len(ca) == 1 and ca[0]["spec"]["isCA"] is True
    root = webhook_doc("Issuer", ca[0]["spec"]["issuerRef"]["name"])
    assert root["spec"] == {"selfSigned": {}}
    for doc in webhook_docs():
        if doc["apiVersion"].startswith("cert-manager.io/"):
            assert doc["apiVersion"] == "cert-manager.io/v1" and doc["kind"] in ("Issuer", "Certificate")
            if doc["kind"] == "Certificate":
                assert doc["spec"]["issuerRef"]["group"] == "cert-manager.io"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) not installed")
def test_kustomize_build_with_the_webhook_component(tmp_path: Path) -> None:
    """Base plus component, the way the component's header tells users to combine them."""
    import kubernetes_validate

    overlay = tmp_path / "with-webhook"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # kustomize takes only relative paths
                "resources": [os.path.relpath(MANIFEST_DIR, overlay)],
                "components": [os.path.relpath(WEBHOOK_DIR, overlay)],
            }
        )
    )
    out = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert {"Service", "Issuer", "Certificate", "ValidatingWebhookConfiguration"} <= {d["kind"] for d in docs}
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    assert dep == patched_controller()
    for doc in docs:
        if doc["kind"] == "CustomResourceDefinition" or doc["apiVersion"].startswith(NOT_BUILTIN_GROUPS):
            continue
        for version in k8s_versions():
            kubernetes_validate.validate(doc, version, strict=True)
