"""Every engine revision keeps live data, both ways: generic over the script directory.

For each revision after the first (the chain is walked, so a new revision is
covered without touching this file): install the revision before it, fill
the engine with queues, consumers (normal and, where the revision has them,
cooperative), pending events, open batches, retries and dead letters,
upgrade, check every row is still there, then consume everything. The same
for the downgrade, from data made with what the older revision offers (the
only data a downgrade can be expected to keep).
"""

from __future__ import annotations

import itertools

import pytest

from sa_pgque import migrate
from sa_pgque.alembic import engine_revisions
from tests._pg import Database
from tests.alembic._scenario import check_consumable, populate, state

REVISIONS = engine_revisions()
PAIRS = list(itertools.pairwise(REVISIONS))


@pytest.mark.parametrize(("previous", "revision"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_upgrade_keeps_data(empty_db: Database, previous: str, revision: str) -> None:
    engine = empty_db.engine()
    migrate.upgrade(engine, previous)
    sql = empty_db.sql()
    scenario = populate(sql)
    before, columns = state(sql)

    migrate.upgrade(engine, revision)

    assert migrate.current(engine) == revision
    assert state(sql, columns)[0] == before
    check_consumable(sql, scenario)


@pytest.mark.parametrize(("previous", "revision"), PAIRS, ids=[f"{b}-{a}" for a, b in PAIRS])
def test_downgrade_keeps_data(empty_db: Database, previous: str, revision: str) -> None:
    engine = empty_db.engine()
    migrate.upgrade(engine, previous)
    sql = empty_db.sql()
    scenario = populate(sql)
    migrate.upgrade(engine, revision)
    before, columns = state(sql)

    migrate.downgrade(engine, previous)

    assert migrate.current(engine) == previous
    assert state(sql, columns)[0] == before
    check_consumable(sql, scenario)
