-- sa_pgque engine, revision 0001: creating, configuring and dropping queues.
--
-- A queue's storage is named after its numeric id, never after its name, so
-- any name up to 57 bytes is valid (quotes, semicolons, spaces, mixed case).
-- The 57-byte cap keeps the NOTIFY channel 'pgque_<name>' within 63 bytes.

-- ---------------------------------------------------------------------------
-- pgque.create_queue(i_queue_name text) -> integer
--   Create a queue: its row, event-id and tick sequences, the parent event
--   table with three rotating children (ev_id default, txid index, no
--   autovacuum), the grants, and tick 1 (which also NOTIFYs).
--   Returns 1 when created, 0 when the queue already exists.
--   Concurrent calls for one name are serialized, so both return cleanly.
--   Regenerates insert_event (its static INSERTs cover every queue); the
--   advisory lock that guards that regeneration is taken first and held to
--   the end of the transaction, so creating and dropping queues are
--   serialized database-wide.
--   Calls: grant_perms, tune_storage, ticker, _build_insert_event.
--   Tables: queue (+ new ones).
-- ---------------------------------------------------------------------------
create or replace function pgque.create_queue(i_queue_name text)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_queue_id integer;
    v_prefix text;
    v_child text;
    v_part integer;
begin
    if i_queue_name is null then
        raise exception 'Invalid NULL value' using errcode = 'PQ010';
    end if;
    if octet_length(i_queue_name) > 57 then
        raise exception 'queue name too long: % bytes (max 57). pg_notify channel ''pgque_<queue_name>'' must fit in 63 bytes.',
            octet_length(i_queue_name)
            using errcode = 'PQ010';
    end if;

    perform pg_advisory_xact_lock(hashtext('pgque._build_insert_event'));
    perform pg_advisory_xact_lock(hashtext('pgque.create_queue'), hashtext(i_queue_name));
    if exists (select 1 from pgque.queue where queue_name = i_queue_name) then
        return 0;
    end if;

    v_queue_id := nextval('pgque.queue_queue_id_seq');
    v_prefix := 'event_' || v_queue_id;
    insert into pgque.queue (queue_id, queue_name, queue_data_pfx, queue_event_seq, queue_tick_seq)
    values (v_queue_id, i_queue_name, 'pgque.' || v_prefix,
            'pgque.' || v_prefix || '_id_seq', 'pgque.' || v_prefix || '_tick_seq');

    execute format('create sequence pgque.%I as bigint', v_prefix || '_id_seq');
    execute format('create sequence pgque.%I as bigint', v_prefix || '_tick_seq');
    execute format('create table pgque.%I () inherits (pgque.event_template)', v_prefix);
    for v_part in 0 .. 2 loop
        v_child := v_prefix || '_' || v_part;
        execute format('create table pgque.%I () inherits (pgque.%I)', v_child, v_prefix);
        execute format('alter table pgque.%I alter column ev_id set default nextval(%L)',
                       v_child, 'pgque.' || v_prefix || '_id_seq');
        execute format('create index %I on pgque.%I (ev_txid)', v_child || '_txid_idx', v_child);
    end loop;

    perform pgque.grant_perms(i_queue_name);
    perform pgque.tune_storage(i_queue_name);
    perform pgque.ticker(i_queue_name);
    perform pgque._build_insert_event(v_queue_id);
    return 1;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.drop_queue(x_queue_name text, x_force boolean) -> integer
--   Drop a queue with its event tables, sequences, ticks and dead letters.
--   Without force, subscribers make it fail; with force they are
--   unregistered first (a cooperative group with members still fails: the
--   members must be removed first). Returns 1. Regenerates insert_event
--   without the queue, under the same advisory lock as create_queue (taken
--   first, held to the end of the transaction).
--   Calls: get_consumer_info, unregister_consumer, _build_insert_event.
--   Tables: queue, subscription, tick, dead_letter (cascade), event tables.
-- ---------------------------------------------------------------------------
create or replace function pgque.drop_queue(x_queue_name text, x_force boolean)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_queue pgque.queue;
    v_consumer text;
    v_part integer;
