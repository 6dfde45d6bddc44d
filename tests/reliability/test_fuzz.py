"""Bad input, fuzzed: names, payloads and NULL / extreme arguments to every routine of the engine.

Whatever goes in, the engine answers with a documented error (see
``tests.reliability._calls.allowed``: an engine ``PQ***`` SQLSTATE, a data
exception of class 22, ``23502``, ``54000``) or does the right thing, never
an internal error, a bare ``P0001``, a syntax error or a crash, and its
invariants (``tests.reliability._invariants``) hold after every case.

State is reset between examples: routine calls run in a transaction that is
rolled back (state committed once per test); round trips, which need
committed ticks, drop every queue they made.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests._pg import Database
from tests.reliability._calls import Fixture, Routine, allowed, routines, server_alive
from tests.reliability._invariants import violations
from tests.reliability._scale import FUZZ, fuzz, scale

pytestmark = pytest.mark.reliability

NAME_LIMIT = 57  # bytes (spec 6.4: the NOTIFY channel pgque_<name> must fit in 63)

SPECIAL_NAMES = [
    "",
    " ",
    "'",
    '"',
    "''",
    "q'; drop table pgque.queue; --",
    'q"; drop table pgque.queue; --',
    "x') or ('1'='1",
    "%s %I %L %%",
    "$1",
    "\\",
    "\\'",
    "a\nb",
    "a\tb",
    "Mixed Case",
    "a.b",
    "a#b",
    "pgque.event_1",
    "event_1_0",
    "null",
    "NULL",
    "a" * 57,
    "a" * 58,
    "é" * 28 + "a",  # 57 bytes
    "é" * 29,  # 58 bytes
    "€" * 19,  # 57 bytes
    "€" * 19 + "a",  # 58 bytes
    "😀" * 14 + "a",  # 57 bytes
    "😀" * 15,  # 60 bytes
    "a" * 1000,
    "\u202e\u200b\ufeff",
    "\x01\x7f",
]

# any character PostgreSQL text can hold (no NUL, no lone surrogates)
CHARACTERS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
NAMES = st.one_of(
    st.sampled_from(SPECIAL_NAMES),
    st.text(CHARACTERS, max_size=24),
    st.builds(lambda ch, n: ch * n, st.sampled_from(["a", "é", "€", "😀", "'", '"', ";"]), st.integers(0, 64)),
)


@pytest.fixture
def conn(db: Database) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection (the database owner) with a statement timeout: a hang is a finding too."""
    connection = db.connect()
    connection.execute("set statement_timeout = '30s'")
    yield connection


def check_error(error: psycopg.Error, what: str, conninfo: str, routine: str | None = None) -> str:
    """Fail unless ``error`` is an allowed error; return its SQLSTATE."""
    assert server_alive(conninfo), f"{what}: the server died ({error})"
    assert allowed(error.sqlstate, routine), f"{what}: undocumented error {error.sqlstate}: {error}"
    return str(error.sqlstate)


def reset(conn: psycopg.Connection[Any]) -> None:
    """Drop every queue (and so every consumer): the database is as installed again."""
    conn.execute(
        "select pgque.unregister_subconsumer(q.queue_name, split_part(c.co_name, '.', 1),"
        " substr(c.co_name, length(split_part(c.co_name, '.', 1)) + 2), 1)"
        " from pgque.subscription s join pgque.queue q on q.queue_id = s.sub_queue"
        " join pgque.consumer c on c.co_id = s.sub_consumer where s.sub_role = 'coop_member'"
    )
    conn.execute("select pgque.drop_queue(queue_name, true) from pgque.queue")
    assert conn.execute("select count(*) from pgque.queue").fetchone() == (0,)


# ---------------------------------------------------------------------------
# names and payloads, end to end
# ---------------------------------------------------------------------------


