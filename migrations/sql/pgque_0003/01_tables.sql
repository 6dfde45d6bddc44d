-- sa_pgque engine, revision 0003: tables of idempotent send and delayed delivery.
--
-- pgque.idem follows PgQue's devel catalog (spec 4.9) column for column.
-- pgque.delay_queue is sa_pgque's own: events parked until their delivery
-- time, kept apart from the hot event tables (which are append-only and
-- reclaimed by TRUNCATE) and shaped like pgque.retry_queue, the engine's
-- other "not yet" table. Both are "create if missing": re-running keeps data.

-- One dedup claim per (queue, key). A live claim (expires_at > now()) turns
-- later send_idem calls with the key into no-ops reporting event_id; an
-- expired one is taken over in place. Owner only: reached through the
-- security-definer functions, never directly.
create table if not exists pgque.idem (
    queue_id   int4        not null,
    idem_key   text        not null,
    event_id   int8,
    expires_at timestamptz not null,
    constraint idem_pkey primary key (queue_id, idem_key),
    constraint idem_queue_id_fkey foreign key (queue_id)
        references pgque.queue (queue_id) on delete cascade
);
create index if not exists idem_expires_at_idx on pgque.idem (expires_at);

-- Events sent with send_at for a future time. ev_id is drawn from the
-- queue's event sequence when the event is parked, so send_at can return
-- the id the consumer will see; maint_deliver_delayed appends the row to
-- the queue under that id once ev_deliver_at has passed, and deletes it
-- here in the same transaction. ev_time is when send_at was called.
-- Dropping the queue discards its parked events.
create table if not exists pgque.delay_queue (
    ev_deliver_at timestamptz not null,
    ev_queue      int4        not null,
    ev_id         bigint      not null,
    ev_time       timestamptz not null,
    ev_type       text,
    ev_data       text,
    ev_extra1     text,
    ev_extra2     text,
    ev_extra3     text,
    ev_extra4     text,
    constraint dq_pkey primary key (ev_queue, ev_id),
    constraint dq_queue_id_fkey foreign key (ev_queue)
        references pgque.queue (queue_id) on delete cascade
);
create index if not exists dq_deliver_idx on pgque.delay_queue (ev_deliver_at);
