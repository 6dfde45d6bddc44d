-- sa_pgque engine, revision 0001: ticks.
--
-- A tick records a queue's event sequence and the transaction snapshot at one
-- moment. Consecutive ticks delimit batches. The ticker decides when a tick
-- is due (enough new events, enough lag, or the idle schedule), writes it and
-- NOTIFYs 'pgque_<queue>' so consumers wake up.

-- ---------------------------------------------------------------------------
-- pgque._write_tick(i_queue_id, i_queue_name, i_tick_id, i_event_seq, i_time) -> bigint
--   Insert one tick and NOTIFY its id on the queue's channel (delivered when
--   the transaction commits). The tick's snapshot is the current one, except
--   that a transaction writing a tick after it inserted events (create_queue
--   then send, or send then ticker, in one transaction) is listed as still
--   running: a snapshot does not list its own transaction, and once another
--   transaction has finished in between, its own id would otherwise pass for
--   committed at this tick and its events would fall outside every batch.
--   Tables: tick.
-- ---------------------------------------------------------------------------
create or replace function pgque._write_tick(
    i_queue_id integer, i_queue_name text, i_tick_id bigint, i_event_seq bigint, i_time timestamptz)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_snapshot pg_snapshot := pg_current_snapshot();
    v_own xid8 := pg_current_xact_id_if_assigned();
begin
    if v_own is not null and v_own < pg_snapshot_xmax(v_snapshot) then
        v_snapshot := format('%s:%s:%s',
                             least(pg_snapshot_xmin(v_snapshot), v_own),
                             pg_snapshot_xmax(v_snapshot),
                             (select string_agg(x::text, ',' order by x)
                                from (select pg_snapshot_xip(v_snapshot) as x union select v_own) running)
                            )::pg_snapshot;
    end if;
    insert into pgque.tick (tick_queue, tick_id, tick_time, tick_snapshot, tick_event_seq)
    values (i_queue_id, i_tick_id, i_time, v_snapshot, i_event_seq);
    perform pg_notify('pgque_' || i_queue_name, i_tick_id::text);
    return i_tick_id;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.ticker(i_queue_name text) -> bigint
--   Tick one queue if a tick is due; return the new tick id or NULL.
--   Due when: no tick yet; or new events and (>= ticker_max_count of them or
--   ticker_max_lag since the last tick); or, when idle, the idle back-off
--   allows it (at least max_lag/2 and twice the previous gap, capped by
--   ticker_idle_period). The queue row is locked so two tickers of one queue
--   cannot interleave.
--   Errors: no such queue; This queue has external tick source.;
--   Ticker has been paused for this queue; Invalid PgQ state: ...
--   Calls: seq_getval, _write_tick.  Tables: queue, tick.
-- ---------------------------------------------------------------------------
create or replace function pgque.ticker(i_queue_name text)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_queue pgque.queue;
    v_last pgque.tick;
    v_prev_time timestamptz;
    v_event_seq bigint;
    v_new_events bigint;
    v_since interval;
    v_cur_txid xid8;
