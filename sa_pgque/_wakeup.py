"""Waking a consumer: LISTEN on the queue's tick channel, a poll interval, and stop().

A consumer that found nothing to do waits here until the ticker NOTIFYs a new
tick on ``pgque_<queue>``, until ``poll_interval`` passes (the fallback when a
notification is missed or no LISTEN connection is available), or until it is
asked to stop. The LISTEN connection is dedicated (detached from the pool,
autocommit) and is re-opened after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("sa_pgque.consumer")


def channel(queue: str) -> sql.Composed:
    """``LISTEN "pgque_<queue>"``: the channel name is the queue name, byte for byte."""
    return sql.SQL("LISTEN {}").format(sql.Identifier(f"pgque_{queue}"))


class Waiter:
    """Blocks until a notification, ``poll_interval`` seconds, or :meth:`wake`."""

    def __init__(self, engine: Engine, queue: str) -> None:
        self._engine = engine
        self._queue = queue
        self._conn: psycopg.Connection[Any] | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def _listening(self) -> psycopg.Connection[Any] | None:
        if self._conn is None and self._engine.dialect.driver == "psycopg":
            conn: psycopg.Connection[Any] | None = None
            try:
                raw = self._engine.raw_connection()
                conn = raw.driver_connection
                raw.detach()  # ours for good: the pool forgets it
                assert conn is not None
                conn.rollback()
                conn.autocommit = True
                conn.execute(channel(self._queue))
                self._conn = conn
            except Exception as error:  # the poll interval still wakes us
                log.warning("LISTEN unavailable, polling only: %s", error, extra={"queue": self._queue})
                if conn is not None:
                    conn.close()
        return self._conn

    def wait(self, timeout: float) -> bool:
        """Wait; True when woken by a notification or by :meth:`wake`."""
        conn = self._listening()
        try:
            if conn is not None and any(True for _ in conn.notifies(timeout=0)):
                return True
            fds = [self._wake_r] + ([conn.fileno()] if conn is not None else [])
            ready, _, _ = select.select(fds, [], [], timeout)
            if self._wake_r in ready:
                self._drain_wake_pipe()
                return True
            if conn is not None and conn.fileno() in ready:
                for _ in conn.notifies(timeout=0):
                    pass
                return True
        except (psycopg.Error, OSError) as error:
            log.warning("LISTEN connection lost: %s", error, extra={"queue": self._queue})
            self.reset()
        return False

    def wake(self) -> None:
        """Interrupt :meth:`wait` (safe from a signal handler or another thread)."""
        with contextlib.suppress(BlockingIOError):  # a wake-up is already pending
            os.write(self._wake_w, b"x")

    def _drain_wake_pipe(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def reset(self) -> None:
        """Drop the LISTEN connection; the next wait re-opens it."""
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        self.reset()
        os.close(self._wake_r)
        os.close(self._wake_w)


class AsyncWaiter:
    """The asyncio twin of :class:`Waiter`."""

    def __init__(self, engine: AsyncEngine, queue: str) -> None:
        self._engine = engine
        self._queue = queue
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._woken = asyncio.Event()

    async def _listening(self) -> psycopg.AsyncConnection[Any] | None:
        if self._conn is None and self._engine.dialect.driver == "psycopg":
            conn: psycopg.AsyncConnection[Any] | None = None
            try:
                async with self._engine.connect() as sa_conn:
                    raw = await sa_conn.get_raw_connection()
                    conn = raw.driver_connection
                    raw.detach()
                assert conn is not None
                await conn.rollback()
                await conn.set_autocommit(True)
                await conn.execute(channel(self._queue))
                self._conn = conn
            except Exception as error:
                log.warning("LISTEN unavailable, polling only: %s", error, extra={"queue": self._queue})
                if conn is not None:
                    await conn.close()
        return self._conn

    async def wait(self, timeout: float) -> bool:
        conn = await self._listening()
        woken = asyncio.ensure_future(self._woken.wait())
        notified = asyncio.ensure_future(self._next_notification(conn)) if conn is not None else None
        pending = {woken} | ({notified} if notified is not None else set())
        try:
            done, _ = await asyncio.wait(pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pending:
                task.cancel()
        self._woken.clear()
        if notified is not None and notified in done and notified.exception() is not None:
            log.warning("LISTEN connection lost: %s", notified.exception(), extra={"queue": self._queue})
            await self.reset()
            return False
        return bool(done)

    async def _next_notification(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async for _ in conn.notifies(stop_after=1):
            pass

    def wake(self) -> None:
        self._woken.set()

    async def reset(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                await self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await self.reset()
