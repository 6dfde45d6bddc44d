"""A session-scoped consumer: a batch's handler writes and its ack commit together.

For each batch, handlers receive every message together with a SQLAlchemy
``Session``. The handlers' writes (and any events they publish through that
session) commit in the same transaction as the batch's ``ack``: a crash
before the commit brings the whole batch back, a crash after it brings
nothing back, so database side effects happen exactly once.

Failures are isolated per message: when a handler raises, the batch's
transaction is rolled back and the batch is processed again with a savepoint
around every message; the failing message's savepoint is rolled back and the
message is nacked (retried after an exponential backoff, dead-lettered by the
engine once the queue's ``max_retries`` is spent) while the others commit.
Passes without failures pay for no savepoint at all. (Handlers that call
external services therefore see the messages before a failure twice; their
database writes happen once.) Batches carrying retried messages, and every
batch with ``savepoint_per_message=True``, go straight to the careful pass.

With psycopg, ``receive`` (of a normal consumer) and ``ack`` run as prepared
statements on the session's own connection, in its transaction, as
``publish()`` does for ``send`` (SQLAlchemy's cursor events do not see
those two); handler statements go through the session as usual.

A cooperative consumer (``subconsumer=...``) takes its batch in a short
transaction of its own, so sibling workers are not blocked while it works,
and keeps its membership alive with a heartbeat; if the batch was taken over
meanwhile, the ack finds it gone and the work is rolled back.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeAlias

import psycopg
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from sa_pgque import _driver, _ops, api
from sa_pgque._wakeup import Waiter
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

Handler: TypeAlias = Callable[[Message, Session], object]
"""A message handler: called with the message and the batch's Session."""

_CONNECTION_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)

_RECEIVE_SQL = (
    "select msg_id, batch_id, type, payload, retry_count, created_at, extra1, extra2, extra3, extra4"
    " from pgque.receive(%s::text, %s::text, %s::integer)"
)
_ACK_SQL = "select pgque.ack(%s::bigint)"

_MESSAGE_FIELDS = (
    "msg_id",
    "batch_id",
    "type",
    "payload_text",
    "retry_count",
    "created_at",
    "extra1",
    "extra2",
    "extra3",
    "extra4",
)
_FILL_MESSAGE_DICT = (
    tuple(f.name for f in dataclasses.fields(Message)) == _MESSAGE_FIELDS
    and "__slots__" not in vars(Message)
    and not hasattr(Message, "__post_init__")
)


def _messages(rows: list[tuple[Any, ...]]) -> list[Message]:
    """Messages from ``pgque.message`` rows already typed by the driver (fields in order).

    The frozen dataclass ``__init__`` stores each field through
    ``object.__setattr__``, which for a 1,000-message page costs as much as
    reading the page. A frozen dataclass keeps its fields in the instance
    ``__dict__``, so filling that directly gives equal objects four times
    faster; should ``Message`` change shape, the plain constructor is used.
    """
    if not _FILL_MESSAGE_DICT:
        return [Message(*row) for row in rows]
    new = object.__new__
    messages = []
    for row in rows:
        message = new(Message)
        fields = message.__dict__
        (
            fields["msg_id"],
            fields["batch_id"],
            fields["type"],
            fields["payload_text"],
            fields["retry_count"],
            fields["created_at"],
            fields["extra1"],
            fields["extra2"],
            fields["extra3"],
            fields["extra4"],
        ) = row
        messages.append(message)
    return messages


class _RetryCarefully(Exception):
    """The optimistic pass failed; run the batch again with a savepoint per message."""


class _BatchLost(Exception):
    """The batch is no longer ours (finished or taken over): roll back its work."""


def _has_retries(messages: list[Message]) -> bool:
    """A batch carrying retried messages is likely to fail again: go careful at once."""
    return any(m.retry_count for m in messages)


def is_connection_error(error: BaseException) -> bool:
    """Whether ``error`` means the database went away (worth reconnecting for)."""
    if isinstance(error, DBAPIError):
        return bool(error.connection_invalidated) or isinstance(error.orig, _CONNECTION_ERRORS)
    return isinstance(error, _CONNECTION_ERRORS)


