"""``op.install_pgque()`` / ``op.uninstall_pgque()``: the engine inside the host's own linear history.

The sample host project is rewritten to keep no ``pgque`` branch: its first
revision installs a pinned engine revision, its second upgrades the engine
to the latest one (``from_revision=``), as a host would when a new sa_pgque
brings a new engine revision.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command

from sa_pgque import migrate
from sa_pgque.alembic import engine_revisions
from tests._pg import Database, Sql
from tests.alembic._catalog import differing, fingerprint
from tests.alembic._host import Host
from tests.alembic._scenario import check_consumable, populate, state
from tests.alembic.conftest import Psql
from tests.engine._helpers import drain, tick

REVISIONS = engine_revisions()
PINNED, HEAD = REVISIONS[0], REVISIONS[-1]

FIRST = f'''"""Engine {PINNED}, orders table and queue."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "host_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.install_pgque("{PINNED}")
    op.create_table("orders", sa.Column("id", sa.Integer(), primary_key=True))
    op.create_queue("orders", max_retries=10, ticker_max_lag="100 milliseconds")
    op.subscribe("orders", "billing")


def downgrade() -> None:
    op.unsubscribe("orders", "billing")
    op.drop_queue("orders")
    op.drop_table("orders")
    op.uninstall_pgque("{PINNED}")
'''

SECOND = f'''"""Engine {PINNED} -> {HEAD}."""

from __future__ import annotations

from alembic import op

revision = "host_0002"
down_revision = "host_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.install_pgque("{HEAD}", from_revision="{PINNED}")


def downgrade() -> None:
    op.uninstall_pgque("{HEAD}", to_revision="{PINNED}")
'''


@pytest.fixture
def linear(host: Host) -> Host:
    """The host project with the engine's version location removed and the two revisions above."""
    ini = host.project / "alembic.ini"
    text = ini.read_text(encoding="utf-8")
    ini.write_text(text.replace(" sa_pgque:migrations/versions", ""), encoding="utf-8")
    for old in host.versions.glob("host_*.py"):
        old.unlink()
    (host.versions / "host_0001_engine.py").write_text(FIRST, encoding="utf-8")
    (host.versions / "host_0002_engine.py").write_text(SECOND, encoding="utf-8")
    return host


def chain_install(db: Database, revision: str) -> Sql:
    """The engine at ``revision`` through its own chain, with the queue the host revision creates."""
    migrate.upgrade(db.engine(), revision)
    sql = db.sql()
    sql.exec("select pgque.create_queue('orders')")
    sql.exec("select pgque.set_queue_config('orders', 'ticker_max_lag', '100 milliseconds')")
    sql.exec("select pgque.set_queue_config('orders', 'max_retries', '10')")
    sql.exec("select pgque.subscribe('orders', 'billing')")
    return sql


def test_install_pgque_installs_what_the_chain_installs(linear: Host, spare_db: Database) -> None:
    command.upgrade(linear.config(), "head")

    sql = linear.database.sql()
    assert sql.col("select version_num from alembic_version") == ["host_0002"]
    assert sql.one("select to_regclass('public.pgque_alembic_version') is null")
    assert sql.row("select queue_max_retries, queue_ticker_max_lag from pgque.queue where queue_name = 'orders'") == (
        10,
        timedelta(milliseconds=100),
    )
    reference = chain_install(spare_db, HEAD)
    assert differing(fingerprint(sql), fingerprint(reference)) == {}
    event = sql.one("select pgque.send('orders', 'order.created', 'x')")
    tick(sql, "orders")
    assert [r[0] for r in drain(sql, "orders", "billing")] == [event]


def test_pinned_install_is_that_engine_revision(linear: Host, spare_db: Database) -> None:
    command.upgrade(linear.config(), "host_0001")
    sql = linear.database.sql()
    assert differing(fingerprint(sql), fingerprint(chain_install(spare_db, PINNED))) == {}


def test_uninstall_pgque_to_a_revision_keeps_data(linear: Host, spare_db: Database) -> None:
    command.upgrade(linear.config(), "host_0001")
    sql = linear.database.sql()
    scenario = populate(sql)
    command.upgrade(linear.config(), "head")
    before, columns = state(sql)

    command.downgrade(linear.config(), "-1")

    assert sql.col("select version_num from alembic_version") == ["host_0001"]
    assert state(sql, columns)[0] == before
    reference = chain_install(spare_db, PINNED)
    populate(reference)
    assert differing(fingerprint(sql), fingerprint(reference)) == {}
    check_consumable(sql, scenario)


def test_downgrade_base_removes_the_engine_even_with_live_consumers(linear: Host) -> None:
    command.upgrade(linear.config(), "head")
    sql = linear.database.sql()
    populate(sql)  # cooperative members included where the engine has them

    command.downgrade(linear.config(), "base")

    assert sql.one("select count(*) from pg_namespace where nspname = 'pgque'") == 0
    assert sql.one("select to_regclass('public.orders') is null")


def test_offline_linear_history_with_psql(linear: Host, psql: Psql) -> None:
    script = linear.offline("head")
    assert f"-- sa_pgque engine, revision {PINNED.removeprefix('pgque_')}" in script

    psql.run(linear.database, script)

    sql = linear.database.sql()
    assert sql.col("select version_num from alembic_version") == ["host_0002"]
    event = sql.one("select pgque.send('orders', 'order.created', 'x')")
    tick(sql, "orders")
    assert [r[0] for r in drain(sql, "orders", "billing")] == [event]
