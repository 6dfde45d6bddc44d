-- sa_pgque engine, revision 0001: queue and consumer information.
--
-- Figures derived from sequences (ev_new, ev_per_sec, pending_events) are
-- estimates: forced ticks and rejected inserts advance sequences too.

-- ---------------------------------------------------------------------------
-- pgque.get_queue_info(i_queue_name text) -> setof record
--   One row per queue (NULL: all queues), by name: settings, rotation state,
--   ticker lag, recent events per second (over up to the last 20 ticks),
--   events not yet covered by a tick, and the latest tick id.
--   Unknown queue: no rows.  Tables: queue, tick.
-- ---------------------------------------------------------------------------
create or replace function pgque.get_queue_info(
    i_queue_name text,
    out queue_name text, out queue_ntables integer, out queue_cur_table integer,
    out queue_rotation_period interval, out queue_switch_time timestamptz,
    out queue_external_ticker boolean, out queue_ticker_paused boolean,
    out queue_ticker_max_count integer, out queue_ticker_max_lag interval,
    out queue_ticker_idle_period interval, out ticker_lag interval,
    out ev_per_sec float8, out ev_new bigint, out last_tick_id bigint)
returns setof record
language sql
stable
security definer
set search_path = pgque, pg_catalog
as $$
    select q.queue_name, q.queue_ntables, q.queue_cur_table, q.queue_rotation_period, q.queue_switch_time,
           q.queue_external_ticker, q.queue_ticker_paused, q.queue_ticker_max_count,
           q.queue_ticker_max_lag, q.queue_ticker_idle_period,
           now() - latest.tick_time,
           case when recent.tick_time < latest.tick_time
                then ((latest.tick_event_seq - recent.tick_event_seq)
                      / extract(epoch from latest.tick_time - recent.tick_time))::float8
           end,
           pgque.seq_getval(q.queue_event_seq) - latest.tick_event_seq,
           latest.tick_id
      from pgque.queue q
      left join lateral (
            select t.tick_id, t.tick_time, t.tick_event_seq from pgque.tick t
             where t.tick_queue = q.queue_id order by t.tick_id desc limit 1) latest on true
      left join lateral (
            select t.tick_time, t.tick_event_seq from pgque.tick t
             where t.tick_queue = q.queue_id and t.tick_id >= latest.tick_id - 20
             order by t.tick_id limit 1) recent on true
     where i_queue_name is null or q.queue_name = i_queue_name
     order by q.queue_name
$$;

-- ---------------------------------------------------------------------------
-- pgque.get_queue_info() -> setof record
--   get_queue_info(NULL): every queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.get_queue_info(
    out queue_name text, out queue_ntables integer, out queue_cur_table integer,
    out queue_rotation_period interval, out queue_switch_time timestamptz,
    out queue_external_ticker boolean, out queue_ticker_paused boolean,
    out queue_ticker_max_count integer, out queue_ticker_max_lag interval,
    out queue_ticker_idle_period interval, out ticker_lag interval,
    out ev_per_sec float8, out ev_new bigint, out last_tick_id bigint)
returns setof record
language sql
stable
security definer
set search_path = pgque, pg_catalog
as $$ select * from pgque.get_queue_info(null::text) $$;

-- ---------------------------------------------------------------------------
-- pgque.get_consumer_info(i_queue_name text, i_consumer_name text) -> setof record
--   One row per subscription row (cooperative mains and members included),
--   NULL arguments matching everything, ordered by queue then consumer:
--   lag behind the cursor tick, time since last activity, cursor, open
--   batch, and the estimated events between the cursor and the latest tick.
--   Tables: subscription, queue, consumer, tick.
-- ---------------------------------------------------------------------------
create or replace function pgque.get_consumer_info(
    i_queue_name text, i_consumer_name text,
    out queue_name text, out consumer_name text, out lag interval, out last_seen interval,
    out last_tick bigint, out current_batch bigint, out next_tick bigint, out pending_events bigint)
returns setof record
language sql
stable
security definer
set search_path = pgque, pg_catalog
as $$
    select q.queue_name, c.co_name, now() - cursor_tick.tick_time, now() - s.sub_active,
           s.sub_last_tick, s.sub_batch, s.sub_next_tick,
           latest.tick_event_seq - cursor_tick.tick_event_seq
      from pgque.subscription s
      join pgque.queue q on q.queue_id = s.sub_queue
      join pgque.consumer c on c.co_id = s.sub_consumer
      left join pgque.tick cursor_tick
             on cursor_tick.tick_queue = s.sub_queue and cursor_tick.tick_id = s.sub_last_tick
      left join lateral (
            select t.tick_event_seq from pgque.tick t
             where t.tick_queue = s.sub_queue order by t.tick_id desc limit 1) latest on true
     where (i_queue_name is null or q.queue_name = i_queue_name)
       and (i_consumer_name is null or c.co_name = i_consumer_name)
     order by q.queue_name, c.co_name
$$;

-- ---------------------------------------------------------------------------
-- pgque.get_consumer_info(i_queue_name text) -> setof record
--   Every subscription of one queue (NULL: of all queues).
-- ---------------------------------------------------------------------------
create or replace function pgque.get_consumer_info(
    i_queue_name text,
    out queue_name text, out consumer_name text, out lag interval, out last_seen interval,
    out last_tick bigint, out current_batch bigint, out next_tick bigint, out pending_events bigint)
returns setof record
language sql
stable
security definer
set search_path = pgque, pg_catalog
as $$ select * from pgque.get_consumer_info(i_queue_name, null::text) $$;

-- ---------------------------------------------------------------------------
-- pgque.get_consumer_info() -> setof record
--   Every subscription of every queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.get_consumer_info(
    out queue_name text, out consumer_name text, out lag interval, out last_seen interval,
    out last_tick bigint, out current_batch bigint, out next_tick bigint, out pending_events bigint)
returns setof record
language sql
stable
security definer
set search_path = pgque, pg_catalog
as $$ select * from pgque.get_consumer_info(null::text, null::text) $$;
