"""atheris harness: arbitrary bytes as a bare profile JSON (``render_profile_json``).

Crash = any exception but :class:`ProfileError`, or a rendered file that is not
byte-for-byte stable when rendered again.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from seccomp_operator.findings import ProfileError
    from seccomp_operator.render import render_profile_json


def test_one_input(data: bytes) -> None:
    """One fuzz input: render it; a rendered file must render to itself."""
    try:
        rendered = render_profile_json(data)
    except ProfileError as exc:
        assert exc.findings, "ProfileError without findings"
        return
    assert render_profile_json(rendered.content).content == rendered.content


def main() -> None:
    """libFuzzer entry point (``sys.argv`` holds libFuzzer flags and corpus directories)."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