@FUZZ
@given(
    queue=NAMES, consumer=NAMES, type_=st.one_of(st.none(), NAMES), payload=st.one_of(st.none(), st.text(CHARACTERS))
)
@example(queue="a" * 57, consumer="'; drop table pgque.tick; --", type_=None, payload="")
@example(queue="é" * 29, consumer="c", type_="t", payload="x")
@example(queue="", consumer="", type_="", payload="")
def test_any_queue_and_consumer_name_round_trips_or_is_rejected_cleanly(
    conn: psycopg.Connection[Any], db: Database, queue: str, consumer: str, type_: str | None, payload: str | None
) -> None:
    """create_queue / subscribe / send / tick / receive / ack / info / unsubscribe / drop with hostile names."""
    reset(conn)
    run = conn.execute
    if len(queue.encode()) > NAME_LIMIT:
        with pytest.raises(psycopg.Error) as caught:
            run("select pgque.create_queue(%s)", (queue,))
        assert caught.value.sqlstate == "PQ010"
        assert str(caught.value.diag.message_primary).startswith(f"queue name too long: {len(queue.encode())} bytes")
        assert run("select count(*) from pgque.queue").fetchone() == (0,)
        assert violations(conn) == []
        return
    assert run("select pgque.create_queue(%s)", (queue,)).fetchone() == (1,)
    assert run("select pgque.create_queue(%s)", (queue,)).fetchone() == (0,)
    assert run("select pgque.subscribe(%s, %s)", (queue, consumer)).fetchone() == (1,)
    [event] = run("select pgque.send(%s, %s, %s::text)", (queue, type_, payload)).fetchone() or [None]
    run("select pgque.force_next_tick(%s)", (queue,))
    assert run("select pgque.ticker(%s)", (queue,)).fetchone() != (None,)
    rows = run("select msg_id, batch_id, type, payload from pgque.receive(%s, %s, null)", (queue, consumer)).fetchall()
    assert [(r[0], r[2], r[3]) for r in rows] == [(event, type_, payload)]
    assert run("select pgque.ack(%s)", (rows[0][1],)).fetchone() == (1,)
    assert run("select queue_name from pgque.get_queue_info(%s)", (queue,)).fetchall() == [(queue,)]
    assert run(
        "select consumer_name, current_batch from pgque.get_consumer_info(%s, %s)", (queue, consumer)
    ).fetchall() == [(consumer, None)]
    assert violations(conn) == []
    assert run("select pgque.unsubscribe(%s, %s)", (queue, consumer)).fetchone() == (1,)
    assert run("select pgque.drop_queue(%s)", (queue,)).fetchone() == (1,)
    assert violations(conn) == []


@FUZZ
@given(consumer=NAMES, member=NAMES)
@example(consumer="a.b", member="m")
@example(consumer="c", member="")
@example(consumer="c'c", member='m"; drop table pgque.subscription; --')
def test_any_cooperative_name_round_trips_or_is_rejected_cleanly(
    conn: psycopg.Connection[Any], db: Database, consumer: str, member: str
) -> None:
    """register_subconsumer / receive_coop / ack / unregister with hostile consumer and member names."""
    reset(conn)
    run = conn.execute
    run("select pgque.create_queue('q')")
    try:
        assert run("select pgque.register_subconsumer('q', %s, %s)", (consumer, member)).fetchone() == (1,)
    except psycopg.Error as error:
        assert check_error(error, "register_subconsumer", db.conninfo) == "PQ010"
        assert "." in consumer + member or "" in (consumer, member)
        assert run("select count(*) from pgque.subscription").fetchone() == (0,)
        assert violations(conn) == []
        return
    assert "." not in consumer + member and "" not in (consumer, member)
    [event] = run("select pgque.send('q', 'x')").fetchone() or [None]
    run("select pgque.force_next_tick('q')")
    run("select pgque.ticker('q')")
    rows = run("select batch_id, msg_id from pgque.receive_coop('q', %s, %s, null)", (consumer, member)).fetchall()
    assert [r[1] for r in rows] == [event]
    assert run("select consumer_name from pgque.get_consumer_info('q') order by 1").fetchall() == [
        (consumer,),
        (f"{consumer}.{member}",),
    ]
    assert violations(conn) == []
    assert run("select pgque.ack(%s)", (rows[0][0],)).fetchone() == (1,)
    assert run("select pgque.unregister_subconsumer('q', %s, %s)", (consumer, member)).fetchone() == (1,)
    assert run("select pgque.unsubscribe('q', %s)", (consumer,)).fetchone() == (1,)
    assert violations(conn) == []


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(CHARACTERS),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(CHARACTERS, max_size=6), inner, max_size=4),
    max_leaves=12,
)
JSON_TEXTS = st.one_of(
    JSON_VALUES.map(json.dumps),
    st.text(CHARACTERS, max_size=40),  # mostly not JSON
    st.sampled_from(
        ['{"a":', "[1,]", "{'a': 1}", "NaN", "\\u0000", '"\\u0000"', '{"\\ud800": 1}', "[" * 5000 + "]" * 5000]
    ),
)


