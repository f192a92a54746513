"""Bad input: arbitrary values, arbitrary text, huge and deeply nested inputs, wrong types.

``tests/test_render.py`` fuzzes with profile-shaped strategies; here the inputs are
arbitrary JSON values (recursive), arbitrary YAML/JSON text through the file reader,
and adversarial sizes.  Each gets findings (a clear error), never an exception other
than the documented ones, within bounded CPU time (``resource``, not wall clock) and
bounded memory (``tracemalloc`` peak).  Through the agent, a huge profile is an Error
entry and nothing is written (no partial file, no temporary file).
"""

from __future__ import annotations

import json
import os
import resource
import string
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seccomp_operator import constants as c
from seccomp_operator import inputs, policy, spec, validate
from seccomp_operator.findings import ProfileError, Severity
from seccomp_operator.render import render_mapping, render_profile_json
from tests.test_faults_support import FakeApi, make_agent, profile_body, profile_file

# --- arbitrary values ---------------------------------------------------------------------------

KEYS = [*spec.CR_KEYS, *spec.RULE_KEYS, *spec.ARG_KEYS, "name", "comment", "includes", "archMap", "x", ""]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "read", "bpf", "SCMP_ARCH_X86_64", "38", "Disabled"]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=6),
    ),
    max_leaves=40,
)
spec_like = st.dictionaries(st.sampled_from(KEYS), values, max_size=8)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(values, spec_like))
def test_parse_validate_render_and_policy_never_crash_on_arbitrary_values(value: Any) -> None:
    parsed, found = spec.parse_spec(value)
    if parsed is not None:  # a spec comes back only without errors
        assert not any(f.severity is Severity.ERROR for f in found)
    partial, found = spec.parse_spec(value, partial=True)
    if partial is not None:
        for f in validate.validate(partial):  # never raises, findings only
            assert f.severity in set(Severity)
    try:
        rendered = render_mapping(value)
    except ProfileError as exc:
        assert any(f.severity is Severity.ERROR for f in exc.findings)
    else:
        assert rendered.content.endswith(b"\n") and json.loads(rendered.content)
    policies = [policy.parse_policy({"metadata": {"name": "p"}, "spec": {"deniedSyscalls": ["bpf"]}})]
    for f in policy.check(
        value, "ns", policies, lookup_base=lambda _: value if isinstance(value, dict) else None
    ):
        assert f.severity is Severity.ERROR and 'SeccompPolicy "p"' in f.message


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(values.map(json.dumps), values.map(lambda v: json.dumps(v)[: max(1, len(json.dumps(v)) // 2)]))
)
def test_parse_profile_json_never_crashes_on_json_text(text: str) -> None:
    parsed, found = spec.parse_profile_json(text)
    if parsed is None:
        assert any(f.severity is Severity.ERROR for f in found)
    for data in (text, text.encode()):
        try:
            render_profile_json(data)
        except ProfileError as exc:
            assert exc.findings


yamlish = st.text(alphabet=string.printable + "\u00e4\ufeff", max_size=200)
yaml_docs = st.one_of(
    yamlish,
    spec_like.map(
        lambda s: (
            "apiVersion: seccomp-operator.dev/v1alpha1\nkind: SeccompProfile\nmetadata: {name: x}\nspec: "
            + json.dumps(s)
        )
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=yaml_docs, suffix=st.sampled_from([".yaml", ".json"]))
def test_load_file_never_crashes_on_arbitrary_text(tmp_path: Path, text: str, suffix: str) -> None:
    path = tmp_path / f"input{suffix}"
    path.write_text(text, encoding="utf-8")
    try:
        loaded = inputs.load_file(str(path))
        inputs.render_one(loaded, name=next(iter(loaded.resources), None))
    except inputs.InputError as exc:
        assert exc.findings and any(f.severity is Severity.ERROR for f in exc.findings)


# --- huge and deep inputs: bounded CPU time and memory ---------------------------------------------


@contextmanager
def bounded(cpu_seconds: float, peak_bytes: int) -> Iterator[None]:
    """Assert the block used at most ``cpu_seconds`` of CPU (user+system) and ``peak_bytes`` of
    Python heap at its peak (``tracemalloc``).  Generous bounds: they catch blow-ups, not noise."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = usage.ru_utime + usage.ru_stime
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime - start
    assert used <= cpu_seconds, f"used {used:.1f} s of CPU, bound {cpu_seconds} s"
    assert peak <= peak_bytes, f"peak heap {peak / 1e6:.1f} MB, bound {peak_bytes / 1e6:.1f} MB"


def _refused(fn: Callable[[], Any], *words: str) -> str:
    with pytest.raises(ProfileError) as info:
        fn()
    text = str(info.value)
    for w in words:
        assert w in text
    return text


MB = 1024 * 1024


def test_a_10_mb_profile_is_refused_quickly() -> None:
    body = json.dumps(
        {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
    )
    text = body + " " * (10 * 1000 * 1000 - len(body))
    with bounded(cpu_seconds=5, peak_bytes=40 * MB):
        _refused(lambda: render_profile_json(text), "bytes long", str(spec.MAX_TEXT_BYTES))


def test_100000_unknown_names_cost_seconds_not_minutes() -> None:
    """Each unknown name used to cost a "did you mean" search (~13 ms): 100,000 of them took
    over 20 minutes of CPU on the controller and on every agent.  Now the checks stop after
    ``NAME_ERROR_LIMIT`` wrong names."""
    names = [f"name{i}" for i in range(100_000)]
    s = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}
    with bounded(cpu_seconds=30, peak_bytes=200 * MB), pytest.raises(ProfileError) as info:
        render_mapping(s)
    found = info.value.findings
    assert len(found) <= validate.NAME_ERROR_LIMIT + 5
    assert any("are not checked" in f.message for f in found)


def test_100001_names_and_10000_conditions_are_refused() -> None:
    names = ["read", "write", "close", "getpid"] * 25_000 + ["read"]
    s = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}
    with bounded(cpu_seconds=10, peak_bytes=100 * MB):
        _refused(lambda: render_mapping(s), "more than 100000 syscall names")
    rules = [
        {
            "names": ["read"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": i, "op": "SCMP_CMP_EQ"}],
        }
        for i in range(spec.MAX_RULES)
    ]
    s = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules}
    with bounded(cpu_seconds=60, peak_bytes=300 * MB):
        _refused(lambda: render_mapping(s), "argument conditions", "BPF_MAXINSNS")


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_deeply_nested_json_is_refused(depth: int) -> None:
    with bounded(cpu_seconds=5, peak_bytes=50 * MB):
        _refused(lambda: render_profile_json("[" * depth + "]" * depth), "nested")


def test_deeply_nested_python_values_are_type_errors() -> None:
    deep: list[Any] = []
    inner = deep
    for _ in range(100_000):
        nxt: list[Any] = []
        inner.append(nxt)
        inner = nxt
    for s in ({"defaultAction": deep}, {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": deep}):
        with bounded(cpu_seconds=5, peak_bytes=50 * MB):
            _refused(lambda s=s: render_mapping(s), "got a list")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a: " + "[" * 100_000 + "]" * 100_000, "nested more than"),
        ("a:\n" + "".join("  " * i + "-\n" for i in range(2_000)), "nested more than"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"b{i}: &b{i} [{', '.join(['*a' if i == 0 else f'*b{i - 1}'] * 9)}]\n" for i in range(200)
            ),
            "aliases",
        ),
        ("spec: !!python/object/apply:os.system ['true']\n", "neither JSON nor YAML"),
        ("a: b: c", "neither JSON nor YAML"),
    ],
    ids=["deep-flow", "deep-block", "alias-bomb", "python-tag", "malformed"],
)
def test_hostile_yaml_files_get_a_clear_error(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "in.yaml"
    path.write_text(text)
    with bounded(cpu_seconds=20, peak_bytes=100 * MB), pytest.raises(inputs.InputError) as info:
        inputs.load_file(str(path))
    assert words in str(info.value)


@pytest.mark.parametrize(
    "value",
    [None, 1, "SCMP_ACT_ALLOW", ["defaultAction"], True, 1.5, {"defaultAction": 1}, {"syscalls": {}}],
    ids=repr,
)
def test_wrong_types_are_errors_naming_the_field(value: Any) -> None:
    text = _refused(lambda: render_mapping(value))
    assert "spec" in text


async def test_a_huge_profile_from_the_api_is_an_error_on_the_node_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    root = tmp_path / "kubelet"
    root.mkdir()
    names = [f"n{i}" for i in range(100_000)]
    huge = profile_body(
        "demo",
        "huge",
        {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]},
    )
    ok = profile_body("demo", "ok", {"defaultAction": "SCMP_ACT_ALLOW"})
    api = FakeApi([huge, ok])
    agent = make_agent(root, api)
    with bounded(cpu_seconds=30, peak_bytes=300 * MB):
        await agent.step()
    assert api.profiles["demo/huge"]["state"] == c.NODE_ERROR
    assert "not written" in api.profiles["demo/huge"]["message"]
    assert len(api.profiles["demo/huge"]["message"]) <= c.MESSAGE_CAP
    assert api.profiles["demo/ok"]["state"] == c.NODE_INSTALLED
    assert not profile_file(root, "demo", "huge").exists()
    assert [
        n for n in os.listdir(profile_file(root, "demo", "ok").parent) if n.startswith(c.TEMP_PREFIX)
    ] == []
