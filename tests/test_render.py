"""Rendering: the normal form, base profiles, libseccomp compilation, and a property test."""

from __future__ import annotations

import hashlib
import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seccomp_operator import syscalls
from seccomp_operator.findings import BaseProfileMissing, ProfileError, Severity
from seccomp_operator.render import normalize, render, render_mapping, render_profile_json
from seccomp_operator.spec import ProfileSpec, SyscallArg, SyscallRule, parse_spec
from tests.test_reference_render import assert_strict_oci, assert_well_formed, oci_validator

ALLOW = "SCMP_ACT_ALLOW"
ERRNO = "SCMP_ACT_ERRNO"
X86_64 = "SCMP_ARCH_X86_64"


def rule(*names: str, action: str = ALLOW, **fields: Any) -> dict[str, Any]:
    return {"names": list(names), "action": action, **fields}


# --- normal form -------------------------------------------------------------------------------------


def test_key_order_and_only_oci_keys() -> None:
    rendered = render_mapping(
        {
            "syscalls": [
                {
                    "args": [{"op": "SCMP_CMP_MASKED_EQ", "valueTwo": 0, "value": 8, "index": 1}],
                    "errnoRet": 1,
                    "action": ERRNO,
                    "names": ["clone"],
                },
                rule("mount", action="SCMP_ACT_NOTIFY"),
                rule("read", "write"),
            ],
            "listenerMetadata": "m",
            "listenerPath": "/run/a.sock",
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "architectures": [X86_64],
            "defaultErrnoRet": 38,
            "defaultAction": ERRNO,
            "state": "Enabled",
        }
    )
    doc = rendered.document
    assert list(doc) == [
        "defaultAction",
        "defaultErrnoRet",
        "architectures",
        "flags",
        "listenerPath",
        "listenerMetadata",
        "syscalls",
    ]
    assert list(doc["syscalls"][0]) == ["names", "action", "errnoRet", "args"]
    assert list(doc["syscalls"][0]["args"][0]) == ["index", "value", "valueTwo", "op"]
    assert "state" not in rendered.content.decode()
    assert_well_formed(rendered)


def test_exact_bytes() -> None:
    rendered = render_mapping({"defaultAction": ALLOW, "syscalls": [rule("ptrace", "kcmp", action=ERRNO)]})
    assert rendered.content == (
        b'{\n  "defaultAction": "SCMP_ACT_ALLOW",\n  "syscalls": [\n    {\n      "names": [\n'
        b'        "kcmp",\n        "ptrace"\n      ],\n      "action": "SCMP_ACT_ERRNO"\n    }\n  ]\n}\n'
    )
    assert rendered.sha256 == hashlib.sha256(rendered.content).hexdigest()


def test_merge_dedupe_sort_and_drop_redundant() -> None:
    args = [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]
    rendered = render_mapping(
        {
            "defaultAction": ERRNO,
            "architectures": [X86_64, "SCMP_ARCH_X86", X86_64],
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [
                rule("write", "read", "read"),
                rule("ptrace", action=ERRNO, errnoRet=38),
                rule("close", "brk"),
                rule("kcmp", action=ERRNO),  # same effect as the default (EPERM): dropped
                rule("keyctl", action=ERRNO, errnoRet=1),  # also EPERM: dropped
                rule("personality", args=args),
                rule("add_key", action=ERRNO, errnoRet=38),
                rule("setns", args=args),
                rule("clone3", "openat2"),
            ],
        }
    )
    assert rendered.document == {
        "defaultAction": ERRNO,
        "architectures": [X86_64, "SCMP_ARCH_X86"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["brk", "clone3", "close", "openat2", "read", "write"], "action": ALLOW},
            {"names": ["add_key", "ptrace"], "action": ERRNO, "errnoRet": 38},
            {"names": ["personality", "setns"], "action": ALLOW, "args": args},
        ],
    }
    infos = [f for f in rendered.findings if f.severity is Severity.INFO]
    assert {f.path for f in infos} == {"spec.syscalls[3].action", "spec.syscalls[4].action"}


