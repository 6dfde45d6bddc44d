"""The Ticker's reconnect backoff starts over after each recovery (found by the crash-safety run).

``Ticker.run_forever`` doubles its reconnect delay while the database stays
away (0.5 s, 1 s, 2 s, ... 30 s). It used to reset the delay only when
``_serve()`` returned, which it does only on ``stop()``: a long-lived ticker
whose connection was cut a handful of times over days (a failover, a pooler
restart, an idle-session timeout) then waited 30 s after every later cut, and
nothing ticked meanwhile.

The ticker now starts its backoff over once it has reconnected; this test
keeps it that way.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta

import psycopg
import pytest

import sa_pgque as pgque
from tests._pg import Database

pytestmark = pytest.mark.reliability

OUTAGES = 4


def test_each_recovered_outage_starts_the_backoff_over(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    engine = db.engine(connect_args={"application_name": "ticker-under-test"})
    ticker = pgque.Ticker(engine, tick_period=timedelta(milliseconds=50))
    caplog.set_level(logging.WARNING, logger="sa_pgque.ticker")
    ticker.start()
    try:
        with psycopg.connect(db.conninfo, autocommit=True) as admin:
            for _ in range(OUTAGES):
                deadline = time.monotonic() + 60
                while not ticker.active.wait(0.05):  # recovered from the previous outage
                    assert time.monotonic() < deadline, "the ticker did not come back"
                time.sleep(0.3)  # and worked a while
                admin.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity"
                    " where datname = current_database() and application_name = 'ticker-under-test'"
                )
                ticker.active.clear()
            deadline = time.monotonic() + 60
            while not ticker.active.wait(0.05):
                assert time.monotonic() < deadline, "the ticker did not come back"
    finally:
        ticker.stop()
    delays = [float(m.group(1)) for r in caplog.records if (m := re.search(r"retrying in ([0-9.]+)s", r.getMessage()))]
    assert len(delays) == OUTAGES
    assert delays == [0.5] * OUTAGES  # before the fix: [0.5, 1.0, 2.0, 4.0]
