"""The asyncio consumer: :class:`~sa_pgque.consumer.Consumer`'s behaviour on ``AsyncSession``.

Handlers are coroutines ``async def handle(message, session)``. Batches,
transactions, failure isolation, cooperative mode, heartbeats, wake-ups and
reconnects behave exactly as described in :mod:`sa_pgque.consumer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import TypeAlias

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sa_pgque import _ops, aio
from sa_pgque._wakeup import AsyncWaiter
from sa_pgque.consumer import _BatchLost, _has_retries, _RetryCarefully, is_connection_error
from sa_pgque.errors import BatchNotFound
from sa_pgque.handlers import (
    DEFAULT_DEAD_INTERVAL,
    DEFAULT_PAGE_SIZE,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_RETRY,
    BatchOutcome,
    CursorWatch,
    Handlers,
    RetryPolicy,
    UnhandledType,
    UnknownTypePolicy,
    check_cooperative_options,
    consumer_logger,
)
from sa_pgque.results import Message

AsyncHandler: TypeAlias = Callable[[Message, AsyncSession], Awaitable[object]]
"""An async message handler: awaited with the message and the batch's AsyncSession."""


class AsyncConsumer:
    """Consume one queue with coroutine handlers (see :class:`~sa_pgque.consumer.Consumer`)."""

    def __init__(
        self,
        bind: async_sessionmaker[AsyncSession] | AsyncEngine,
        *,
        queue: str,
        name: str,
        subconsumer: str | None = None,
        dead_interval: timedelta | float | None = None,
        heartbeat_interval: timedelta | float | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        unknown_type: UnknownTypePolicy = "nack",
        page_size: int = DEFAULT_PAGE_SIZE,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        savepoint_per_message: bool = False,
        subscribe: bool = True,
        unsubscribe_on_stop: bool = False,
        reconnect_delay: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        check_cooperative_options(subconsumer, dead_interval)
        if page_size < 1:
            raise ValueError("sa_pgque: page_size must be >= 1")
        self.sessions = bind if isinstance(bind, async_sessionmaker) else async_sessionmaker(bind)
        engine = self.sessions.kw.get("bind")
        if not isinstance(engine, AsyncEngine):
            raise TypeError("sa_pgque: AsyncConsumer needs an async_sessionmaker bound to an AsyncEngine")
        self.engine = engine
        self.queue = queue
        self.name = name
        self.subconsumer = subconsumer
        self.dead_interval = _ops.interval(dead_interval) or (DEFAULT_DEAD_INTERVAL if subconsumer else None)
        self.heartbeat_interval = _ops.interval(heartbeat_interval) or (self.dead_interval or timedelta(0)) / 3
        self.retry = retry
        self.unknown_type = unknown_type
        self.page_size = page_size
        self.poll_interval = poll_interval
        self.savepoint_per_message = savepoint_per_message
        self.subscribe = subscribe
        self.unsubscribe_on_stop = unsubscribe_on_stop
        self.reconnect_delay = reconnect_delay
        self.handlers: Handlers[AsyncHandler] = Handlers()
        self.log = consumer_logger(queue, name, subconsumer)
        self._stop = asyncio.Event()
        self._waiter: AsyncWaiter | None = None
        self._subscribed = False
        self._cursor = CursorWatch()

    def handler(self, event_type: str | None) -> Callable[[AsyncHandler], AsyncHandler]:
        """Decorator registering the coroutine handling one event type."""
        return self.handlers.decorator(event_type)

    def default_handler(self, handler: AsyncHandler) -> AsyncHandler:
        """Decorator registering the coroutine handling every type without its own."""
        return self.handlers.set_default(handler)

    async def run_once(self) -> BatchOutcome:
        """Process the next ready batch, if any, to its commit (empty tick windows on the way are passed over)."""
        await self._ensure_subscribed()
        if self.subconsumer is None:
            return await self._run_normal()
        return await self._run_cooperative()

    async def run(self) -> list[BatchOutcome]:
        """Process batches until none is ready (or stop() is called)."""
        outcomes = []
        while not self._stop.is_set():
            outcome = await self.run_once()
            if outcome.empty:
                break
            outcomes.append(outcome)
        return outcomes

    async def run_forever(self) -> None:
        """Consume until :meth:`stop` (or SIGTERM/SIGINT, when run on the main thread's loop)."""
        self._stop.clear()
        self._waiter = AsyncWaiter(self.engine, self.queue)
        restore = self._install_signal_handlers()
        delay = self.reconnect_delay[0]
        self.log.info("consumer started")
        try:
            while not self._stop.is_set():
                try:
                    outcome = await self.run_once()
                except Exception as error:
                    if not is_connection_error(error):
                        raise
                    self.log.warning("database unavailable (%s); retrying in %.1fs", error, delay)
                    await self._waiter.reset()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), delay)
                    delay = min(delay * 2, self.reconnect_delay[1])
                    continue
                delay = self.reconnect_delay[0]
                if outcome.empty:
                    await self._waiter.wait(self.poll_interval)
        finally:
            restore()
            await self._waiter.close()
            self._waiter = None
            await self._leave()
            self.log.info("consumer stopped")

    def stop(self) -> None:
        """Ask :meth:`run_forever` to return after the batch in hand. Idempotent."""
        self._stop.set()
        if self._waiter is not None:
            self._waiter.wake()

    async def _run_normal(self) -> BatchOutcome:
        careful = self.savepoint_per_message
        while True:
            try:
                async with self.sessions() as session, session.begin():
                    first = await aio.receive(session, self.queue, self.name, self.page_size + 1)
                    while not first and await self._passed_empty_window(session):
                        first = await aio.receive(session, self.queue, self.name, self.page_size + 1)
                    if not first:
                        return BatchOutcome()
                    careful = careful or _has_retries(first)
                    return await self._consume(session, first, careful)
            except _RetryCarefully:
                careful = True
            except _BatchLost:
                return BatchOutcome(first[0].batch_id)

    async def _receive_coop(self, session: AsyncSession) -> list[Message]:
        assert self.subconsumer is not None
        return await aio.receive_coop(
            session,
            self.queue,
            self.name,
            self.subconsumer,
            max_messages=self.page_size + 1,
            dead_interval=self.dead_interval,
        )

    async def _passed_empty_window(self, session: AsyncSession) -> bool:
        """After an empty receive: did it pass over an empty tick window (see :class:`CursorWatch`)?"""
        rows = await aio.consumer_info(session, self.queue, self.name)
        return self._cursor.moved(rows[0].last_tick if rows else None)

    async def _run_cooperative(self) -> BatchOutcome:
        assert self.subconsumer is not None
        async with self.sessions() as session, session.begin():
            first = await self._receive_coop(session)
            while not first and await self._passed_empty_window(session):
                first = await self._receive_coop(session)
        if not first:
            return BatchOutcome()
        careful = self.savepoint_per_message or _has_retries(first)
        async with self._heartbeat():
            while True:
                try:
                    async with self.sessions() as session, session.begin():
                        return await self._consume(session, first, careful)
                except _RetryCarefully:
                    careful = True
                except (_BatchLost, BatchNotFound):
                    self.log.warning("batch %s was taken over; its work is rolled back", first[0].batch_id)
                    return BatchOutcome(first[0].batch_id)

    async def _consume(self, session: AsyncSession, first: list[Message], careful: bool) -> BatchOutcome:
        batch_id = first[0].batch_id
        outcome = BatchOutcome(batch_id)
        if len(first) <= self.page_size:
            for message in first:
                await self._handle(session, message, outcome, careful)
        else:
            result = await session.stream(
                _ops.batch_events_statement(batch_id), execution_options={"yield_per": self.page_size}
            )
            try:
                async for row in result:
                    await self._handle(session, _ops.message_from_event(row, batch_id), outcome, careful)
            finally:
                await result.close()  # the server-side cursor, also when a handler failed
        try:
            await session.flush()  # the handlers' pending writes fail here, not inside the ack
        except Exception as error:
            if careful or is_connection_error(error):
                raise
            raise _RetryCarefully from error
        if await aio.ack(session, batch_id) == 0:
            raise _BatchLost
        outcome.committed = True
        return outcome

    async def _handle(self, session: AsyncSession, message: Message, outcome: BatchOutcome, careful: bool) -> None:
        handler = self.handlers.for_message(message)
        if handler is None:
            await self._unhandled(session, message, outcome)
            return
        if not careful:
            try:
                await handler(message, session)
            except Exception as error:
                self.log.info("handler failed on message %s (%s); retrying the batch carefully", message.msg_id, error)
                raise _RetryCarefully from error
            outcome.handled.append(message.msg_id)
            return
        savepoint = await session.begin_nested()
        try:
            await handler(message, session)
            await session.flush()
        except Exception as error:
            if is_connection_error(error):
                raise
            await savepoint.rollback()
            self.log.exception("handler failed on message %s; nacking it", message.msg_id)
            await aio.nack(
                session,
                message,
                retry_after=self.retry.delay(message.retry_count),
                reason=f"{type(error).__name__}: {error}"[:2000],
            )
            outcome.retried.append(message.msg_id)
        else:
            await savepoint.commit()
            outcome.handled.append(message.msg_id)

    async def _unhandled(self, session: AsyncSession, message: Message, outcome: BatchOutcome) -> None:
        if self.unknown_type == "fail":
            raise UnhandledType(f"sa_pgque: no handler for event type {message.type!r} (message {message.msg_id})")
        if self.unknown_type == "ack":
            outcome.skipped.append(message.msg_id)
            return
        await aio.nack(
            session,
            message,
            retry_after=self.retry.delay(message.retry_count),
            reason=f"no handler for type {message.type!r}",
        )
        outcome.retried.append(message.msg_id)

    async def _ensure_subscribed(self) -> None:
        if self._subscribed or not self.subscribe or self.subconsumer is not None:
            return
        async with self.sessions.begin() as session:
            await aio.subscribe(session, self.queue, self.name)
        self._subscribed = True

    async def _leave(self) -> None:
        if not self.unsubscribe_on_stop:
            return
        try:
            async with self.sessions.begin() as session:
                if self.subconsumer is None:
                    await aio.unsubscribe(session, self.queue, self.name)
                else:
                    await aio.unsubscribe_subconsumer(
                        session, self.queue, self.name, self.subconsumer, batch_handling=1
                    )
        except Exception:
            self.log.exception("could not unsubscribe")

    @contextlib.asynccontextmanager
    async def _heartbeat(self) -> AsyncIterator[None]:
        assert self.subconsumer is not None
        subconsumer = self.subconsumer
        interval = self.heartbeat_interval.total_seconds()

        async def beat() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    async with self.engine.begin() as connection:
                        await aio.touch_subconsumer(connection, self.queue, self.name, subconsumer)
                except Exception as error:
                    self.log.warning("heartbeat failed: %s", error)

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _install_signal_handlers(self) -> Callable[[], None]:
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or no signal support

        def restore() -> None:
            for sig in installed:
                loop.remove_signal_handler(sig)

        return restore
