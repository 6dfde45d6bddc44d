-- sa_pgque engine, revision 0001: subscriptions and the modern consuming API.
--
-- register/unregister manage a consumer's cursor on a queue; subscribe and
-- unsubscribe are their modern names. receive opens (or re-opens) the next
-- batch and returns its events as pgque.message rows; ack finishes it.

-- ---------------------------------------------------------------------------
-- pgque._consumer_id(i_name text) -> integer
--   Id of the named consumer, created if missing, locked until the end of
--   the transaction (so concurrent registrations of one name serialize).
--   Tables: consumer.
-- ---------------------------------------------------------------------------
create or replace function pgque._consumer_id(i_name text)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_id integer;
begin
    if i_name is null then
        raise exception 'Invalid NULL value' using errcode = 'PQ010';
    end if;
    loop
        select co_id into v_id from pgque.consumer where co_name = i_name for update;
        if found then
            return v_id;
        end if;
        insert into pgque.consumer (co_name) values (i_name)
            on conflict (co_name) do nothing
            returning co_id into v_id;
        if v_id is not null then
            return v_id;
        end if;
    end loop;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque._forget_consumer(i_consumer_id integer) -> void
--   Delete a consumer row once it has no subscription left. Its dead
--   letters go with it (on delete cascade). Tables: subscription, consumer.
-- ---------------------------------------------------------------------------
create or replace function pgque._forget_consumer(i_consumer_id integer)
returns void
language sql
security definer
set search_path = pgque, pg_catalog
as $$
    delete from pgque.consumer c
     where c.co_id = i_consumer_id
       and not exists (select 1 from pgque.subscription s where s.sub_consumer = i_consumer_id)
$$;

-- ---------------------------------------------------------------------------
-- pgque.register_consumer_at(x_queue_name, x_consumer_name, x_tick_pos) -> integer
--   Subscribe a consumer at tick x_tick_pos (NULL: the latest tick). An
--   existing subscription is repositioned when a tick is given (its open
--   batch is dropped) and returns 0; a new one returns 1.
--   Errors: Event queue not created yet; cannot reposition, tick not found;
--   No ticks for this queue.
--   Calls: _consumer_id.  Tables: queue, consumer, subscription, tick.
-- ---------------------------------------------------------------------------
create or replace function pgque.register_consumer_at(
    x_queue_name text, x_consumer_name text, x_tick_pos bigint)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_queue_id integer;
    v_consumer_id integer;
    v_tick bigint := x_tick_pos;
begin
    select queue_id into v_queue_id from pgque.queue where queue_name = x_queue_name;
    if not found then
        raise exception 'Event queue not created yet' using errcode = 'PQ001';
    end if;
    v_consumer_id := pgque._consumer_id(x_consumer_name);

    if v_tick is not null
       and not exists (select 1 from pgque.tick where tick_queue = v_queue_id and tick_id = v_tick) then
        raise exception 'cannot reposition, tick not found: %', v_tick using errcode = 'PQ010';
    end if;

    perform 1 from pgque.subscription
      where sub_queue = v_queue_id and sub_consumer = v_consumer_id
        for update;
    if found then
        if v_tick is not null then
            update pgque.subscription
               set sub_last_tick = v_tick, sub_batch = null, sub_next_tick = null, sub_active = now()
             where sub_queue = v_queue_id and sub_consumer = v_consumer_id;
        end if;
        return 0;
    end if;

    if v_tick is null then
        select max(tick_id) into v_tick from pgque.tick where tick_queue = v_queue_id;
        if v_tick is null then
            raise exception 'No ticks for this queue.  Please run ticker on database.' using errcode = 'PQ040';
        end if;
    end if;
    insert into pgque.subscription (sub_queue, sub_consumer, sub_last_tick, sub_role)
    values (v_queue_id, v_consumer_id, v_tick, 'normal');
    return 1;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.register_consumer(x_queue_name, x_consumer_id) -> integer