@FUZZ
@given(payload=JSON_TEXTS)
def test_jsonb_payloads_are_stored_canonically_or_fail_in_the_cast(
    conn: psycopg.Connection[Any], db: Database, payload: str, report: Callable[[str], None]
) -> None:
    """send(q, $1::jsonb): invalid JSON fails in the cast (same SQLSTATE as the bare cast), before the engine."""
    run = conn.execute
    if run("select count(*) from pgque.queue where queue_name = 'j'").fetchone() == (0,):
        run("select pgque.create_queue('j')")
    try:
        [canonical] = run("select %s::jsonb::text", (payload,)).fetchone() or [None]
        cast_error = None
    except psycopg.Error as error:
        cast_error = error.sqlstate
    for query in ("select pgque.send('j', %s::jsonb)", "select pgque.send_batch('j', 't', array[%s]::jsonb[])"):
        try:
            run(query, (payload,))
        except psycopg.Error as error:
            assert server_alive(db.conninfo)
            assert error.sqlstate == cast_error, f"{query}: {error.sqlstate} {error}, the bare cast: {cast_error}"
            assert "pgque" not in (error.diag.context or ""), f"{query}: failed inside the engine: {error}"
        else:
            assert cast_error is None
            stored = run("select ev_data from pgque.event_1 order by ev_id desc limit 1").fetchone()
            assert stored == (canonical,)
    assert violations(conn) == []


def test_nul_never_reaches_the_engine(conn: psycopg.Connection[Any], db: Database) -> None:
    """Text cannot hold NUL: the client refuses it, chr(0) fails with 54000, a \\u0000 JSON escape with 22P05."""
    conn.execute("select pgque.create_queue('n')")
    for args in (("n\x00", "x"), ("n", "a\x00b")):
        with pytest.raises(psycopg.DataError):
            conn.execute("select pgque.send(%s, %s::text)", args)
    for query, state in (
        ("select pgque.send('n', 'a' || chr(0))", "54000"),
        ("select pgque.create_queue('q' || chr(0))", "54000"),
        ("select pgque.subscribe('n', chr(0))", "54000"),
        ("select pgque.send('n', '\"\\u0000\"'::jsonb)", "22P05"),
        ("select pgque.send('n', convert_from('\\x00'::bytea, 'UTF8'))", "22021"),
    ):
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(query)
        assert caught.value.sqlstate == state, query
    assert conn.execute("select count(*) from pgque.event_1").fetchone() == (0,)
    assert conn.execute("select count(*) from pgque.queue").fetchone() == (1,)
    assert violations(conn) == []


