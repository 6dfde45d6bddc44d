-- sa_pgque engine, revision 0003: queue configuration shortcuts.
--
-- pause_queue / resume_queue flip queue_ticker_paused. A paused queue still
-- accepts events, but gets no ticks (ticker() skips it, ticker(queue) and
-- force_tick refuse it), so its consumers receive nothing new until it is
-- resumed; the events sent meanwhile then arrive with the next tick.
-- create_queue(queue, options) creates a queue and applies settings in one
-- call. None of these adds an overload at an arity PgQue clients use.

-- ---------------------------------------------------------------------------
-- pgque.pause_queue(i_queue text) -> integer
--   Stop ticking a queue. Returns 1 when it was running, 0 when it was
--   already paused.  Errors: queue not found: <q> (PQ001).  Tables: queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.pause_queue(i_queue text)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    update pgque.queue q set queue_ticker_paused = true
     where q.queue_name = i_queue and not q.queue_ticker_paused;
    if found then
        return 1;
    end if;
    if not exists (select 1 from pgque.queue q where q.queue_name = i_queue) then
        raise exception 'queue not found: %', i_queue using errcode = 'PQ001';
    end if;
    return 0;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.resume_queue(i_queue text) -> integer
--   Tick a paused queue again. Returns 1 when it was paused, 0 when it was
--   already running.  Errors: queue not found: <q> (PQ001).  Tables: queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.resume_queue(i_queue text)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    update pgque.queue q set queue_ticker_paused = false
     where q.queue_name = i_queue and q.queue_ticker_paused;
    if found then
        return 1;
    end if;
    if not exists (select 1 from pgque.queue q where q.queue_name = i_queue) then
        raise exception 'queue not found: %', i_queue using errcode = 'PQ001';
    end if;
    return 0;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.create_queue(i_queue text, i_options jsonb) -> integer
--   create_queue(i_queue), then set_queue_config(i_queue, key, value) for
--   each key of the i_options object, in key order. Options are applied
--   whether the queue was created (returns 1) or already existed (returns
--   0), so a call states the configuration wanted. Values: JSON strings as
--   their text, numbers and booleans as written, null resets the setting
--   to its default. Keys are checked before anything is created.
--   Errors: create_queue: options must be a JSON object, got <type> (PQ010);
--   cannot change parameter "<key>s" (PQ010, as set_queue_config);
--   create_queue's and set_queue_config's errors.
--   Calls: create_queue, set_queue_config.  Tables: queue (+ new ones).
-- ---------------------------------------------------------------------------
create or replace function pgque.create_queue(i_queue text, i_options jsonb)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_options jsonb := coalesce(i_options, '{}');
    v_created integer;
    v_option record;
begin
    if jsonb_typeof(v_options) <> 'object' then
        raise exception 'create_queue: options must be a JSON object, got %', jsonb_typeof(v_options)
            using errcode = 'PQ010';
    end if;
    for v_option in select o.key from jsonb_each(v_options) o order by o.key loop
        if v_option.key not in ('ticker_max_count', 'ticker_max_lag', 'ticker_idle_period', 'rotation_period',
                                'ticker_paused', 'external_ticker', 'max_retries') then
            raise exception 'cannot change parameter "%s"', v_option.key using errcode = 'PQ010';
        end if;
    end loop;

    v_created := pgque.create_queue(i_queue);
    for v_option in select o.key, o.value from jsonb_each(v_options) o order by o.key loop
        perform pgque.set_queue_config(
            i_queue, v_option.key,
            case jsonb_typeof(v_option.value)
                when 'null' then null
                when 'string' then v_option.value #>> '{}'
                else v_option.value::text
            end);
    end loop;
    return v_created;
end;
$$;
