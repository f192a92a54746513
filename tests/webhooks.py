"""The admission module as the controller wires it (its handler is on the controller's registry)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType

from seccomp_operator import admission, controller_handlers


@contextlib.contextmanager
def admission_registered() -> Iterator[ModuleType]:
    """:mod:`seccomp_operator.admission`, asserting its handler is on the controller's registry."""
    handlers = controller_handlers.registry._webhooks.get_all_handlers()
    assert any(h.id == admission.HANDLER_ID for h in handlers)
    yield admission
