"""The webhook's TLS certificate is rotated without restarting the server.

The certificate lives in a directory laid out like a kubelet Secret volume: ``tls.crt`` and
``tls.key`` are symlinks into ``..data``, itself a symlink to a timestamped directory; an update
writes a new timestamped directory and swaps ``..data`` with one ``rename(2)``, then removes the
old directory (the kubelet's atomic writer, ``pkg/volume/util/atomic_writer.go``).  The real
server (:class:`~seccomp_operator.webhook_server.ReloadingWebhookServer`, as
:func:`~seccomp_operator.admission.configure_webhooks` sets it up) is asked over real TLS
connections which certificate it presents.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import shutil
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest

from seccomp_operator import admission
from seccomp_operator import constants as c
from seccomp_operator.webhook_server import ReloadingWebhookServer
from tests.polling import eventually
from tests.webhooks import Served, admission_registered, controller_memo, make_certificate, review, serving

RELOAD = 0.05  # seconds between two checks of the files, in these tests


class SecretVolume:
    """A directory updated the way the kubelet updates a mounted Secret."""

    _stamps = itertools.count(1)

    def __init__(self, root: Path, cert: bytes, key: bytes) -> None:
        self.root = root
        root.mkdir()
        self.update(cert, key)
        for name in ("tls.crt", "tls.key"):
            (root / name).symlink_to(f"..data/{name}")

    @property
    def cert(self) -> Path:
        return self.root / "tls.crt"

    @property
    def key(self) -> Path:
        return self.root / "tls.key"

    def update(self, cert: bytes, key: bytes) -> None:
        """New timestamped directory, ``..data_tmp`` -> it, renamed over ``..data``; old one removed."""
        data = self.root / "..data"
        old = os.readlink(data) if data.is_symlink() else None
        stamp = f"..2026_01_01_00_00_{next(self._stamps):02d}.000000001"
        fresh = self.root / stamp
        fresh.mkdir(mode=0o755)
        (fresh / "tls.crt").write_bytes(cert)
        (fresh / "tls.key").write_bytes(key)
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(stamp)
        os.rename(tmp, data)  # atomic: every reader sees the old pair or the new one
        if old is not None:
            shutil.rmtree(self.root / old)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, bytes]]:
    """Three self-signed pairs for 127.0.0.1: ``{"A": (cert PEM, key PEM), "B": ..., "C": ...}``."""
    folder = tmp_path_factory.mktemp("pairs")
    out = {}
    for name in "ABC":
        cert, key = make_certificate(folder, name)
        out[name] = (cert.read_bytes(), key.read_bytes())
    return out


def der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode())


def client_context(pairs: dict[str, tuple[bytes, bytes]]) -> ssl.SSLContext:
    """A client that trusts all three certificates (so that it can tell them apart by what it is shown)."""
    context = ssl.create_default_context(cadata="".join(cert.decode() for cert, _ in pairs.values()))
    return context


@pytest.fixture
def volume(tmp_path: Path, pairs: dict[str, tuple[bytes, bytes]]) -> SecretVolume:
    return SecretVolume(tmp_path / "webhook-tls", *pairs["A"])


@pytest.fixture
async def served(volume: SecretVolume) -> AsyncIterator[Served]:
    settings = kopf.OperatorSettings()
    admission.configure_webhooks(
        settings,
        host="127.0.0.1",
        addr="127.0.0.1",
        port=0,
        certfile=str(volume.cert),
        pkeyfile=str(volume.key),
        reload_interval=RELOAD,
    )
    assert isinstance(settings.admission.server, ReloadingWebhookServer)
    with admission_registered():
        async with serving(settings, controller_memo()) as running:
            yield running


class Connection:
    """One TLS connection to the server, kept open: the certificate it was shown and HTTP/1.1 requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @property
    def peer(self) -> bytes:
        sslobj = self.writer.get_extra_info("ssl_object")
        cert: bytes = sslobj.getpeercert(binary_form=True)
        return cert

    async def post(self, handler_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST an AdmissionReview over this connection (keep-alive); the parsed response."""
        data = json.dumps(body).encode()
        head = (
            f"POST /{handler_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: keep-alive\r\n\r\n"
        )
        self.writer.write(head.encode() + data)
        await self.writer.drain()
        status = await self.reader.readline()
        assert status.startswith(b"HTTP/1.1 200"), status
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        answer: dict[str, Any] = json.loads(await self.reader.readexactly(length))
        return answer

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def connect(served: Served, context: ssl.SSLContext) -> Connection:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port, ssl=context)
    return Connection(reader, writer)


async def presented(served: Served, context: ssl.SSLContext) -> bytes:
    """The certificate a NEW connection is shown."""
    conn = await connect(served, context)
    try:
        return conn.peer
    finally:
        await conn.close()


PROFILE = {
    "apiVersion": c.API_VERSION,
    "kind": c.PROFILE_KIND,
    "metadata": {"name": "deny-mkdir", "namespace": "demo"},
    "spec": {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"action": "SCMP_ACT_ERRNO", "names": ["mkdir"]}],
    },
}


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="seccomp_operator.webhook_server"):
        yield caplog


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "seccomp_operator.webhook_server" and r.levelno == level
    ]


async def test_a_rotated_pair_is_served_without_restart(
    served: Served,
    volume: SecretVolume,
    pairs: dict[str, tuple[bytes, bytes]],
    errors: pytest.LogCaptureFixture,
) -> None:
    context = client_context(pairs)
    cert_a, cert_b = der(pairs["A"][0]), der(pairs["B"][0])
    assert await presented(served, context) == cert_a
    held = await connect(served, context)
    before = await held.post(admission.HANDLER_ID, review("CREATE", PROFILE))
    assert before["response"]["allowed"] is True

    volume.update(*pairs["B"])

    async def shows_b() -> bool:
        return await presented(served, context) == cert_b

    await eventually(shows_b, what="a new connection presents certificate B")
    # Same listener (same port, no restart); the connection opened before still works, under A.
    after = await held.post(admission.HANDLER_ID, review("CREATE", PROFILE))
    assert after["response"]["allowed"] is True and held.peer == cert_a
    await held.close()
    server = served.server
    assert isinstance(server, ReloadingWebhookServer)
    assert (server.reloads, server.failures) == (1, 0)
    assert logged(errors, logging.INFO) == [f"loaded the rotated webhook certificate from {volume.cert}"]
    # The client config is yielded again with the new certificate as caBundle (for Kopf's bookkeeping).
    config = await asyncio.wait_for(served.configs.get(), timeout=10)
    assert config["url"] == served.config["url"] and config["caBundle"] != served.config["caBundle"]


async def test_a_pair_that_does_not_load_keeps_the_current_certificate(
    served: Served,
    volume: SecretVolume,
    pairs: dict[str, tuple[bytes, bytes]],
    errors: pytest.LogCaptureFixture,
) -> None:
    context = client_context(pairs)
    server = served.server
    assert isinstance(server, ReloadingWebhookServer)
    volume.update(*pairs["B"])
    await eventually(lambda: server.reloads == 1, what="certificate B loaded")
    cert_b = der(pairs["B"][0])
    assert await presented(served, context) == cert_b

    # C's certificate with B's key: OpenSSL refuses the pair.
    volume.update(pairs["C"][0], pairs["B"][1])
    await eventually(lambda: server.failures == 1, what="the mismatched pair refused")
    assert await presented(served, context) == cert_b
    (message,) = logged(errors, logging.ERROR)
    assert "changed but do not load" in message and "KEY_VALUES_MISMATCH" in message.upper()

    # A half-written certificate: cut in the middle of its base64.
    cert_c, key_c = pairs["C"]
    volume.update(cert_c[: len(cert_c) // 2], key_c)
    await eventually(lambda: server.failures == 2, what="the truncated certificate refused")
    assert await presented(served, context) == cert_b
    assert len(logged(errors, logging.ERROR)) == 2  # once per distinct content, not once per check

    # The next good pair is taken.
    volume.update(cert_c, key_c)
    await eventually(lambda: server.reloads == 2, what="certificate C loaded")
    assert await presented(served, context) == der(cert_c)
    answer = await (await connect(served, context)).post(admission.HANDLER_ID, review("CREATE", PROFILE))
    assert answer["response"]["allowed"] is True


async def test_a_first_pair_that_does_not_load_stops_the_start(
    tmp_path: Path, pairs: dict[str, tuple[bytes, bytes]]
) -> None:
    """At start there is no previous certificate to keep: the error is raised (the pod restarts)."""
    volume = SecretVolume(tmp_path / "bad", pairs["A"][0], pairs["B"][1])
    settings = kopf.OperatorSettings()
    admission.configure_webhooks(
        settings, addr="127.0.0.1", port=0, certfile=str(volume.cert), pkeyfile=str(volume.key)
    )
    with pytest.raises(ssl.SSLError):
        async with serving(settings, controller_memo()):
            pass  # pragma: no cover - never reached


def test_reload_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="reload_interval must be positive"):
        ReloadingWebhookServer(certfile="c", pkeyfile="k", reload_interval=0)
