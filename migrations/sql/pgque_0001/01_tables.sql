-- sa_pgque engine, revision 0001: tables, sequences and the message type.
--
-- Column names, types, order, defaults and constraint names follow PgQue's
-- catalog, because PgQue clients and tests read these tables directly.
-- Everything is "create if missing": re-running keeps all data.

-- One row per queue. Per-queue storage (event_<id> and its three children,
-- plus two sequences) is created by pgque.create_queue().
create table if not exists pgque.queue (
    queue_id                 serial      not null,
    queue_name               text        not null,
    queue_ntables            integer     not null default 3,
    queue_cur_table          integer     not null default 0,
    queue_rotation_period    interval    not null default '2 hours',
    queue_switch_step1       bigint      not null default (pg_catalog.pg_current_xact_id()::text::bigint),
    queue_switch_step2       bigint               default (pg_catalog.pg_current_xact_id()::text::bigint),
    queue_switch_time        timestamptz not null default now(),
    queue_external_ticker    boolean     not null default false,
    queue_disable_insert     boolean     not null default false,
    queue_ticker_paused      boolean     not null default false,
    queue_ticker_max_count   integer     not null default 500,
    queue_ticker_max_lag     interval    not null default '3 seconds',
    queue_ticker_idle_period interval    not null default '1 minute',
    queue_data_pfx           text        not null,
    queue_event_seq          text        not null,
    queue_tick_seq           text        not null,
    queue_extra_maint        text[],
    queue_max_retries        int4,
    constraint queue_pkey primary key (queue_id),
    constraint queue_name_uq unique (queue_name)
);

-- Consumer names are global; a consumer row lives while it has subscriptions.
create table if not exists pgque.consumer (
    co_id   serial not null,
    co_name text   not null,
    constraint consumer_pkey primary key (co_id),
    constraint consumer_name_uq unique (co_name)
);

-- A consumer's cursor on one queue. sub_id is shared by the rows of one
-- cooperative group (main + members), so it is deliberately not unique.
create table if not exists pgque.subscription (
    sub_id        serial      not null,
    sub_queue     int4        not null,
    sub_consumer  int4        not null,
    sub_last_tick bigint,
    sub_active    timestamptz not null default now(),
    sub_batch     bigint,
    sub_next_tick bigint,
    sub_role      text        not null default 'normal',
    constraint subscription_pkey primary key (sub_queue, sub_consumer),
    constraint subscription_batch_idx unique (sub_batch),
    constraint sub_queue_fkey foreign key (sub_queue) references pgque.queue (queue_id),
    constraint sub_consumer_fkey foreign key (sub_consumer) references pgque.consumer (co_id),
    constraint subscription_sub_role_check check (sub_role in ('normal', 'coop_main', 'coop_member'))
);

-- A tick: a moment of one queue, with the snapshot and event sequence at that
-- moment. A batch is the set of events visible in one tick's snapshot and not
-- in the previous one's.
create table if not exists pgque.tick (
    tick_queue     int4        not null,
    tick_id        bigint      not null,
    tick_time      timestamptz not null default now(),
    tick_snapshot  pg_snapshot not null default pg_catalog.pg_current_snapshot(),
    tick_event_seq bigint      not null,
    constraint tick_pkey primary key (tick_queue, tick_id),
    constraint tick_queue_fkey foreign key (tick_queue) references pgque.queue (queue_id)
);

-- Column template of every per-queue event table. Holds no rows itself.
create table if not exists pgque.event_template (
    ev_id     bigint      not null,
    ev_time   timestamptz not null,
    ev_txid   xid8        not null default pg_catalog.pg_current_xact_id(),
    ev_owner  int4,
    ev_retry  int4,
    ev_type   text,
    ev_data   text,
    ev_extra1 text,
    ev_extra2 text,
    ev_extra3 text,
    ev_extra4 text
);

-- Events parked for a later retry, private to the subscription (ev_owner =
-- sub_id) that asked for it.
create table if not exists pgque.retry_queue (
    ev_retry_after timestamptz not null,
    ev_queue       int4        not null,
    ev_id          bigint      not null,
    ev_time        timestamptz not null,
    ev_txid        xid8,
    ev_owner       int4        not null,
    ev_retry       int4,
    ev_type        text,
    ev_data        text,
    ev_extra1      text,
    ev_extra2      text,
    ev_extra3      text,
    ev_extra4      text,
    constraint rq_pkey primary key (ev_owner, ev_id),
    constraint rq_queue_id_fkey foreign key (ev_queue) references pgque.queue (queue_id)
);
create index if not exists rq_retry_idx on pgque.retry_queue (ev_retry_after);

-- Events whose retry budget is exhausted. One row per (queue, consumer, event).
create table if not exists pgque.dead_letter (
    dl_id          bigserial   not null,
    dl_queue_id    int4        not null,
    dl_consumer_id int4        not null,
    dl_time        timestamptz not null default now(),
    dl_reason      text,
    ev_id          bigint      not null,
    ev_time        timestamptz not null,
    ev_txid        xid8,
    ev_retry       int4,
    ev_type        text,
    ev_data        text,
    ev_extra1      text,
    ev_extra2      text,
    ev_extra3      text,
    ev_extra4      text,
    constraint dead_letter_pkey primary key (dl_id),
    constraint dead_letter_dl_queue_id_fkey foreign key (dl_queue_id)
        references pgque.queue (queue_id) on delete cascade,
    constraint dead_letter_dl_consumer_id_fkey foreign key (dl_consumer_id)
        references pgque.consumer (co_id) on delete cascade
);
create index if not exists dl_queue_time_idx on pgque.dead_letter (dl_queue_id, dl_time);
create unique index if not exists dl_queue_consumer_ev_idx
    on pgque.dead_letter (dl_queue_id, dl_consumer_id, ev_id);

-- Installation-wide settings: one row.
create table if not exists pgque.config (
    singleton      boolean     not null default true,
    ticker_job_id  bigint,
    maint_job_id   bigint,
    scheduler      text,
    tick_period_ms integer     not null default 100,
    installed_at   timestamptz not null default clock_timestamp(),
    constraint config_pkey primary key (singleton),
    constraint config_singleton_check check (singleton),
    constraint config_scheduler_check check (scheduler in ('pg_cron', 'pg_timetable')),
    constraint config_tick_period_ms_check
        check (tick_period_ms between 1 and 1000 and 1000 % tick_period_ms = 0)
);
insert into pgque.config (singleton) values (true) on conflict (singleton) do nothing;

-- Batch ids are global across queues and drawn outside transactions, so an
-- aborted receive hands the same events out again under a new id.
create sequence if not exists pgque.batch_id_seq as bigint;

-- The row shape receive() returns; the field order is part of the API.
do $type$
begin
    if to_regtype('pgque.message') is null then
        create type pgque.message as (
            msg_id      bigint,
            batch_id    bigint,
            type        text,
            payload     text,
            retry_count int4,
            created_at  timestamptz,
            extra1      text,
            extra2      text,
            extra3      text,
            extra4      text
        );
    end if;
end
$type$;
