"""The ticker and maintenance runner, for databases without pg_cron.

Every ``tick_period`` it runs ``pgque.ticker()`` (which ticks the queues that
are due); every ``retry_period`` it moves due retries back into their queues
(``maint_retry_events`` until it returns 0; since revision 0003 that call
also moves due delayed events, ``send_at``, in, so they need no job of their
own and reach their consumers with the next tick); every ``maint_period`` it runs
``maint()`` (rotation step 1 and hooks) and every ``step2_period`` rotation
step 2, each call in its own transaction. A period runs from the end of one
call to the start of the next, as in ``pgque.ticker_loop()``.

Several tickers may run against one database (one per app instance, say):
a session-level advisory lock elects one; the others stand by and take over
when it goes away. Runs in the foreground (:meth:`run_forever`, what the
``sa-pgque ticker`` command does) or in a daemon thread beside a consumer
(:meth:`start`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from sa_pgque import api
from sa_pgque.consumer import is_connection_error

log = logging.getLogger("sa_pgque.ticker")

LOCK_KEY = 0x70677175_65_746B
"""Advisory lock (bigint key) held by the active ticker of a database."""

DEFAULT_TICK_PERIOD = timedelta(milliseconds=100)
DEFAULT_RETRY_PERIOD = timedelta(seconds=1)
DEFAULT_MAINT_PERIOD = timedelta(seconds=30)
DEFAULT_STEP2_PERIOD = timedelta(seconds=10)


class Ticker:
    """Keeps a database's queues ticking and maintained."""

    def __init__(
        self,
        engine: Engine,
        *,
        tick_period: timedelta = DEFAULT_TICK_PERIOD,
        retry_period: timedelta = DEFAULT_RETRY_PERIOD,
        maint_period: timedelta = DEFAULT_MAINT_PERIOD,
        step2_period: timedelta = DEFAULT_STEP2_PERIOD,
        lock_key: int = LOCK_KEY,
    ) -> None:
        self.engine = engine
        self.tick_period = tick_period.total_seconds()
        self.jobs: list[tuple[Callable[[Connection], object], float]] = [
            (self._tick, self.tick_period),
            (self._move_retries, retry_period.total_seconds()),
            (api.maint, maint_period.total_seconds()),
            (api.maint_rotate_tables_step2, step2_period.total_seconds()),
        ]
        self.lock_key = lock_key
        self.ticks = 0
        """Ticks written by this runner (a tick per due queue)."""
        self.active = threading.Event()
        """Set while this runner holds the lock and works."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = False

    def run_forever(self) -> None:
        """Tick and maintain until :meth:`stop`; reconnect after losing the database."""
        self._stop.clear()
        delay = 0.5
        while not self._stop.is_set():
            self._connected = False
            try:
                self._serve()
                delay = 0.5
            except Exception as error:
                if not is_connection_error(error):
                    raise
                if self._connected:  # it had recovered: this is a new outage, back off from the start
                    delay = 0.5
                self.active.clear()
                log.warning("database unavailable (%s); retrying in %.1fs", error, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)

    def _serve(self) -> None:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            self._connected = True
            while not self._stop.is_set():
                if connection.scalar(text("select pg_try_advisory_lock(:key)"), {"key": self.lock_key}):
                    break
                self._stop.wait(1.0)  # another ticker is active: stand by
            else:
                return
            self.active.set()
            log.info("ticker active")
            try:
                self._work(connection)
            finally:
                self.active.clear()
                if not connection.invalidated:
                    connection.scalar(text("select pg_advisory_unlock(:key)"), {"key": self.lock_key})

    def _work(self, connection: Connection) -> None:
        """Run each job when due; the connection autocommits, so every call is its own transaction.

        A job is due ``period`` after its previous call *returned*. Counting
        from the start instead would put consecutive ``ticker()`` calls exactly
        ``tick_period`` apart on the client, and a queue whose
        ``ticker_max_lag`` equals the period would then miss every tick whose
        server-side start came a fraction of a millisecond early (the lag is
        measured between the ticks' transaction starts): about one tick in
        eight slipped to the next period. The call's own duration is the
        margin that keeps such a queue ticking every period.
        """
        due = [0.0] * len(self.jobs)
        while not self._stop.is_set():
            now = time.monotonic()
            for index, (job, period) in enumerate(self.jobs):
                if now >= due[index]:
                    job(connection)
                    due[index] = time.monotonic() + period
            self._stop.wait(max(0.0, min(due) - time.monotonic()))

    def _tick(self, connection: Connection) -> None:
        self.ticks += api.ticker(connection) or 0

    @staticmethod
    def _move_retries(connection: Connection) -> None:
        while api.maint_retry_events(connection):
            pass

    def start(self) -> threading.Thread:
        """Run in a daemon thread; returns it. Stop with :meth:`stop`."""
        self._thread = threading.Thread(target=self.run_forever, name="sa_pgque-ticker", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop (idempotent); waits for the thread started by :meth:`start`."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> Ticker:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