begin
    select * into v_queue from pgque.queue where queue_name = i_queue_name for no key update;
    if not found then
        raise exception 'no such queue' using errcode = 'PQ001';
    end if;
    if v_queue.queue_external_ticker then
        raise exception 'This queue has external tick source.' using errcode = 'PQ020';
    end if;
    if v_queue.queue_ticker_paused then
        raise exception 'Ticker has been paused for this queue' using errcode = 'PQ020';
    end if;

    v_event_seq := pgque.seq_getval(v_queue.queue_event_seq);
    select * into v_last from pgque.tick
     where tick_queue = v_queue.queue_id
     order by tick_id desc
     limit 1;

    if found then
        -- The newest id that can have started; does not assign us a txid.
        v_cur_txid := pg_snapshot_xmax(pg_current_snapshot());
        if pg_snapshot_xmin(v_last.tick_snapshot) > v_cur_txid then
            raise exception 'Invalid PgQ state: old xmin=%, old xmax=%, cur txid=%',
                pg_snapshot_xmin(v_last.tick_snapshot), pg_snapshot_xmax(v_last.tick_snapshot), v_cur_txid
                using errcode = 'PQ040';
        end if;
        if pg_snapshot_xmax(v_last.tick_snapshot) > v_cur_txid then
            raise warning 'Dubious PgQ state: old xmax=%, cur txid=%',
                pg_snapshot_xmax(v_last.tick_snapshot), v_cur_txid;
        end if;

        v_new_events := v_event_seq - v_last.tick_event_seq;
        v_since := now() - v_last.tick_time;
        if v_new_events < 0 then
            raise warning 'Negative new_events?  old=% cur=%', v_last.tick_event_seq, v_event_seq;
        end if;

        if v_new_events > 0 then
            if v_new_events < v_queue.queue_ticker_max_count
               and v_since < v_queue.queue_ticker_max_lag then
                return null;
            end if;
        else
            select tick_time into v_prev_time from pgque.tick
             where tick_queue = v_queue.queue_id and tick_id < v_last.tick_id
             order by tick_id desc
             limit 1;
            if found and (v_since < v_queue.queue_ticker_max_lag / 2
                          or (v_since < 2 * (v_last.tick_time - v_prev_time)
                              and v_since < v_queue.queue_ticker_idle_period)) then
                return null;
            end if;
        end if;
    end if;

    return pgque._write_tick(v_queue.queue_id, v_queue.queue_name,
                             nextval(v_queue.queue_tick_seq::regclass), v_event_seq, now());
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.ticker() -> bigint
--   Run ticker(queue) for every queue that is neither paused nor externally
--   ticked, in name order. Returns how many queues got a tick.
-- ---------------------------------------------------------------------------
create or replace function pgque.ticker()
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_name text;
    v_ticked bigint := 0;
begin
    for v_name in
        select queue_name from pgque.queue
         where not queue_external_ticker and not queue_ticker_paused
         order by queue_name
    loop
        if pgque.ticker(v_name) is not null then
            v_ticked := v_ticked + 1;
        end if;
    end loop;
    return v_ticked;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.ticker(i_queue_name, i_tick_id, i_orig_timestamp, i_event_seq) -> bigint
--   Push a tick from an external source (queues with external_ticker).
--   Tick ids must strictly increase, event sequence values must not go
--   backwards; the queue's sequences are moved forward to match. Returns
--   i_tick_id.  Calls: seq_setval, _write_tick.  Tables: queue, tick.
-- ---------------------------------------------------------------------------
create or replace function pgque.ticker(
    i_queue_name text, i_tick_id bigint, i_orig_timestamp timestamptz, i_event_seq bigint)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_queue pgque.queue;
    v_max_tick bigint;
    v_prev_seq bigint;
begin
    select * into v_queue from pgque.queue where queue_name = i_queue_name for no key update;
    if not found then
        raise exception 'queue not found: %', i_queue_name using errcode = 'PQ001';
    end if;
    if v_queue.queue_ticker_paused then
        raise exception 'queue % is paused (queue_ticker_paused = true)', i_queue_name
            using errcode = 'PQ020';
    end if;
    if not v_queue.queue_external_ticker then
        raise exception 'queue % is not configured for external ticker (queue_external_ticker = false); use pgque.ticker(queue) instead',
            i_queue_name using errcode = 'PQ020';
    end if;

    select tick_id, tick_event_seq into v_max_tick, v_prev_seq
      from pgque.tick where tick_queue = v_queue.queue_id
     order by tick_id desc limit 1;
    if i_tick_id is null or i_tick_id <= coalesce(v_max_tick, 0) then
        raise exception 'external ticker tick_id must be strictly greater than current max (% <= %)',
            i_tick_id, coalesce(v_max_tick, 0) using errcode = 'PQ010';
    end if;
    if i_event_seq is null or i_event_seq < v_prev_seq then
        raise exception 'external ticker event_seq must be >= previous tick (% < %)',
            i_event_seq, v_prev_seq using errcode = 'PQ010';
    end if;

    perform pgque.seq_setval(v_queue.queue_tick_seq, i_tick_id);
    perform pgque.seq_setval(v_queue.queue_event_seq, i_event_seq);
    return pgque._write_tick(v_queue.queue_id, v_queue.queue_name, i_tick_id, i_event_seq,
                             coalesce(i_orig_timestamp, now()));
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.force_tick(i_queue_name text) -> bigint
--   Make the next ticker(queue) call tick regardless of thresholds, by
--   moving the event sequence far enough ahead (2 x ticker_max_count + 1000).
--   Writes no tick itself and sends no NOTIFY. Returns the latest existing
--   tick id (NULL when none).  Tables: queue, tick.
-- ---------------------------------------------------------------------------
create or replace function pgque.force_tick(i_queue_name text)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_queue pgque.queue;
    v_next bigint;
