"""Installing the engine: Alembic round trip, the SQL files and how they are loaded."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from sa_pgque import migrate
from sa_pgque._sqlfiles import execute_script, sql_step
from tests._pg import Database

STEPS = ["pgque_0001"]


def all_scripts() -> list[tuple[str, str]]:
    return [(f"{step}/{f.name}", f.read_text(encoding="utf-8")) for step in STEPS for f in sql_step(step)]


def test_upgrade_downgrade_upgrade_round_trip(empty_db: Database) -> None:
    engine = empty_db.engine()
    assert migrate.current(engine) is None
    migrate.install(engine)
    assert migrate.current(engine) == "pgque_0001"
    sql = empty_db.sql()
    sql.exec("select pgque.create_queue('q')")
    migrate.uninstall(engine)
    assert migrate.current(engine) is None
    assert sql.one("select count(*) from pg_namespace where nspname = 'pgque'") == 0
    migrate.install(engine)
    assert sql.one("select pgque.create_queue('q')") == 1


def test_install_joins_the_callers_transaction(empty_db: Database) -> None:
    engine = empty_db.engine()
    with engine.connect() as connection:
        migrate.install(connection)
        assert connection.execute(text("select pgque.create_queue('q')")).scalar() == 1
        connection.rollback()
    assert migrate.current(engine) is None
    assert empty_db.sql().one("select count(*) from pg_namespace where nspname = 'pgque'") == 0


def test_scripts_reach_the_server_verbatim(db: Database) -> None:
    """No bind-parameter or placeholder processing: ':word' and '%' survive."""
    body = "select ':word' || ' %s %% %(name)s ' || $x$:other$x$"
    script = (
        f"create function public.verbatim() returns text language sql as $f$ {body} $f$;\n"
        "create table public.after_it (x int);\n"
    )
    with db.engine().begin() as connection:
        execute_script(connection, script)
    sql = db.sql()
    assert sql.one("select public.verbatim()") == ":word %s %% %(name)s :other"
    assert sql.one("select to_regclass('public.after_it') is not null")


def raise_statements(script: str) -> list[str]:
    """Every ``raise exception ...;`` statement, up to the semicolon outside quotes."""
    statements = []
    for match in re.finditer(r"raise\s+exception\b", script, flags=re.I):
        quoted = False
        for end in range(match.end(), len(script)):
            if script[end] == "'":
                quoted = not quoted
            elif script[end] == ";" and not quoted:
                statements.append(script[match.start() : end])
                break
    return statements


@pytest.mark.parametrize(("name", "script"), all_scripts(), ids=[name for name, _ in all_scripts()])
def test_every_raised_error_has_a_stable_sqlstate(name: str, script: str) -> None:
    statements = raise_statements(script)
    assert len(statements) == len(re.findall(r"raise\s+exception\b", script, flags=re.I))
    missing = [s.splitlines()[0] for s in statements if not re.search(r"errcode\s*=\s*'[0-9A-Z]{5}'", s)]
    assert missing == []


@pytest.mark.parametrize(("name", "script"), all_scripts(), ids=[name for name, _ in all_scripts()])
def test_every_function_has_a_header_comment(name: str, script: str) -> None:
    """Each function opens with a comment naming it; overloads may share their first one's."""
    previous = None
    for match in re.finditer(r"^create or replace (?:function|procedure) (pgque\.\w+)", script, flags=re.M):
        function = match.group(1)
        above = script[: match.start()].rstrip("\n").splitlines()
        header = []
        for line in reversed(above):
            if not line.startswith("--"):
                break
            header.append(line)
        documented = f"{function}(" in "\n".join(header)
        shares_overload_header = not header and function == previous
        assert documented or shares_overload_header, f"{name}: {function} has no header comment"
        previous = function


def test_sql_files_ship_in_order_and_are_utf8() -> None:
    for step in STEPS:
        names = [f.name for f in sql_step(step)]
        assert names == sorted(names)
        assert all(re.match(r"\d\d_[a-z_]+\.sql$", n) for n in names), names