--   Subscribe at the latest tick. The second parameter is a consumer *name*
--   (its legacy parameter name is kept for compatibility).
-- ---------------------------------------------------------------------------
create or replace function pgque.register_consumer(x_queue_name text, x_consumer_id text)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.register_consumer_at(x_queue_name, x_consumer_id, null);
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque._lock_group_main(i_main_consumer integer, i_queue integer) -> void
--   Lock a cooperative group's main consumer row, then its subscription row,
--   in that order (the order every cooperative allocation takes them).
--   Tables: consumer, subscription.
-- ---------------------------------------------------------------------------
create or replace function pgque._lock_group_main(i_main_consumer integer, i_queue integer)
returns void
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    perform 1 from pgque.consumer where co_id = i_main_consumer for update;
    perform 1 from pgque.subscription
      where sub_queue = i_queue and sub_consumer = i_main_consumer for update;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.unregister_consumer(x_queue_name, x_consumer_name) -> integer
--   Remove a subscription with its pending retries; drop the consumer row
--   when it was its last subscription (cascading its dead letters). A
--   cooperative member without an open batch is removed alone (the main
--   turns normal again when it was the last member). Returns the number of
--   subscription rows the consumer stood for (1 normally), 0 when not
--   subscribed.
--   Errors: cooperative mains with members and members holding a batch
--   must be handled through the cooperative API.
--   Calls: _forget_consumer.  Tables: subscription, consumer, retry_queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.unregister_consumer(x_queue_name text, x_consumer_name text)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_sub record;
    v_main record;
    v_group_size integer;
begin
    -- Cooperative rows are locked in the order cooperative allocation uses
    -- (the group's main consumer row, its subscription, then the member's),
    -- so unregistering a member never deadlocks with a worker allocating.
    select m.sub_consumer, m.sub_queue into v_main
      from pgque.queue q
      join pgque.subscription s on s.sub_queue = q.queue_id
      join pgque.consumer c on c.co_id = s.sub_consumer
      join pgque.subscription m on m.sub_queue = s.sub_queue and m.sub_id = s.sub_id
                                and m.sub_role = 'coop_main'
     where q.queue_name = x_queue_name and c.co_name = x_consumer_name
       and s.sub_role <> 'normal';
    if found then
        perform pgque._lock_group_main(v_main.sub_consumer, v_main.sub_queue);
    end if;

    select s.sub_id, s.sub_queue, s.sub_consumer, s.sub_role, s.sub_batch
      into v_sub
      from pgque.queue q
      join pgque.subscription s on s.sub_queue = q.queue_id
      join pgque.consumer c on c.co_id = s.sub_consumer
     where q.queue_name = x_queue_name and c.co_name = x_consumer_name
       for update of s, c;
    if not found then
        return 0;
    end if;

    select count(*) into v_group_size
      from pgque.subscription
     where sub_queue = v_sub.sub_queue and sub_id = v_sub.sub_id;

    if v_sub.sub_role = 'coop_member' and v_group_size > 1 then
        if v_sub.sub_batch is not null then
            raise exception 'cannot unregister active cooperative subconsumer without forced batch handling'
                using errcode = 'PQ031';
        end if;
        delete from pgque.subscription
         where sub_queue = v_sub.sub_queue and sub_consumer = v_sub.sub_consumer;
        perform pgque._forget_consumer(v_sub.sub_consumer);
        update pgque.subscription
           set sub_role = 'normal', sub_active = now()
         where sub_queue = v_sub.sub_queue and sub_id = v_sub.sub_id and sub_role = 'coop_main'
           and not exists (select 1 from pgque.subscription m
                            where m.sub_queue = v_sub.sub_queue and m.sub_id = v_sub.sub_id
                              and m.sub_role = 'coop_member');
        return 1;
    end if;

    if v_sub.sub_role = 'coop_main' and v_group_size > 1 then
        raise exception 'cannot unregister cooperative main consumer with registered subconsumers'
            using errcode = 'PQ031';
    end if;
    if exists (select 1 from pgque.subscription
                where sub_queue = v_sub.sub_queue and sub_id = v_sub.sub_id
                  and sub_role = 'coop_member' and sub_batch is not null) then
        raise exception 'cannot unregister cooperative consumer with active subconsumer batches'
            using errcode = 'PQ031';
    end if;

    delete from pgque.retry_queue where ev_owner = v_sub.sub_id and ev_queue = v_sub.sub_queue;
    delete from pgque.subscription where sub_queue = v_sub.sub_queue and sub_id = v_sub.sub_id;
    perform pgque._forget_consumer(v_sub.sub_consumer);
    return v_group_size;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.subscribe(queue, consumer) -> integer