def test_profile_without_rules_has_no_syscalls_key() -> None:
    rendered = render_mapping(
        {"defaultAction": "SCMP_ACT_LOG", "syscalls": [rule("read", action="SCMP_ACT_LOG")]}
    )
    assert rendered.document == {"defaultAction": "SCMP_ACT_LOG"}
    assert rendered.content == b'{\n  "defaultAction": "SCMP_ACT_LOG"\n}\n'


def test_value_two_kept_when_given_and_omitted_otherwise() -> None:
    args = [
        {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"},
    ]
    doc = render_mapping(
        {"defaultAction": ALLOW, "syscalls": [rule("clone", action=ERRNO, args=args)]}
    ).document
    assert doc["syscalls"][0]["args"] == args


def test_ascii_escapes() -> None:
    rendered = render_mapping(
        {
            "defaultAction": ALLOW,
            "listenerPath": "/run/ä.sock",
            "listenerMetadata": "ü",
            "syscalls": [rule("mount", action="SCMP_ACT_NOTIFY")],
        }
    )
    assert b"\\u00e4" in rendered.content and b"\\u00fc" in rendered.content
    assert rendered.document["listenerMetadata"] == "ü"


def test_deterministic_whatever_the_input_order() -> None:
    a = {
        "defaultAction": ERRNO,
        "architectures": [X86_64],
        "syscalls": [rule("b", "a") | {"names": ["read", "close"]}],
    }
    b = {
        "syscalls": [{"action": ALLOW, "names": ["close", "read", "close"]}],
        "architectures": [X86_64],
        "defaultAction": ERRNO,
    }
    first, second = render_mapping(a), render_mapping(b)
    assert first.content == second.content and first.sha256 == second.sha256
    assert render_mapping(a) == first


def test_bare_json_legacy_keys_never_emitted() -> None:
    rendered = render_profile_json(
        '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "chmod", "action": "SCMP_ACT_ERRNO", '
        '"comment": "x", "args": []}]}'
    )
    assert rendered.document == {"defaultAction": ALLOW, "syscalls": [{"names": ["chmod"], "action": ERRNO}]}
    assert [f.severity for f in rendered.findings] == [Severity.WARNING, Severity.INFO]


def test_normalize_reports_sources() -> None:
    spec, _ = parse_spec(
        {"defaultAction": ERRNO, "syscalls": [rule("a1"), rule("b1", action=ERRNO), rule("c1")]}
    )
    assert spec is not None
    doc, sources = normalize(spec)
    assert sources == [[0, 2]] and doc["syscalls"] == [{"names": ["a1", "c1"], "action": ALLOW}]


# --- errors ------------------------------------------------------------------------------------------


def test_errors_first_and_nothing_rendered() -> None:
    with pytest.raises(ProfileError) as info:
        render_mapping({"defaultAction": ERRNO, "syscalls": [rule("read", "pread")]})
    severities = [f.severity for f in info.value.findings]
    assert severities[0] is Severity.ERROR and Severity.WARNING in severities
    assert severities == sorted(severities, key=lambda s: s is not Severity.ERROR)
    assert info.value.reason == "InvalidSpec"


def test_parse_warnings_travel_with_validation_errors() -> None:
    with pytest.raises(ProfileError) as info:
        render_profile_json(
            '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "pread", "action": "SCMP_ACT_ERRNO"}]}'
        )
    assert [f.severity for f in info.value.findings] == [Severity.ERROR, Severity.WARNING]


def test_compile_failure_is_a_profile_error_naming_the_input_field(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(document: dict[str, Any]) -> int:
        assert document["syscalls"][0]["names"] == ["read", "write"]
        raise syscalls.CompileError(
            "syscalls[0].names[1]", "libseccomp refused the rule for 'write': Invalid argument"
        )

    monkeypatch.setattr(syscalls, "compile_filter", refuse)
    spec = {
        "defaultAction": ERRNO,
        "defaultErrnoRet": 38,
        "syscalls": [rule("read"), rule("kcmp", action=ERRNO, errnoRet=5), rule("write")],
    }
    with pytest.raises(ProfileError) as info:
        render_mapping(spec)
    (error,) = [f for f in info.value.findings if f.severity is Severity.ERROR]
    assert error.path == "spec.syscalls[2].names[0]" and "write" in error.message


def test_bpf_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syscalls, "compile_filter", lambda document: 5000)
    with pytest.raises(ProfileError) as info:
        render_mapping({"defaultAction": ALLOW})
    assert "BPF_MAXINSNS" in str(info.value)


# --- base profiles ------------------------------------------------------------------------------------


BASE = {
    "defaultAction": ERRNO,
    "architectures": [X86_64],
    "flags": ["SECCOMP_FILTER_FLAG_LOG"],
    "syscalls": [rule("read", "write"), rule("ptrace", action=ERRNO, errnoRet=38)],
}


def lookup_from(specs: dict[str, dict[str, Any]]) -> Any:
    parsed = {name: parse_spec(s)[0] for name, s in specs.items()}
    return lambda name: parsed.get(name)


def test_base_rules_first_union_and_own_fields_win() -> None:
    own = {
        "baseProfileName": "base",
        "defaultAction": ERRNO,
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_AARCH64", X86_64],
        "syscalls": [rule("close", "read"), rule("kcmp", action=ERRNO, errnoRet=1)],
    }
    rendered = render_mapping(own, lookup_base=lookup_from({"base": BASE}))
    assert rendered.document == {
        "defaultAction": ERRNO,
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_AARCH64", X86_64],
        "syscalls": [
            {"names": ["close", "read", "write"], "action": ALLOW},
            {"names": ["kcmp"], "action": ERRNO, "errnoRet": 1},
        ],
    }  # ptrace (ERRNO 38) equals the own default: dropped; the base's flags are not inherited
    assert_well_formed(rendered)


def test_base_chain_and_paths_of_base_findings() -> None:
    specs = {
        "mid": {
            "defaultAction": ERRNO,
            "baseProfileName": "root",
            "syscalls": [rule("open")],
            "architectures": ["SCMP_ARCH_AARCH64"],
        },
        "root": {"defaultAction": ERRNO, "syscalls": [rule("brk")]},
    }
    own = {
        "defaultAction": ERRNO,
        "defaultErrnoRet": 38,
        "baseProfileName": "mid",
        "syscalls": [rule("read")],
    }
    rendered = render_mapping(own, lookup_base=lookup_from(specs))
    assert rendered.document["syscalls"] == [{"names": ["brk", "open", "read"], "action": ALLOW}]
    (warning,) = [f for f in rendered.findings if f.severity is Severity.WARNING]
    assert warning.path == "spec.baseProfileName[mid].syscalls[0].names[0]" and '"open"' in warning.message


def test_conflict_between_base_and_own_rule() -> None:
    own = {
        "defaultAction": ALLOW,
        "baseProfileName": "base",
        "syscalls": [rule("write", action=ERRNO, errnoRet=5)],
    }
    with pytest.raises(ProfileError) as info:
        render_mapping(own, lookup_base=lookup_from({"base": BASE}))
    (error,) = [f for f in info.value.findings if f.severity is Severity.ERROR]
    assert error.path == "spec.syscalls[0].names[0]"
    assert "spec.baseProfileName[base].syscalls[0]" in error.message


def test_missing_base() -> None:
    own = {"defaultAction": ERRNO, "baseProfileName": "mid"}
    with pytest.raises(BaseProfileMissing) as info:
        render_mapping(
            own, lookup_base=lookup_from({"mid": {"defaultAction": ERRNO, "baseProfileName": "gone"}})
        )
    assert "mid -> gone" in str(info.value) and info.value.reason == "BaseProfileMissing"
    with pytest.raises(BaseProfileMissing):
        render_mapping(own)  # no lookup at all


def test_cycle_and_depth() -> None:
    specs = {
        "a": {"defaultAction": ERRNO, "baseProfileName": "b"},
        "b": {"defaultAction": ERRNO, "baseProfileName": "a"},
    }
    with pytest.raises(ProfileError) as info:
        render_mapping(specs["a"], lookup_base=lookup_from(specs), name="a")
    assert type(info.value) is ProfileError and "cycle: a -> b -> a" in str(info.value)
    with pytest.raises(ProfileError) as info:
        render_mapping(specs["a"], lookup_base=lookup_from(specs))
    assert "cycle: this profile -> b -> a -> b" in str(info.value)

    chain = {f"p{i}": {"defaultAction": ERRNO, "baseProfileName": f"p{i + 1}"} for i in range(12)}
    chain["p12"] = {"defaultAction": ERRNO}
    with pytest.raises(ProfileError) as info:
        render_mapping(chain["p0"], lookup_base=lookup_from(chain), name="p0")
    assert "longer than 8" in str(info.value)
    assert render_mapping(chain["p5"], lookup_base=lookup_from(chain), max_depth=7).document == {
        "defaultAction": ERRNO
    }


def test_invalid_base_is_refused() -> None:
    with pytest.raises(ProfileError) as info:
        render_mapping(
            {"defaultAction": ERRNO, "baseProfileName": "bad"},
            lookup_base=lambda name: ProfileSpec(default_action="SCMP_ACT_DENY"),
        )
    paths = [f.path for f in info.value.findings]
    assert paths == ["spec.baseProfileName", "spec.baseProfileName[bad].defaultAction"]


def test_lookup_may_return_raw_spec_mappings() -> None:
    own = {
        "defaultAction": ERRNO,
        "defaultErrnoRet": 38,
        "baseProfileName": "base",
        "syscalls": [rule("close")],
    }
    rendered = render_mapping(own, lookup_base={"base": BASE}.get)
    assert rendered.document["syscalls"][0]["names"] == ["close", "read", "write"]
    bad = {"defaultAction": ERRNO, "syscalls": [rule("read", action=ERRNO, errnoRet="ENOSYS")], "bogus": 1}
    with pytest.raises(ProfileError) as info:
        render_mapping(own, lookup_base={"base": bad}.get)
    assert type(info.value) is ProfileError
    assert [f.path for f in info.value.findings] == [
        "spec.baseProfileName",
        "spec.baseProfileName[base].bogus",
        "spec.baseProfileName[base].syscalls[0].errnoRet",
    ]


def test_render_checks_its_own_spec_first() -> None:
    with pytest.raises(ProfileError):
        render(ProfileSpec(default_action="", base_profile_name="x"), lookup_base=lambda name: None)


# --- libseccomp seam ------------------------------------------------------------------------------------


def test_resolve() -> None:
    assert syscalls.resolve("read", X86_64) == 0
    assert syscalls.resolve("read", "SCMP_ARCH_AARCH64") == 63
    assert syscalls.resolve("socket", "SCMP_ARCH_X86") is not None  # multiplexed through socketcall
    assert syscalls.resolve("vm86", X86_64) is None
    assert syscalls.resolve("pread", X86_64) is None
    assert syscalls.resolve("read", "SCMP_ARCH_NOPE") is None
    assert syscalls.resolve("re\x00ad", X86_64) is None
    assert syscalls.resolve("\ud800", X86_64) is None
    assert syscalls.native_arch() in syscalls.ARCHITECTURES
    assert syscalls.resolve_number(59, X86_64) == "execve"
    assert syscalls.resolve_number(2**40, X86_64) is None
    assert {"read", "pread64", "vm86", "cacheflush"} <= syscalls.syscall_names()
    assert syscalls.libseccomp_version().count(".") == 2


def test_action_values_like_runc() -> None:
    assert syscalls.action_value("SCMP_ACT_KILL") == syscalls.action_value("SCMP_ACT_KILL_THREAD")
    assert syscalls.action_value(ERRNO) == syscalls.action_value(ERRNO, 1)
    assert syscalls.action_value("SCMP_ACT_TRACE") == syscalls.action_value("SCMP_ACT_TRACE", 1)
    assert syscalls.action_value(ALLOW, 5) == syscalls.action_value(ALLOW)
    with pytest.raises(ValueError):
        syscalls.action_value("SCMP_ACT_DENY")
    with pytest.raises(ValueError):
        syscalls.action_value(ERRNO, 65536)
    with pytest.raises(ValueError):
        syscalls.operator_value("SCMP_CMP_XX")


def test_compile_filter_like_runc() -> None:
    base = {
        "defaultAction": ERRNO,
        "architectures": [X86_64],
        "syscalls": [{"names": ["read"], "action": ALLOW}],
    }
    size = syscalls.compile_filter(base)
    assert size > 0
    # unknown names and rules with the default action are skipped, as runc does
    skipped = {
        **base,
        "syscalls": [
            {"names": ["read", "no_such_call"], "action": ALLOW},
            {"names": ["write"], "action": ERRNO, "errnoRet": 1},
        ],
    }
    assert syscalls.compile_filter(skipped) == size
    # more arches, more instructions; unknown-to-libseccomp arches are skipped
    assert syscalls.compile_filter({**base, "architectures": [X86_64, "SCMP_ARCH_X86"]}) > size
    same_index = {
        "defaultAction": ERRNO,
        "syscalls": [
            {
                "names": ["clone"],
                "action": ALLOW,
                "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                ],
            }
        ],
    }
    assert syscalls.compile_filter(same_index) > 0
    many = {
        "defaultAction": ERRNO,
        "syscalls": [{"names": sorted(syscalls.syscall_names())[:100], "action": ALLOW}],
    }
    assert syscalls.compile_filter(many) > 0


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"defaultAction": "SCMP_ACT_NOTIFY"}, "defaultAction"),
        ({"defaultAction": "SCMP_ACT_NOPE"}, "defaultAction"),
        ({"defaultAction": ERRNO, "defaultErrnoRet": 5000}, "defaultAction"),
        (
            {"defaultAction": ALLOW, "syscalls": [{"names": ["read"], "action": ERRNO, "errnoRet": 5000}]},
            "syscalls[0].names[0]",
        ),
        (
            {"defaultAction": ALLOW, "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]},
            "syscalls[0].names[0]",
        ),
        (
            {
                "defaultAction": ALLOW,
                "syscalls": [
                    {
                        "names": ["read"],
                        "action": ERRNO,
                        "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
            "syscalls[0].args[0]",
        ),
        (
            {
                "defaultAction": ALLOW,
                "syscalls": [
                    {"names": ["read"], "action": ERRNO, "args": [{"index": 0, "value": 1, "op": "EQ"}]}
                ],
            },
            "syscalls[0].args[0]",
        ),
    ],
)
def test_compile_filter_refusals(document: dict[str, Any], path: str) -> None:
    with pytest.raises(syscalls.CompileError) as info:
        syscalls.compile_filter(document)
    assert info.value.path == path


# --- property: nothing crashes, everything rendered compiles --------------------------------------------

NAMES = [
    "read",
    "write",
    "openat",
    "close",
    "mount",
    "clone",
    "clone3",
    "openat2",
    "vm86",
    "sigreturn",
    "socket",
    "ptrace",
    "",
    "pread",
    "<unknown>",
    "READ",
    " read",
    "syscall_0x1",
]
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2**65),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, strategy, strategy, junk)