class Consumer:
    """Consume one queue as one consumer (or one member of a cooperative consumer).

    ``bind`` is a ``sessionmaker`` (its sessions are handed to the handlers)
    or an ``Engine``.
    """

    def __init__(
        self,
        bind: sessionmaker[Session] | Engine,
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
        self.sessions = bind if isinstance(bind, sessionmaker) else sessionmaker(bind)
        engine = self.sessions.kw.get("bind")
        if not isinstance(engine, Engine):
            raise TypeError("sa_pgque: Consumer needs a sessionmaker bound to an Engine")
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
        self.handlers: Handlers[Handler] = Handlers()
        self.log = consumer_logger(queue, name, subconsumer)
        self._on_psycopg = _driver.is_psycopg(engine)
        self._stop = threading.Event()
        self._waiter: Waiter | None = None
        self._subscribed = False
        self._cursor = CursorWatch()

    # -- handlers -----------------------------------------------------------

    def handler(self, event_type: str | None) -> Callable[[Handler], Handler]:
        """Decorator registering the handler of one event type."""
        return self.handlers.decorator(event_type)

    def default_handler(self, handler: Handler) -> Handler:
        """Decorator registering the handler of every type without its own."""
        return self.handlers.set_default(handler)

    # -- running ------------------------------------------------------------

    def run_once(self) -> BatchOutcome:
        """Process the next ready batch, if any, to its commit; report what happened.

        Empty tick windows on the way (idle ticks) are passed over in the same
        call, so a consumer catching up never sleeps with work waiting.
        """
        self._ensure_subscribed()
        if self.subconsumer is None:
            return self._run_normal()
        return self._run_cooperative()

    def run(self) -> list[BatchOutcome]:
        """Process batches until none is ready (or stop() is called); return their outcomes."""
        outcomes = []
        while not self._stop.is_set():
            outcome = self.run_once()
            if outcome.empty:
                break
            outcomes.append(outcome)
        return outcomes

    def run_forever(self) -> None:
        """Consume until :meth:`stop` (or SIGTERM/SIGINT when run in the main thread).

        A batch in hand is finished before returning. After a non-empty batch
        the next one is fetched at once; otherwise the consumer sleeps until a
        tick notification or ``poll_interval``. Lost database connections are
        retried with exponential backoff.
        """
        self._stop.clear()
        self._waiter = Waiter(self.engine, self.queue)
        restore = self._install_signal_handlers()
        delay = self.reconnect_delay[0]
        self.log.info("consumer started")
        try:
            while not self._stop.is_set():
                try:
                    outcome = self.run_once()
                except Exception as error:
                    if not is_connection_error(error):
                        raise
                    self.log.warning("database unavailable (%s); retrying in %.1fs", error, delay)
                    self._waiter.reset()
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.reconnect_delay[1])
                    continue
                delay = self.reconnect_delay[0]
                if outcome.empty:
                    self._waiter.wait(self.poll_interval)
        finally:
            restore()
            self._waiter.close()
            self._waiter = None
            self._leave()
            self.log.info("consumer stopped")

    def stop(self) -> None:
        """Ask :meth:`run_forever` to return after the batch in hand. Idempotent, signal-safe."""
        self._stop.set()
        if self._waiter is not None:
            self._waiter.wake()

    # -- one batch ----------------------------------------------------------

    def _run_normal(self) -> BatchOutcome:
        careful = self.savepoint_per_message
        while True:
            try:
                with self.sessions() as session, session.begin():
                    first = self._receive(session)
                    while not first and self._passed_empty_window(session):
                        first = self._receive(session)
                    if not first:
                        return BatchOutcome()
                    careful = careful or _has_retries(first)
                    return self._consume(session, first, careful)
            except _RetryCarefully:
                careful = True
            except _BatchLost:
                return BatchOutcome(first[0].batch_id)

    def _receive(self, session: Session) -> list[Message]:
        """``api.receive(session, queue, name, page_size + 1)``, on the fast path (:mod:`sa_pgque._driver`)."""
        if not self._on_psycopg:
            return api.receive(session, self.queue, self.name, self.page_size + 1)
        cursor = _driver.execute(
            session.connection(), _RECEIVE_SQL, (self.queue, self.name, self.page_size + 1), binary=True
        )
        return _messages(cursor.fetchall())

    def _passed_empty_window(self, session: Session) -> bool:
        """After an empty receive: did it pass over an empty tick window (see :class:`CursorWatch`)?"""
        rows = api.consumer_info(session, self.queue, self.name)
        return self._cursor.moved(rows[0].last_tick if rows else None)

    def _ack(self, session: Session, batch_id: int) -> int:
        """``api.ack(session, batch_id)``, on the fast path (:mod:`sa_pgque._driver`)."""
        if not self._on_psycopg:
            return api.ack(session, batch_id)
        row = _driver.execute(session.connection(), _ACK_SQL, (batch_id,)).fetchone()
        assert row is not None
        return int(row[0])

    def _receive_coop(self, session: Session) -> list[Message]:
        assert self.subconsumer is not None
        return api.receive_coop(
            session,
            self.queue,
            self.name,
            self.subconsumer,
            max_messages=self.page_size + 1,
            dead_interval=self.dead_interval,
        )

    def _run_cooperative(self) -> BatchOutcome:
        assert self.subconsumer is not None
        with self.sessions() as session, session.begin():
            first = self._receive_coop(session)
            while not first and self._passed_empty_window(session):
                first = self._receive_coop(session)
        if not first:
            return BatchOutcome()
        careful = self.savepoint_per_message or _has_retries(first)
        with self._heartbeat():
            while True:
                try:
                    with self.sessions() as session, session.begin():
                        return self._consume(session, first, careful)
                except _RetryCarefully:
                    careful = True
                except (_BatchLost, BatchNotFound):
                    self.log.warning("batch %s was taken over; its work is rolled back", first[0].batch_id)
                    return BatchOutcome(first[0].batch_id)

    def _consume(self, session: Session, first: list[Message], careful: bool) -> BatchOutcome:
        """Handle every message of the batch, then ack it, in ``session``'s transaction."""
        batch_id = first[0].batch_id
        outcome = BatchOutcome(batch_id)
        if len(first) <= self.page_size:
            self._handle_all(session, first, outcome, careful)
        else:
            result = session.execute(
                _ops.batch_events_statement(batch_id), execution_options={"yield_per": self.page_size}
            )
            with result:  # closes the server-side cursor, also when a handler failed
                messages = (_ops.message_from_event(row, batch_id) for row in result)
                self._handle_all(session, messages, outcome, careful)
        try:
            session.flush()  # the handlers' pending writes fail here, not inside the ack
        except Exception as error:
            if careful or is_connection_error(error):
                raise
            raise _RetryCarefully from error
        if self._ack(session, batch_id) == 0:
            raise _BatchLost
        outcome.committed = True
        self.log.debug("batch %s: %s handled, %s retried", batch_id, len(outcome.handled), len(outcome.retried))
        return outcome

    def _handle_all(self, session: Session, messages: Iterable[Message], outcome: BatchOutcome, careful: bool) -> None:
        if careful:
            for message in messages:
                self._handle_carefully(session, message, outcome)
            return
        handler_for = self.handlers.for_message
        handled = outcome.handled.append
        for message in messages:  # the hot loop: no savepoint, lookups bound once
            handler = handler_for(message)
            if handler is None:
                self._unhandled(session, message, outcome)
                continue
            try:
                handler(message, session)
            except Exception as error:
                self.log.info("handler failed on message %s (%s); retrying the batch carefully", message.msg_id, error)
                raise _RetryCarefully from error
            handled(message.msg_id)

    def _handle_carefully(self, session: Session, message: Message, outcome: BatchOutcome) -> None:
        handler = self.handlers.for_message(message)
        if handler is None:
            self._unhandled(session, message, outcome)
            return
        savepoint = session.begin_nested()
        try:
            handler(message, session)
            session.flush()
        except Exception as error:
            if is_connection_error(error):
                raise
            savepoint.rollback()
            self.log.exception("handler failed on message %s; nacking it", message.msg_id)
            api.nack(
                session,
                message,
                retry_after=self.retry.delay(message.retry_count),
                reason=f"{type(error).__name__}: {error}"[:2000],
            )
            outcome.retried.append(message.msg_id)
        else:
            savepoint.commit()
            outcome.handled.append(message.msg_id)

    def _unhandled(self, session: Session, message: Message, outcome: BatchOutcome) -> None:
        if self.unknown_type == "fail":
            raise UnhandledType(f"sa_pgque: no handler for event type {message.type!r} (message {message.msg_id})")
        if self.unknown_type == "ack":
            outcome.skipped.append(message.msg_id)
            return
        api.nack(
            session,
            message,
            retry_after=self.retry.delay(message.retry_count),
            reason=f"no handler for type {message.type!r}",
        )
        outcome.retried.append(message.msg_id)

    # -- membership ---------------------------------------------------------

    def _ensure_subscribed(self) -> None:
        if self._subscribed or not self.subscribe or self.subconsumer is not None:
            return
        with self.sessions.begin() as session:
            api.subscribe(session, self.queue, self.name)
        self._subscribed = True

    def _leave(self) -> None:
        if not self.unsubscribe_on_stop:
            return
        try:
            with self.sessions.begin() as session:
                if self.subconsumer is None:
                    api.unsubscribe(session, self.queue, self.name)
                else:
                    api.unsubscribe_subconsumer(session, self.queue, self.name, self.subconsumer, batch_handling=1)
        except Exception:
            self.log.exception("could not unsubscribe")

    @contextmanager
    def _heartbeat(self) -> Iterator[None]:
        """While a cooperative batch is processed, refresh the member's activity stamp."""
        assert self.subconsumer is not None
        subconsumer = self.subconsumer
        done = threading.Event()
        interval = self.heartbeat_interval.total_seconds()

        def beat() -> None:
            while not done.wait(interval):
                try:
                    with self.engine.begin() as connection:
                        api.touch_subconsumer(connection, self.queue, self.name, subconsumer)
                except Exception as error:
                    self.log.warning("heartbeat failed: %s", error)

        thread = threading.Thread(target=beat, name=f"sa_pgque-heartbeat-{subconsumer}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def on_signal(signum: int, frame: Any) -> None:
            self.log.info("signal %s: stopping after the batch in hand", signum)
            self.stop()

        for sig in previous:
            signal.signal(sig, on_signal)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore
