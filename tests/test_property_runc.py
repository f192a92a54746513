"""Property tests: random specs never crash the checks, and what they accept runc accepts.

1. Random ``spec`` mappings (wrong types, unknown keys, junk names, huge numbers...) go
   through every entry point of issue 3: :func:`validate.check_mapping`, rendering, the lint
   advice and runtime checks, the admission check, and Docker/CRI-O flattening.  None may
   raise anything but the documented :class:`ProfileError`; a spec is accepted exactly when
   there is no error finding.
2. For a small sample of mostly-valid specs (``@pytest.mark.containerd``), every accepted spec
   renders to a file that runc (through containerd) loads.  The sample builds on
   ``examples/baselines/runc-minimal.yaml`` and draws its own rules from syscalls outside that
   list, so that runc's own start-up is never what a random rule kills; it has no ``flags``
   (runc before 1.2.0 refuses any flag, which the validator warns about; this machine's runc
   is 1.1.5) and no ``SCMP_ACT_NOTIFY`` (runc would connect to a seccomp agent that does not
   run here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seccomp_operator import convert as cv
from seccomp_operator import syscalls
from seccomp_operator import validate as v
from seccomp_operator.containerd import Containerd, runc_accepts
from seccomp_operator.findings import Finding, ProfileError, Severity, errors
from seccomp_operator.render import render_mapping
from seccomp_operator.spec import parse_profile
from tests.conftest import REPO
from tests.webhooks import admission_registered

X86_64 = "SCMP_ARCH_X86_64"
RUNC_BASE: dict[str, Any] = yaml.safe_load(
    (REPO / "examples" / "baselines" / "runc-minimal.yaml").read_text()
)["spec"]
STARTUP = set(RUNC_BASE["syscalls"][0]["names"]) | {
    "getrandom",
    "ioctl",
    "prlimit64",
    "readlink",
    "rseq",
    "set_robust_list",
}
OTHERS = sorted(
    n for n in syscalls.syscall_names() if syscalls.resolve(n, X86_64) is not None and n not in STARTUP
)

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
names = st.lists(
    st.one_of(st.sampled_from([*OTHERS[:60], "", "<unknown>", "pread", "procexit", "total", "mseal"]), junk),
    max_size=5,
)
actions = st.one_of(st.sampled_from([*syscalls.ACTIONS, "scmp_act_allow", "SCMP_ACT_DENY"]), junk)
args = st.lists(
    st.fixed_dictionaries(
        {"index": st.one_of(st.integers(-1, 7), junk), "value": st.one_of(st.integers(0, 2**64), junk)},
        optional={
            "op": st.one_of(st.sampled_from(syscalls.OPERATORS), junk),
            "valueTwo": st.integers(0, 2**64),
        },
    ),
    max_size=3,
)
rules = st.fixed_dictionaries(
    {"names": st.one_of(names, junk), "action": actions},
    optional={
        "errnoRet": st.one_of(st.integers(-5, 70000), st.sampled_from(["38", "ENOSYS"]), junk),
        "args": st.one_of(args, junk),
        "name": st.one_of(st.sampled_from(OTHERS[:5]), junk),
        "includes": st.one_of(
            st.fixed_dictionaries(
                {}, optional={"caps": st.lists(st.sampled_from(["CAP_SYS_ADMIN", "CAP_X"]))}
            ),
            junk,
        ),
        "comment": junk,
    },
)
specs = st.fixed_dictionaries(
    {"defaultAction": actions},
    optional={
        "defaultErrnoRet": st.one_of(st.integers(-1, 70000), junk),
        "architectures": st.one_of(
            st.lists(st.sampled_from([*syscalls.ARCHITECTURES, "amd64"]), max_size=3), junk
        ),
        "flags": st.one_of(st.lists(st.sampled_from(syscalls.FLAGS), max_size=2), junk),
        "listenerPath": st.one_of(st.sampled_from(["/run/agent.sock", "relative.sock"]), junk),
        "listenerMetadata": junk,
        "syscalls": st.one_of(st.lists(rules, max_size=4), junk),
        "baseProfileName": st.one_of(st.sampled_from(["runc-minimal", "missing", "Bad_Name"]), junk),
        "archMap": junk,
        "defaultErrno": st.one_of(st.sampled_from(["ENOSYS", "EBOGUS"]), junk),
    },
)


def lookup(name: str) -> dict[str, Any] | None:
    return RUNC_BASE if name == "runc-minimal" else None


def only_findings(found: list[Finding]) -> None:
    assert all(isinstance(f, Finding) and isinstance(f.message, str) and f.message for f in found)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs)
def test_checks_never_crash(spec: dict[str, Any]) -> None:
    accepted, found = v.check_mapping(spec)
    only_findings(found)
    assert (accepted is None) == bool(errors(found))
    with admission_registered() as admission:
        bad, warned = admission.check_for_admission(spec, name="p", namespace="ns", memo=None)
    only_findings(bad + warned)
    if accepted is not None:
        only_findings(v.advise(accepted))
        try:
            rendered = render_mapping(spec, lookup_base=lookup, name="p")
        except ProfileError as e:
            assert errors(e.findings)
        else:
            merged, _ = parse_profile(rendered.document)
            assert merged is not None
            only_findings(v.runtime_findings(merged, v.runtime_base("runc@1.3.3")))
    # the same object as a Docker/CRI-O profile file
    only_findings(v.foreign_format_findings(spec))
    flat = cv.flatten(spec, cv.make_target("amd64", kernel="6.1"))
    only_findings(flat.findings)
    if isinstance(flat.data.get("syscalls"), list):
        assert len(flat.sources) == len(flat.data["syscalls"])


PLAIN_ACTIONS = [a for a in syscalls.ACTIONS if a != "SCMP_ACT_NOTIFY"]


@st.composite
def runnable_specs(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly valid specs on top of runc-minimal: each name in one rule only, so that most render."""
    pool = draw(st.lists(st.sampled_from(OTHERS), unique=True, max_size=24))
    rules: list[dict[str, Any]] = []
    while pool:
        size = draw(st.integers(1, max(1, len(pool))))
        chunk, pool = pool[:size], pool[size:]
        rule: dict[str, Any] = {"names": chunk, "action": draw(st.sampled_from(PLAIN_ACTIONS))}
        if rule["action"] in syscalls.ERRNO_ACTIONS and draw(st.booleans()):
            rule["errnoRet"] = draw(st.integers(1, 4094))
        if draw(st.booleans()):
            rule["args"] = draw(
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "index": st.integers(0, 5),
                            "value": st.integers(0, 2**64 - 1),
                            "op": st.sampled_from(syscalls.OPERATORS),
                        }
                    ),
                    max_size=2,
                    unique_by=lambda a: a["index"],
                )
            )
        rules.append(rule)
    default = draw(st.sampled_from(PLAIN_ACTIONS))
    spec: dict[str, Any] = {
        "defaultAction": default,
        "baseProfileName": "runc-minimal",
        "architectures": draw(
            st.lists(
                st.sampled_from([X86_64, "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"]), max_size=3
            )
        ),
        "syscalls": rules,
    }
    if default in syscalls.ERRNO_ACTIONS and draw(st.booleans()):
        spec["defaultErrnoRet"] = draw(st.sampled_from([1, 13, 38, 4094]))
    return spec


@pytest.mark.containerd
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=runnable_specs())
def test_accepted_specs_are_accepted_by_runc(
    spec: dict[str, Any], containerd: Containerd, busybox_root: Path, tmp_path: Path
) -> None:
    accepted, found = v.check_mapping(spec)
    if accepted is None:
        assert any(f.severity is Severity.ERROR for f in found)
        return
    try:
        rendered = render_mapping(spec, lookup_base=lookup, name="random")
    except ProfileError as e:
        assert errors(e.findings)
        return
    path = tmp_path / "random.json"
    path.write_bytes(rendered.content)
    ok, detail = runc_accepts(path, rootfs=busybox_root, address=containerd.address)
    assert ok, f"runc refused a profile the validator accepted:\n{json.dumps(rendered.document)}\n{detail}"
