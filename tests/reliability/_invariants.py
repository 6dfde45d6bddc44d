"""Engine invariants: bookkeeping facts that must hold after every API call.

``violations(conn)`` runs one query per invariant on a psycopg connection
(autocommit or inside a transaction: it only reads) and returns a list of
human-readable violations, empty when the engine's state is sound. The
reliability tests check it after every fuzzed call, at the end of the crash
and soak runs, and after every injection attempt.
"""

from __future__ import annotations

from typing import Any

import psycopg

# (description, query returning one row per violation)
INVARIANTS: tuple[tuple[str, str], ...] = (
    (
        "every queue has its parent and child event tables",
        """
        select q.queue_name, t.name
          from pgque.queue q
         cross join lateral (
               select q.queue_data_pfx as name
               union all
               select q.queue_data_pfx || '_' || k from generate_series(0, q.queue_ntables - 1) k) t
         where to_regclass(t.name) is null
        """,
    ),
    (
        "every queue has its event-id and tick sequences",
        """
        select q.queue_name, s.name
          from pgque.queue q
         cross join lateral (values (q.queue_event_seq), (q.queue_tick_seq)) s(name)
         where to_regclass(s.name) is null
        """,
    ),
    (
        "every pgque.event_<n>* relation belongs to an existing queue (nothing left behind by drop_queue)",
        """
        select c.relname
          from pg_class c
         where c.relnamespace = 'pgque'::regnamespace
           and c.relname ~ '^event_[0-9]+'
           and substring(c.relname from '^event_([0-9]+)')::int not in (select queue_id from pgque.queue)
        """,
    ),
    (
        "queue_cur_table is one of the queue's child tables",
        "select queue_name, queue_cur_table from pgque.queue where queue_cur_table not between 0 and queue_ntables - 1",
    ),
    (
        "every queue has at least one tick",
        "select q.queue_name from pgque.queue q"
        " where not exists (select 1 from pgque.tick t where t.tick_queue = q.queue_id)",
    ),
    (
        "every tick belongs to an existing queue",
        "select t.tick_queue, t.tick_id from pgque.tick t"
        " where not exists (select 1 from pgque.queue q where q.queue_id = t.tick_queue)",
    ),
    (
        "every subscription's cursor tick exists (NULL only for idle cooperative members)",
        """
        select s.sub_queue, c.co_name, s.sub_role, s.sub_last_tick
          from pgque.subscription s
          join pgque.consumer c on c.co_id = s.sub_consumer
         where (s.sub_last_tick is null and s.sub_role <> 'coop_member')
            or (s.sub_last_tick is not null and not exists (
                    select 1 from pgque.tick t where t.tick_queue = s.sub_queue and t.tick_id = s.sub_last_tick))
        """,
    ),
    (
        "an open batch has an existing end tick after its start tick, and a closed one has neither",
        """
        select s.sub_queue, c.co_name, s.sub_batch, s.sub_last_tick, s.sub_next_tick
          from pgque.subscription s
          join pgque.consumer c on c.co_id = s.sub_consumer
         where (s.sub_batch is null) <> (s.sub_next_tick is null)
            or (s.sub_batch is not null and (
                    s.sub_last_tick is null
                 or s.sub_next_tick <= s.sub_last_tick
                 or not exists (select 1 from pgque.tick t
                                 where t.tick_queue = s.sub_queue and t.tick_id = s.sub_next_tick)))
        """,
    ),
    (
        "no batch id is open twice",
        "select sub_batch, count(*) from pgque.subscription where sub_batch is not null"
        " group by sub_batch having count(*) > 1",
    ),
    (
        "a cooperative main never holds a batch; an idle member has no cursor",
        """
        select s.sub_queue, c.co_name, s.sub_role
          from pgque.subscription s
          join pgque.consumer c on c.co_id = s.sub_consumer
         where (s.sub_role = 'coop_main' and s.sub_batch is not null)
            or (s.sub_role = 'coop_member' and s.sub_batch is null and s.sub_last_tick is not null)
        """,
    ),
    (
        "sub_id is shared only by a cooperative main and its <main>.<member> rows",
        """
        select s.sub_queue, s.sub_id, array_agg(c.co_name || ':' || s.sub_role order by c.co_name)
          from pgque.subscription s
          join pgque.consumer c on c.co_id = s.sub_consumer
         group by s.sub_queue, s.sub_id
        having count(*) > 1 and (
                   count(*) filter (where s.sub_role = 'coop_main') <> 1
                or count(*) filter (where s.sub_role = 'normal') > 0
                or bool_or(s.sub_role = 'coop_member' and not exists (
                       select 1
                         from pgque.subscription m
                         join pgque.consumer mc on mc.co_id = m.sub_consumer
                        where m.sub_queue = s.sub_queue and m.sub_id = s.sub_id
                          and m.sub_role = 'coop_main'
                          and left(c.co_name, length(mc.co_name) + 1) = mc.co_name || '.')))
        """,
    ),
    (
        "every cooperative member has its main",
        """
        select s.sub_queue, c.co_name
          from pgque.subscription s
          join pgque.consumer c on c.co_id = s.sub_consumer
         where s.sub_role = 'coop_member'
           and not exists (select 1 from pgque.subscription m
                            where m.sub_queue = s.sub_queue and m.sub_id = s.sub_id and m.sub_role = 'coop_main')
        """,
    ),
    (
        "every consumer row has a subscription",
        "select c.co_name from pgque.consumer c"
        " where not exists (select 1 from pgque.subscription s where s.sub_consumer = c.co_id)",
    ),
    (
        "retry_queue rows reference an existing queue and a subscription of it",
        """
        select r.ev_queue, r.ev_owner, r.ev_id
          from pgque.retry_queue r
         where not exists (select 1 from pgque.subscription s
                            where s.sub_queue = r.ev_queue and s.sub_id = r.ev_owner)
        """,
    ),
    (
        "dead letters reference an existing queue and consumer",
        """
        select d.dl_id from pgque.dead_letter d
         where not exists (select 1 from pgque.queue q where q.queue_id = d.dl_queue_id)
            or not exists (select 1 from pgque.consumer c where c.co_id = d.dl_consumer_id)
        """,
    ),
    (
        "config holds exactly one row",
        "select count(*) from pgque.config having count(*) <> 1",
    ),
)


def violations(conn: psycopg.Connection[Any]) -> list[str]:
    """Every broken invariant, as ``"<invariant>: <offending rows>"``; empty when sound."""
    found = []
    for description, query in INVARIANTS:
        rows = conn.execute(query).fetchall()
        if rows:
            found.append(f"{description}: {[tuple(r) for r in rows[:10]]}")
    return found
