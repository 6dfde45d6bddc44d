"""Connection strings in every accepted form become the same libpq parameters and SQLAlchemy URL."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import create_engine, pool, text
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect

from sa_pgque import _dsn
from tests._pg import Database


def connect_args(dsn: str) -> dict[str, object]:
    """What SQLAlchemy's psycopg dialect would pass to psycopg.connect for ``to_url(dsn)``."""
    dialect = psycopg_dialect.dialect()  # type: ignore[no-untyped-call]
    _, kwargs = dialect.create_connect_args(_dsn.to_url(dsn))  # type: ignore[no-untyped-call]
    return {k: str(v) for k, v in kwargs.items()}


def test_resolve_prefers_the_argument_then_sa_pgque_dsn_then_database_url() -> None:
    env = {"SA_PGQUE_DSN": "dbname=a", "DATABASE_URL": "dbname=b"}
    assert _dsn.resolve("dbname=c", env) == "dbname=c"
    assert _dsn.resolve(None, env) == "dbname=a"
    assert _dsn.resolve(None, {"DATABASE_URL": "dbname=b"}) == "dbname=b"
    assert _dsn.resolve("", {"SA_PGQUE_DSN": "", "DATABASE_URL": "dbname=b"}) == "dbname=b"


def test_resolve_without_any_dsn_names_the_options() -> None:
    with pytest.raises(_dsn.DsnError, match=r"--dsn.*SA_PGQUE_DSN.*DATABASE_URL"):
        _dsn.resolve(None, {})


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql+psycopg://app:s%40cret@db.example:6543/shop?sslmode=require",
        "postgresql://app:s%40cret@db.example:6543/shop?sslmode=require",
        "postgres://app:s%40cret@db.example:6543/shop?sslmode=require",
        "host=db.example port=6543 user=app password=s@cret dbname=shop sslmode=require",
    ],
)
def test_every_form_gives_the_same_parameters(dsn: str) -> None:
    expected = {
        "host": "db.example",
        "port": "6543",
        "user": "app",
        "password": "s@cret",
        "dbname": "shop",
        "sslmode": "require",
    }
    assert conninfo_to_dict(_dsn.to_conninfo(dsn)) == expected
    assert connect_args(dsn) == expected
    url = _dsn.to_url(dsn)
    assert (url.drivername, url.host, url.port, url.database) == ("postgresql+psycopg", "db.example", 6543, "shop")


def test_unix_socket_hosts_go_in_the_query_string() -> None:
    url = _dsn.to_url("host=/run/postgresql port=5433 dbname=shop user=app")
    assert url.host is None
    assert dict(url.query) == {"host": "/run/postgresql", "port": "5433"}
    assert connect_args("postgresql:///shop?host=/run/postgresql&port=5433&user=app") == {
        "host": "/run/postgresql",
        "port": "5433",
        "dbname": "shop",
        "user": "app",
    }


def test_host_lists_go_in_the_query_string() -> None:
    assert connect_args("host=a,b port=5432,5433 dbname=shop") == {"host": "a,b", "port": "5432,5433", "dbname": "shop"}


def test_overrides_replace_parameters() -> None:
    assert conninfo_to_dict(_dsn.to_conninfo("postgresql://u@h/one", dbname="two"))["dbname"] == "two"
    assert _dsn.to_url("postgresql+psycopg://u@h/one", dbname="two").database == "two"


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("mysql://u@h/db", "not a PostgreSQL URL"),
        ("sqlite+pysqlite:///x.db", "not a PostgreSQL URL"),
        ("just some words", "invalid connection string"),
    ],
)
def test_malformed_dsn_is_a_dsn_error(dsn: str, message: str) -> None:
    with pytest.raises(_dsn.DsnError, match=message):
        _dsn.to_url(dsn)


def test_describe_never_shows_the_password() -> None:
    described = _dsn.describe("postgresql://app:topsecret@db.example:6543/shop")
    assert described == "app@db.example:6543/shop"
    assert "topsecret" not in _dsn.describe("host=/tmp password=topsecret dbname=x")


def test_both_forms_connect_to_the_test_database(db: Database) -> None:
    for dsn in (db.conninfo, db.url.render_as_string(hide_password=False)):
        engine = create_engine(_dsn.to_url(dsn), poolclass=pool.NullPool)
        with engine.connect() as connection:
            assert connection.scalar(text("select current_database()")) == db.name
        engine.dispose()
