"""The controller's HTTPS webhook server, which picks up a rotated certificate without restarting.

Kopf's own :class:`kopf.WebhookServer` (1.45, ``kopf/_kits/webhooks.py``) re-reads the
certificate files once a minute and, when their bytes change, stops its listener and starts a
new one with the new pair: open connections are closed, the port is briefly not served, and a
pair that does not load (half-written, or key and certificate that do not match) raises out of
the server, which stops the operator.

:class:`ReloadingWebhookServer` keeps one listener for the life of the process instead.  Every
``reload_interval`` seconds it hashes the certificate and key files (following symlinks, so the
kubelet's Secret volume update, which swaps a ``..data`` symlink to a new timestamped directory
in one rename, is seen as a change like any other); when the bytes changed it loads the pair
into a *new* :class:`ssl.SSLContext`.  Only when that load succeeds (OpenSSL checks that the key
belongs to the certificate) does the new context become current; the listening context's
``sni_callback`` then switches every new handshake to it (``SSLObject.context`` may be assigned
in that callback: Python docs, ``ssl.SSLContext.sni_callback``; OpenSSL calls it for every
ClientHello, with or without a server name).  So:

- new connections get the new certificate within ``reload_interval`` seconds of the files
  changing;
- connections already open keep working (their TLS session is not touched);
- a pair that does not load keeps the previous certificate, and the error is logged once per
  distinct content; the next change is tried again.

Loading into a fresh context (rather than calling ``load_cert_chain`` again on the live one)
matters: that call replaces the certificate before it reads the key, so a failure half-way
would leave the live context with a certificate and no matching key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import pathlib
import ssl
from collections.abc import AsyncIterator

import aiohttp.web
import kopf

from . import constants as c

logger = logging.getLogger("seccomp_operator.webhook_server")

_StrPath = str | os.PathLike[str]


class ReloadingWebhookServer(kopf.WebhookServer):
    """A :class:`kopf.WebhookServer` for given certificate files, reloaded in place when they change.

    Args:
        certfile, pkeyfile: PEM certificate (chain) and private key, e.g. ``tls.crt`` and
            ``tls.key`` of a mounted cert-manager Secret.
        addr, port, path, host, cafile, password: as for :class:`kopf.WebhookServer`
            (``port`` None or 0: a free port is picked once, at start).
        reload_interval: seconds between two checks of the files (> 0).

    Raises:
        ValueError: ``reload_interval`` is not positive.
        ssl.SSLError, OSError: at start (when Kopf iterates the server), if the first pair does
            not load; later pairs never raise.

    Attributes:
        reloads: how many rotated pairs were loaded (0 until the first rotation).
        failures: how many changed pairs could not be loaded.
    """

    def __init__(
        self,
        *,
        certfile: _StrPath,
        pkeyfile: _StrPath,
        addr: str | None = None,
        port: int | None = None,
        path: str | None = None,
        host: str | None = None,
        cafile: _StrPath | None = None,
        password: str | None = None,
        reload_interval: float = c.WEBHOOK_RELOAD_SECONDS,
    ) -> None:
        if not reload_interval > 0:
            raise ValueError(f"reload_interval must be positive, got {reload_interval!r}")
        super().__init__(
            addr=addr,
            port=port,
            path=path,
            host=host,
            cafile=cafile,
            certfile=certfile,
            pkeyfile=pkeyfile,
            password=password,
            file_check_interval=reload_interval,
        )
        self.reload_interval = reload_interval
        self.reloads = 0
        self.failures = 0
        self._current: ssl.SSLContext | None = None

    # --- certificates --------------------------------------------------------------------
    def _files(self) -> list[_StrPath]:
        found: list[_StrPath] = [p for p in (self.certfile, self.pkeyfile, self.cafile) if p is not None]
        return found

    def files_digest(self) -> str | None:
        """sha256 over the bytes of the certificate, key and CA files; None if one cannot be read."""
        hasher = hashlib.sha256()
        try:
            for name in self._files():
                hasher.update(pathlib.Path(name).read_bytes())
                hasher.update(b"\0")
        except OSError:
            return None
        return hasher.hexdigest()

    def load_context(self) -> tuple[ssl.SSLContext, bytes]:
        """A new server context holding the current files' pair, and the CA bundle for clients.

        The CA bundle is ``cafile``'s bytes, else the certificate file's.

        Raises:
            ssl.SSLError: the files are not a PEM certificate and its matching private key.
            OSError: a file cannot be read.
        """
        assert self.certfile is not None and self.pkeyfile is not None
        context = ssl.create_default_context(purpose=ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certfile, self.pkeyfile, self.password)
        cadata = pathlib.Path(self.cafile if self.cafile is not None else self.certfile).read_bytes()
        return context, cadata

    def _choose_context(
        self, sslobj: ssl.SSLObject, server_name: str | None, listening: ssl.SSLContext
    ) -> None:
        """``sni_callback`` of the listening context: hand the handshake to the current pair."""
        current = self._current
        if current is not None and current is not listening:
            sslobj.context = current

    def _client_config(self, cadata: bytes, port: int) -> kopf.WebhookClientConfig:
        host = self.host or self.DEFAULT_HOST or self._get_accessible_addr(self.addr)
        config = kopf.WebhookClientConfig(url=self._build_url("https", host, port, self.path or ""))
        config["caBundle"] = base64.b64encode(cadata).decode("ascii")
        return config

    async def _watch(self, digest: str | None) -> AsyncIterator[bytes]:
        """Forever: poll the files; load a changed pair; yield its CA bundle after each reload."""
        failed: str | None = None
        while True:
            await asyncio.sleep(self.reload_interval)
            now = self.files_digest()
            if now is None or now in (digest, failed):
                continue
            try:
                context, cadata = self.load_context()
            except (OSError, ssl.SSLError) as e:
                if self.files_digest() != now:  # changed while loading: try again right away
                    continue
                failed = now
                self.failures += 1
                logger.error(
                    "the webhook certificate files %s changed but do not load (%s); "
                    "new connections keep the previous certificate",
                    ", ".join(str(p) for p in self._files()),
                    e,
                )
                continue
            self._current, digest, failed = context, now, None
            self.reloads += 1
            logger.info("loaded the rotated webhook certificate from %s", self.certfile)
            yield cadata

    # --- serving ---------------------------------------------------------------------------
    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        """Serve ``fn`` over HTTPS; yield the client config at start and after each reload.

        Raises:
            ssl.SSLError, OSError: the first pair does not load, or the port cannot be bound.
        """

        async def serve(request: aiohttp.web.Request) -> aiohttp.web.Response:
            return await self._serve(fn, request)

        digest = self.files_digest()  # before loading: a change in between is seen at the next poll
        listening, cadata = self.load_context()
        listening.sni_callback = self._choose_context
        self._current = listening
        prefix = self.path.rstrip("/") if self.path else ""
        app = aiohttp.web.Application()
        app.add_routes([aiohttp.web.post(f"{prefix}/{{id:.*}}", serve)])
        runner = aiohttp.web.AppRunner(app, handle_signals=False)
        await runner.setup()
        try:
            port = self.port or self._allocate_free_port()
            site = aiohttp.web.TCPSite(runner, self.addr or None, port, ssl_context=listening)
            await site.start()
            logger.debug("serving webhooks at %s", self._build_url("https", self.addr or "*", port, prefix))
            config = self._client_config(cadata, port)
            yield config
            async for new_cadata in self._watch(digest):
                if new_cadata != cadata:
                    cadata = new_cadata
                    yield self._client_config(cadata, port)
        finally:
            await runner.cleanup()