begin
    perform pg_advisory_xact_lock(hashtext('pgque._build_insert_event'));
    select * into v_queue from pgque.queue where queue_name = x_queue_name for update;
    if not found then
        raise exception 'No such event queue' using errcode = 'PQ001';
    end if;

    if x_force then
        for v_consumer in
            select consumer_name from pgque.get_consumer_info(x_queue_name) order by consumer_name
        loop
            perform pgque.unregister_consumer(x_queue_name, v_consumer);
        end loop;
    elsif exists (select 1 from pgque.subscription where sub_queue = v_queue.queue_id) then
        raise exception 'cannot drop queue, consumers still attached' using errcode = 'PQ020';
    end if;

    for v_part in 0 .. v_queue.queue_ntables - 1 loop
        execute format('drop table %s_%s', v_queue.queue_data_pfx, v_part);
    end loop;
    execute format('drop table %s', v_queue.queue_data_pfx);
    delete from pgque.tick where tick_queue = v_queue.queue_id;
    execute format('drop sequence %s', v_queue.queue_event_seq);
    execute format('drop sequence %s', v_queue.queue_tick_seq);
    delete from pgque.queue where queue_id = v_queue.queue_id;
    perform pgque._build_insert_event(v_queue.queue_id);
    return 1;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.drop_queue(x_queue_name text) -> integer
--   drop_queue(name, false). STRICT: a NULL name returns NULL.
-- ---------------------------------------------------------------------------
create or replace function pgque.drop_queue(x_queue_name text)
returns integer
language plpgsql
strict
as $$
begin
    return pgque.drop_queue(x_queue_name, false);
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.set_queue_config(x_queue_name, x_param_name, x_param_value) -> integer
--   Set one queue parameter; x_param_name is the column name without its
--   'queue_' prefix. A NULL value resets the column to its default. Values
--   are range-checked; unparsable ones raise PostgreSQL's own cast errors.
--   Takes effect at the next ticker call. Returns 1.  Tables: queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.set_queue_config(
    x_queue_name text, x_param_name text, x_param_value text)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_queue_id integer;
    v_type text;
begin
    if x_queue_name is null or x_param_name is null then
        raise exception 'Invalid NULL value' using errcode = 'PQ010';
    end if;
    select queue_id into v_queue_id from pgque.queue where queue_name = x_queue_name;
    if not found then
        raise exception 'No such event queue' using errcode = 'PQ001';
    end if;

    v_type := case x_param_name
        when 'ticker_max_count'   then 'integer'
        when 'max_retries'        then 'integer'
        when 'ticker_max_lag'     then 'interval'
        when 'ticker_idle_period' then 'interval'
        when 'rotation_period'    then 'interval'
        when 'ticker_paused'      then 'boolean'
        when 'external_ticker'    then 'boolean'
    end;
    if v_type is null then
        raise exception 'cannot change parameter "%s"', x_param_name using errcode = 'PQ010';
    end if;

    if x_param_value is null then
        execute format('update pgque.queue set %I = default where queue_id = $1', 'queue_' || x_param_name)
            using v_queue_id;
        return 1;
    end if;

    if x_param_name = 'ticker_max_count' and x_param_value::bigint <= 0 then
        raise exception 'set_queue_config: ticker_max_count must be > 0, got %', x_param_value::bigint
            using errcode = 'PQ010';
    elsif x_param_name = 'max_retries' and x_param_value::bigint < 0 then
        raise exception 'set_queue_config: max_retries must be >= 0, got %', x_param_value::bigint
            using errcode = 'PQ010';
    elsif v_type = 'interval' and x_param_value::interval <= interval '0' then
        raise exception 'set_queue_config: % must be > 0, got %', x_param_name, x_param_value::interval
            using errcode = 'PQ010';
    end if;

    execute format('update pgque.queue set %I = $1::%s where queue_id = $2', 'queue_' || x_param_name, v_type)
        using x_param_value, v_queue_id;
    return 1;
end;
$$;