actions = maybe(st.sampled_from([*syscalls.ACTIONS, "scmp_act_allow", "SCMP_ACT_DENY"]))
numbers = maybe(st.one_of(st.integers(-2, 70000), st.sampled_from(["38", "ENOSYS", "0x1"])))
args = st.fixed_dictionaries(
    {
        "index": maybe(st.integers(-1, 7)),
        "value": maybe(st.integers(-1, 2**64)),
        "op": maybe(st.sampled_from([*syscalls.OPERATORS, "EQ"])),
    },
    optional={"valueTwo": maybe(st.integers(0, 2**64))},
)
rules = st.fixed_dictionaries(
    {"names": maybe(st.lists(maybe(st.sampled_from(NAMES)), max_size=5)), "action": actions},
    optional={
        "errnoRet": numbers,
        "args": maybe(st.lists(args, max_size=3)),
        "name": junk,
        "comment": st.text(max_size=3),
    },
)
specs = st.fixed_dictionaries(
    {"defaultAction": actions},
    optional={
        "defaultErrnoRet": numbers,
        "architectures": maybe(
            st.lists(maybe(st.sampled_from([*syscalls.ARCHITECTURES, "amd64"])), max_size=3)
        ),
        "flags": maybe(st.lists(maybe(st.sampled_from(syscalls.FLAGS)), max_size=2)),
        "listenerPath": maybe(st.sampled_from(["/run/agent.sock", "agent.sock", ""])),
        "listenerMetadata": maybe(st.text(max_size=4)),
        "syscalls": maybe(st.lists(rules, max_size=4)),
        "baseProfileName": maybe(st.sampled_from(["base", "missing", "Bad_Name"])),
        "state": maybe(st.sampled_from(["Enabled", "Disabled", "enabled"])),
        "default_action": st.just(1),
    },
)
REAL = sorted(n for n in syscalls.syscall_names() if syscalls.resolve(n, X86_64) is not None)[:80]
plain_actions = st.sampled_from([a for a in syscalls.ACTIONS if a != "SCMP_ACT_NOTIFY"])
valid_args = st.lists(
    st.fixed_dictionaries(
        {
            "index": st.integers(0, 5),
            "value": st.integers(0, 2**64 - 1),
            "op": st.sampled_from(syscalls.OPERATORS),
        },
        optional={"valueTwo": st.integers(0, 2**64 - 1)},
    ),
    max_size=3,
    unique_by=lambda a: a["index"],
)