def test_huge_payloads_and_batches_round_trip(
    conn: psycopg.Connection[Any], db: Database, report: Callable[[str], None]
) -> None:
    """Multi-megabyte text and jsonb payloads, and a large send_batch with NULLs, come back byte for byte."""
    run = conn.execute
    run("select pgque.create_queue('big')")
    run("select pgque.subscribe('big', 'c')")
    size = scale(8, 64) * 1024 * 1024
    text_payload = ("€x'\"\\" * (size // 8 + 1))[:size]
    json_payload = json.dumps({"blob": "é" * (size // 4), "list": list(range(1000))})
    batch = [None if i % 97 == 0 else f"{i}:{'ü' * (i % 50)}" for i in range(scale(10_000, 100_000))]
    first = run("select pgque.send('big', 'text', %s::text)", (text_payload,)).fetchone()
    second = run("select pgque.send('big', 'json', %s::jsonb)", (json_payload,)).fetchone()
    ids = run("select pgque.send_batch('big', 'b', %s::text[])", (batch,)).fetchone()
    assert first and second and ids
    run("select pgque.force_next_tick('big')")
    run("select pgque.ticker('big')")
    rows = run("select msg_id, md5(payload), octet_length(payload) from pgque.receive('big', 'c', null)").fetchall()
    [canonical] = run("select %s::jsonb::text", (json_payload,)).fetchone() or [None]
    digest = [(hashlib.md5(p.encode()).hexdigest(), len(p.encode())) for p in (text_payload, canonical)]
    assert [r[0] for r in rows] == [first[0], second[0], *ids[0]]
    assert [tuple(r[1:]) for r in rows[:2]] == digest
    got = run("select payload from pgque.receive('big', 'c', null)").fetchall()
    assert [r[0] for r in got[2:]] == batch
    assert violations(conn) == []
    report(
        f"{size // 2**20} MiB text and {len(json_payload) // 2**20} MiB jsonb payloads and a {len(batch)}-element"
        " send_batch (1 in 97 NULL) round trip intact"
    )


# ---------------------------------------------------------------------------
# NULL and extreme arguments to every routine
# ---------------------------------------------------------------------------

SEEN: Counter[str] = Counter()
STATES_BY_ROUTINE: dict[str, set[str]] = {}


def call(conn: psycopg.Connection[Any], fixture: Fixture, routine: Routine, args: list[Any], conninfo: str) -> None:
    """In one rolled-back transaction: open batches, call the routine, check the error and the invariants."""
    what = f"{routine} with {args!r}"[:500]
    with conn.transaction(force_rollback=True):
        fixture.open_batches()
        try:
            with conn.transaction():
                conn.execute(routine.statement(), args)
            SEEN["ok"] += 1
        except psycopg.Error as error:
            state = check_error(error, what, conninfo, routine.name)
            SEEN[state] += 1
            if not state.startswith("PQ"):
                STATES_BY_ROUTINE.setdefault(routine.name, set()).add(state)
        found = violations(conn)
        assert found == [], f"{what}: {found}"


@pytest.fixture
def world(conn: psycopg.Connection[Any]) -> Fixture:
    fixture = Fixture(conn)
    fixture.commit_world()
    return fixture


def test_null_in_every_argument_of_every_routine(
    conn: psycopg.Connection[Any], db: Database, world: Fixture, report: Callable[[str], None]
) -> None:
    """Each routine with all arguments NULL, and with each argument NULL in turn (the others valid)."""
    SEEN.clear()
    STATES_BY_ROUTINE.clear()
    found = [r for r in routines(conn) if r.granted]  # owner-only internals are no API: not called out of context
    calls = 0
    for routine in found:
        valid = world.valid_args(routine)
        cases = [[None] * len(valid), valid, *([*valid[:i], None, *valid[i + 1 :]] for i in range(len(valid)))]
        for args in cases:
            call(conn, world, routine, args, db.conninfo)
            calls += 1
    assert len(found) > 80
    assert violations(conn) == []
    report(
        f"{len(found)} routines, {calls} calls (all-NULL, all-valid, one NULL at a time); outcomes {dict(SEEN)};"
        f" PostgreSQL errors from {STATES_BY_ROUTINE}"
    )


EXTREMES: dict[str, list[Any]] = {
    "integer": [0, -1, 1, 2**31 - 1, -(2**31)],
    "bigint": [0, -1, 1, 2**63 - 1, -(2**63)],
    "interval": ["0", "-1 second", "1 microsecond", "178000000 years", "-178000000 years", "1.5 seconds"],
    "timestamp with time zone": ["infinity", "-infinity", "4713-01-01 00:00:00+00 BC", "294276-12-31 23:59:59+00"],
    "boolean": ["true", "false"],
    "jsonb": ["[]", "null", '"x"', '{"a": [1, {"b": null}]}', "1e308"],
    "text[]": ["{}", "{NULL}", '{""}', "{a,b}"],
    "jsonb[]": ["{}", "{NULL}", '{"[1]","null"}'],
    "xid8": ["0", "1", "18446744073709551615"],
    "oid": ["0", "4294967295"],
    "integer[]": ["{}", "{NULL}", "{-1,2147483647}"],
    "bigint[]": ["{}", "{NULL}", "{-1,9223372036854775807}"],
    "pgque.message": ["(,,,,,,,,,)", "(1,1,t,p,1,now,,,,)", "(-1,-1,,,-1,infinity,,,,)"],
}


@st.composite
def arguments(draw: st.DrawFn, routine: Routine, fixture: Fixture) -> list[Any]:
    """Per argument: NULL, the valid value, or an extreme of its type (a hostile name for text)."""
    values = []
    for name, type_ in zip(routine.arg_names, routine.arg_types, strict=True):
        valid = fixture.valid_value(routine, name, type_)
        odd = NAMES if type_ == "text" else st.sampled_from(EXTREMES.get(type_) or [None])
        values.append(draw(st.one_of(st.none(), st.just(valid), odd)))
    return values


def fuzz_routine(conn: psycopg.Connection[Any], world: Fixture, routine: Routine, conninfo: str) -> None:
    @fuzz(12, 200)
    @given(data=st.data())
    def case(data: st.DataObject) -> None:
        call(conn, world, routine, data.draw(arguments(routine, world)), conninfo)

    case()


def test_fuzzed_arguments_to_every_routine(
    conn: psycopg.Connection[Any], db: Database, world: Fixture, report: Callable[[str], None]
) -> None:
    """Hypothesis draws NULL / valid / extreme values for every argument of every routine."""
    SEEN.clear()
    STATES_BY_ROUTINE.clear()
    found = [r for r in routines(conn) if r.arg_types and r.granted]
    for routine in found:
        fuzz_routine(conn, world, routine, db.conninfo)
    assert violations(conn) == []
    report(
        f"{len(found)} routines with arguments, {sum(SEEN.values())} fuzzed calls; outcomes {dict(SEEN)};"
        f" PostgreSQL errors from {STATES_BY_ROUTINE}"
    )