--   register_consumer: 1 when subscribed now, 0 when already subscribed.
-- ---------------------------------------------------------------------------
create or replace function pgque.subscribe(queue text, consumer text)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.register_consumer_at(queue, consumer, null);
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.unsubscribe(queue, consumer) -> integer
--   unregister_consumer: 1 when removed, 0 when there was no subscription.
-- ---------------------------------------------------------------------------
create or replace function pgque.unsubscribe(queue text, consumer text)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.unregister_consumer(queue, consumer);
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque._batch_messages(i_batch_id bigint, i_max_return integer) -> setof pgque.message
--   The first i_max_return events of an open batch (NULL: all of them) as
--   pgque.message rows in ev_id order. If the batch turns out to hold no
--   event at all, it is finished here, so callers never see empty batches.
--   While it reads the batch, work_mem is raised to at least 16MB (and put
--   back afterwards), so that the sort by ev_id and the returned rows of a
--   batch of tens of thousands of events stay in memory instead of going
--   through temporary files.
--   Calls: batch_event_sql, finish_batch.
-- ---------------------------------------------------------------------------
create or replace function pgque._batch_messages(i_batch_id bigint, i_max_return integer)
returns setof pgque.message
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_work_mem text := current_setting('work_mem');
    v_raise boolean := pg_size_bytes(v_work_mem) < 16 * 1024 * 1024;
    v_rows bigint;
begin
    if v_raise then
        perform set_config('work_mem', '16MB', true);
    end if;
    return query execute
        'select b.ev_id, $1, b.ev_type, b.ev_data, b.ev_retry, b.ev_time,'
        ' b.ev_extra1, b.ev_extra2, b.ev_extra3, b.ev_extra4 from ('
        || pgque.batch_event_sql(i_batch_id) || ') b order by b.ev_id limit $2'
        using i_batch_id, i_max_return;
    get diagnostics v_rows = row_count;
    if v_raise then
        perform set_config('work_mem', v_work_mem, true);
    end if;
    if v_rows = 0 then
        perform pgque.finish_batch(i_batch_id);
    end if;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.receive(i_queue, i_consumer, i_max_return default 100) -> setof pgque.message
--   Events of the consumer's next batch (or of the batch still open), in
--   ev_id order, at most i_max_return of them (NULL: no limit). Receiving
--   again before ack returns the same batch from its first event; ack always
--   finishes the whole batch, so ask for at least the batch size.
--   Errors: pgque.receive: max_return must be >= 1; Not subscriber to queue.
--   Does what _batch_messages does (same query, same work_mem floor, empty
--   batch finished) itself instead of selecting from it: going through the
--   nested function copied every row into one more tuplestore.
--   Calls: next_batch_custom, batch_event_sql, finish_batch.
-- ---------------------------------------------------------------------------
create or replace function pgque.receive(i_queue text, i_consumer text, i_max_return integer default 100)
returns setof pgque.message
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_batch_id bigint;
    v_work_mem text;
    v_raise boolean;
    v_rows bigint;
begin
    if i_max_return < 1 then
        raise exception 'pgque.receive: max_return must be >= 1, got %', i_max_return using errcode = 'PQ010';
    end if;
    v_batch_id := (pgque.next_batch_custom(i_queue, i_consumer, null, null, null)).batch_id;
    if v_batch_id is null then
        return;
    end if;

    v_work_mem := current_setting('work_mem');
    v_raise := pg_size_bytes(v_work_mem) < 16 * 1024 * 1024;
    if v_raise then
        perform set_config('work_mem', '16MB', true);
    end if;
    return query execute
        'select b.ev_id, $1, b.ev_type, b.ev_data, b.ev_retry, b.ev_time,'
        ' b.ev_extra1, b.ev_extra2, b.ev_extra3, b.ev_extra4 from ('
        || pgque.batch_event_sql(v_batch_id) || ') b order by b.ev_id limit $2'
        using v_batch_id, i_max_return;
    get diagnostics v_rows = row_count;
    if v_raise then
        perform set_config('work_mem', v_work_mem, true);
    end if;
    if v_rows = 0 then
        perform pgque.finish_batch(v_batch_id);
    end if;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.ack(i_batch_id bigint) -> integer
--   finish_batch: 1 when the batch was open and is now finished, else 0
--   with a warning (never an error).
-- ---------------------------------------------------------------------------
create or replace function pgque.ack(i_batch_id bigint)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.finish_batch(i_batch_id);
end;
$$;