@st.composite
def valid_rules(draw: st.DrawFn) -> dict[str, Any]:
    action = draw(plain_actions)
    out: dict[str, Any] = {
        "names": draw(st.lists(st.sampled_from(REAL), min_size=1, max_size=6)),
        "action": action,
    }
    if action in syscalls.ERRNO_ACTIONS and draw(st.booleans()):
        out["errnoRet"] = draw(st.integers(1, 4094))
    if draw(st.booleans()):
        out["args"] = draw(valid_args)
    return out


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly valid specs (conflicts between rules still happen), so that many render."""
    default = draw(plain_actions)
    out: dict[str, Any] = {"defaultAction": default, "syscalls": draw(st.lists(valid_rules(), max_size=6))}
    if default in syscalls.ERRNO_ACTIONS and draw(st.booleans()):
        out["defaultErrnoRet"] = draw(st.integers(1, 4094))
    out["architectures"] = draw(
        st.lists(st.sampled_from([X86_64, "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"]), max_size=3)
    )
    if draw(st.booleans()):
        out["flags"] = draw(st.lists(st.sampled_from(syscalls.FLAGS[:3]), max_size=2))
    if draw(st.booleans()):
        out["syscalls"].append({"names": ["mount"], "action": "SCMP_ACT_NOTIFY"})
        out["listenerPath"] = "/run/agent.sock"
    if draw(st.booleans()):
        out["baseProfileName"] = "base"
    return out


BASE_SPEC = parse_spec(BASE)[0]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(specs, valid_specs()))
def test_random_specs_never_crash_and_rendered_output_compiles(spec: dict[str, Any]) -> None:
    try:
        rendered = render_mapping(spec, lookup_base=lambda name: BASE_SPEC if name == "base" else None)
    except ProfileError as exc:
        assert any(f.severity is Severity.ERROR for f in exc.findings)
        return
    assert syscalls.compile_filter(rendered.document) == rendered.bpf_instructions
    assert_strict_oci(rendered.document)
    assert not list(oci_validator().iter_errors(rendered.document))
    assert render_profile_json(rendered.content).content == rendered.content


json_ish = st.text(alphabet=string.printable + "\ufeff\u00e4", max_size=60)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        json_ish, st.binary(max_size=60), specs.map(json.dumps), specs.map(lambda s: json.dumps(s)[:-1])
    )
)
def test_random_text_never_crashes(text: str | bytes) -> None:
    try:
        render_profile_json(text)
    except ProfileError as exc:
        assert any(f.severity is Severity.ERROR for f in exc.findings)


def test_random_rule_objects_in_spec_model_render_or_refuse() -> None:
    spec = ProfileSpec(
        default_action=ERRNO,
        syscalls=(
            SyscallRule(
                names=("read",), action=ALLOW, args=(SyscallArg(index=9, value=0, op="SCMP_CMP_EQ"),)
            ),
        ),
    )
    with pytest.raises(ProfileError):
        render(spec)
