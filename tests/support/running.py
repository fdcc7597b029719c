"""The part of a test harness every platform shares: the real server on
127.0.0.1 (port 0) with a real aiohttp client in front of it."""

from __future__ import annotations

from typing import Self

import aiohttp
from aiohttp import web

from adapters.server import KB_KEY
from knowledge.store import KnowledgeBase


class RunningServer:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    async def start(self) -> Self:
        self._runner = web.AppRunner(self.app, shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None
        return self._session

    @property
    def kb(self) -> KnowledgeBase:
        return self.app[KB_KEY]

    def dump(self) -> list[str]:
        """Every row of every table, as SQL."""
        return list(self.kb.db.conn.iterdump())