begin
    select * into v_queue from pgque.queue where queue_name = i_queue_name;
    if not found then
        raise exception 'queue not found: %', i_queue_name using errcode = 'PQ001';
    end if;
    if v_queue.queue_ticker_paused then
        raise exception 'queue % is paused (queue_ticker_paused = true)', i_queue_name
            using errcode = 'PQ020';
    end if;
    if v_queue.queue_external_ticker then
        raise exception 'queue % is configured for external ticker; force_tick is meaningless — push ticks via pgque.ticker(queue, tick_id, ts, event_seq)',
            i_queue_name using errcode = 'PQ020';
    end if;

    v_next := nextval(v_queue.queue_event_seq::regclass);
    perform setval(v_queue.queue_event_seq::regclass, v_next + 2 * v_queue.queue_ticker_max_count + 1000);
    return (select max(tick_id) from pgque.tick where tick_queue = v_queue.queue_id);
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.force_next_tick(i_queue_name text) -> bigint
--   The modern name of force_tick; identical behaviour.
-- ---------------------------------------------------------------------------
create or replace function pgque.force_next_tick(i_queue_name text)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.force_tick(i_queue_name);
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.set_tick_period_ms(p_period_ms integer) -> integer
--   Period of the sub-second ticker_loop; an exact divisor of 1000 in
--   1..1000. Takes effect at the next ticker_loop run. Tables: config.
-- ---------------------------------------------------------------------------
create or replace function pgque.set_tick_period_ms(p_period_ms integer)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    if p_period_ms is null or p_period_ms < 1 or p_period_ms > 1000 or 1000 % p_period_ms <> 0 then
        raise exception 'tick_period_ms must be an exact divisor of 1000 between 1 and 1000 (got %)',
            coalesce(p_period_ms::text, 'NULL') using errcode = 'PQ010';
    end if;
    update pgque.config set tick_period_ms = p_period_ms;
    return p_period_ms;
end;
$$;

-- ---------------------------------------------------------------------------
-- PROCEDURE pgque.ticker_loop()
--   Sub-second ticking for a once-a-second scheduler: runs ticker() every
--   tick_period_ms for up to one second, committing after each pass. Must be
--   CALLed outside a transaction block. Invoker rights and no pinned
--   search_path (a committing procedure may not have a SET clause), so every
--   reference is schema-qualified. The sleep gets a transaction of its own:
--   a COMMIT starts the next transaction at once, and ticker() reads now(),
--   which would otherwise be the time before the sleep (ticks decided and
--   stamped one period late).
-- ---------------------------------------------------------------------------
create or replace procedure pgque.ticker_loop()
language plpgsql
as $$
declare
    v_period integer;
    v_iterations integer;
    v_done integer := 0;
    v_started timestamptz := pg_catalog.clock_timestamp();
begin
    select c.tick_period_ms into v_period from pgque.config c;
    if v_period is null or v_period < 1 then
        v_period := 100;
    elsif v_period > 1000 then
        v_period := 1000;
    end if;
    v_iterations := pg_catalog.int4larger(1, 1000 / v_period);

    loop
        perform pgque.ticker();
        commit;
        v_done := v_done + 1;
        exit when v_done >= v_iterations;
        exit when pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - v_started) * 1000
                  + v_period >= 1000;
        perform pg_catalog.pg_sleep(v_period / 1000.0);
        commit;
    end loop;
end;
$$;
