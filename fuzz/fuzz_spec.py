"""atheris harness: a spec mapping built from the fuzz input (the API server's path).

The input is consumed by :class:`atheris.FuzzedDataProvider` into a nested value whose
keys favour the real field names, then parsed, validated, rendered and policy-checked.
Crash = any exception but :class:`ProfileError` from rendering (the others never raise).
"""

from __future__ import annotations

import sys
from typing import Any

import atheris

with atheris.instrument_imports():
    from seccomp_operator import policy, spec, validate
    from seccomp_operator.findings import ProfileError
    from seccomp_operator.render import render_mapping

_KEYS = [*spec.CR_KEYS, *spec.RULE_KEYS, *spec.ARG_KEYS, "name", "comment", "x"]
_WORDS = ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_NOTIFY", "SCMP_ACT_LOG", "read", "bpf", "write",
          "SCMP_ARCH_X86_64", "SCMP_CMP_EQ", "/run/a.sock", "38", "Disabled", "base"]  # fmt: skip
_POLICIES = [
    policy.parse_policy(
        {
            "metadata": {"name": "fuzz"},
            "spec": {"denyAllowAllDefault": True, "deniedSyscalls": list(policy.HIGH_RISK_SYSCALLS),
                     "allowedActions": ["SCMP_ACT_ERRNO", "SCMP_ACT_ALLOW"]},
        }
    )
]  # fmt: skip


def _value(fdp: atheris.FuzzedDataProvider, depth: int) -> Any:
    kind = fdp.ConsumeIntInRange(0, 9 if depth < 6 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeIntInRange(-(2**65), 2**65)
    if kind == 3:
        return fdp.ConsumeRegularFloat()
    if kind == 4:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 16))
    if kind in (5, 6):
        return _WORDS[fdp.ConsumeIntInRange(0, len(_WORDS) - 1)]
    if kind == 7:
        return [_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    out: dict[str, Any] = {}
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        key = _KEYS[fdp.ConsumeIntInRange(0, len(_KEYS) - 1)] if fdp.ConsumeBool() else fdp.ConsumeUnicode(4)
        out[key] = _value(fdp, depth + 1)
    return out


def test_one_input(data: bytes) -> None:
    """One fuzz input: build a spec, then parse, validate, render and policy-check it."""
    fdp = atheris.FuzzedDataProvider(data)
    value = _value(fdp, 0)
    parsed, _ = spec.parse_spec(value, partial=True)
    if parsed is not None:
        validate.validate(parsed)
    base = value if isinstance(value, dict) else None
    try:
        render_mapping(value, lookup_base=lambda name: base)
    except ProfileError as exc:
        assert exc.findings
    policy.check(value, "ns", _POLICIES, lookup_base=lambda name: base)


def main() -> None:
    """libFuzzer entry point."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
