"""atheris harness: arbitrary bytes as a file given to the CLI (``inputs.load_file``).

The first byte picks the file name's suffix (``.yaml`` or ``.json``); the rest is the
file.  Crash = any exception but :class:`InputError` from ``load_file``/``render_one``.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from seccomp_operator import inputs

_DIR = tempfile.mkdtemp(prefix="fuzz-inputs-")


def test_one_input(data: bytes) -> None:
    """One fuzz input: load the file and render its (first) profile."""
    suffix = ".json" if data[:1] == b"j" else ".yaml"
    path = os.path.join(_DIR, "input" + suffix)
    with open(path, "wb") as f:
        f.write(data[1:])
    try:
        loaded = inputs.load_file(path)
        inputs.render_one(loaded, name=next(iter(loaded.resources), None))
    except inputs.InputError as exc:
        assert exc.findings, "InputError without findings"


def main() -> None:
    """libFuzzer entry point."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
