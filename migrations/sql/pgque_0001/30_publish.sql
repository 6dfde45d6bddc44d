-- sa_pgque engine, revision 0001: appending events.
--
-- Every event is appended to the queue's current child table with the
-- inserting transaction's id; nothing is ever updated or deleted in place.
-- send/send_batch are the modern wrappers over insert_event/insert_event_bulk.

-- ---------------------------------------------------------------------------
-- pgque.insert_event_raw(queue_name, ev_id, ev_time, ev_owner, ev_retry,
--                        ev_type, ev_data, ev_extra1..4) -> bigint
--   Low-level append into the current child. A NULL ev_id takes the next
--   sequence value; the sequence advances even when an id is supplied (retry
--   re-inserts rely on keeping their id). Disabled queues refuse inserts
--   unless session_replication_role = replica. Returns the event id.
--   Tables: queue (read), current event child (insert).
-- ---------------------------------------------------------------------------
create or replace function pgque.insert_event_raw(
    queue_name text, ev_id bigint, ev_time timestamptz, ev_owner integer, ev_retry integer,
    ev_type text, ev_data text, ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text)
returns bigint
language plpgsql
as $$
declare
    v_queue record;
    v_id bigint;
begin
    select q.queue_data_pfx, q.queue_cur_table, q.queue_event_seq, q.queue_disable_insert
      into v_queue
      from pgque.queue q
     where q.queue_name = insert_event_raw.queue_name;
    if not found then
        raise exception 'queue not found: %', insert_event_raw.queue_name using errcode = 'PQ001';
    end if;

    v_id := pg_catalog.nextval(v_queue.queue_event_seq::regclass);
    if insert_event_raw.ev_id is not null then
        v_id := insert_event_raw.ev_id;
    end if;
    if v_queue.queue_disable_insert
       and pg_catalog.current_setting('session_replication_role') <> 'replica' then
        raise exception 'Insert into queue disallowed' using errcode = 'PQ020';
    end if;

    execute format('insert into %s_%s (ev_id, ev_time, ev_owner, ev_retry, ev_type, ev_data, '
                   'ev_extra1, ev_extra2, ev_extra3, ev_extra4) '
                   'values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
                   v_queue.queue_data_pfx, v_queue.queue_cur_table)
        using v_id, insert_event_raw.ev_time, insert_event_raw.ev_owner, insert_event_raw.ev_retry,
              insert_event_raw.ev_type, insert_event_raw.ev_data, insert_event_raw.ev_extra1,
              insert_event_raw.ev_extra2, insert_event_raw.ev_extra3, insert_event_raw.ev_extra4;
    return v_id;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.insert_event(queue_name, ev_type, ev_data, ev_extra1..4) -> bigint
--   The single-event primitive: append one event stamped with now() and the
--   current transaction id. Returns the event id.
--   Errors: queue not found: <q>; Insert into queue disallowed.
--   Calls: insert_event_raw.
-- ---------------------------------------------------------------------------
create or replace function pgque.insert_event(
    queue_name text, ev_type text, ev_data text,
    ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event_raw(queue_name, null, now(), null, null,
                                  ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4);
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.insert_event(queue_name, ev_type, ev_data) -> bigint
--   insert_event with the four extra fields NULL.
-- ---------------------------------------------------------------------------
create or replace function pgque.insert_event(queue_name text, ev_type text, ev_data text)
returns bigint
language plpgsql
as $$
begin
    return pgque.insert_event(queue_name, ev_type, ev_data, null, null, null, null);
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.insert_event_bulk(queue_name, ev_type, ev_data_list text[]) -> bigint[]
--   Append one event per array element in a single set-based INSERT. Ids
--   are drawn in array order and returned aligned with the input; all rows
--   share one ev_time. A NULL element gives an event with NULL ev_data.
--   An empty array returns '{}' without looking at the queue.
--   The sequence name is resolved to a regclass once per call, not once
--   per id (resolving it per row cost about 20% of the whole call).
--   Tables: queue (read), current event child (insert).
-- ---------------------------------------------------------------------------
create or replace function pgque.insert_event_bulk(queue_name text, ev_type text, ev_data_list text[])
returns bigint[]
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_queue record;
    v_seq regclass;
    v_ids bigint[];
begin
    if ev_data_list is null then
        raise exception 'payloads must not be null' using errcode = 'PQ010';
    end if;
    if cardinality(ev_data_list) = 0 then
        return '{}'::bigint[];
    end if;

    select q.queue_data_pfx, q.queue_cur_table, q.queue_event_seq, q.queue_disable_insert
      into v_queue
      from pgque.queue q
     where q.queue_name = insert_event_bulk.queue_name;
    if not found then
        raise exception 'queue not found: %', insert_event_bulk.queue_name using errcode = 'PQ001';
    end if;
    if v_queue.queue_disable_insert and current_setting('session_replication_role') <> 'replica' then
        raise exception 'Insert into queue disallowed' using errcode = 'PQ020';
    end if;

    v_seq := v_queue.queue_event_seq::regclass;
    v_ids := array(select nextval(v_seq) from generate_series(1, cardinality(ev_data_list)));
    execute format('insert into %s_%s (ev_id, ev_time, ev_type, ev_data) '
                   'select e.id, now(), $1, e.data from unnest($2, $3) as e(id, data)',
                   v_queue.queue_data_pfx, v_queue.queue_cur_table)
        using ev_type, v_ids, ev_data_list;
    return v_ids;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.current_event_table(x_queue_name text) -> text
--   Name of the child table receiving inserts right now, e.g.
--   pgque.event_7_1 (valid for the current transaction only).
-- ---------------------------------------------------------------------------
create or replace function pgque.current_event_table(x_queue_name text)
returns text
language plpgsql
as $$
declare
    v_queue record;
begin
    select q.queue_data_pfx, q.queue_cur_table, q.queue_disable_insert
      into v_queue
      from pgque.queue q
     where q.queue_name = x_queue_name;
    if not found then
        raise exception 'Event queue not found' using errcode = 'PQ001';
    end if;
    if v_queue.queue_disable_insert
       and pg_catalog.current_setting('session_replication_role') <> 'replica' then
        raise exception 'Writing to queue disabled' using errcode = 'PQ020';
    end if;
    return v_queue.queue_data_pfx || '_' || v_queue.queue_cur_table;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.send(queue_name, [type_name,] payload text|jsonb) -> bigint
--   Publish one event. text payloads are stored byte for byte; jsonb ones as
--   PostgreSQL's canonical jsonb text. Without type_name the type is
--   'default'. Calls: insert_event.
-- ---------------------------------------------------------------------------
create or replace function pgque.send(queue_name text, type_name text, payload text)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event(queue_name, type_name, payload, null, null, null, null);
end;
$$;

create or replace function pgque.send(queue_name text, type_name text, payload jsonb)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event(queue_name, type_name, payload::text, null, null, null, null);
end;
$$;

create or replace function pgque.send(queue_name text, payload text)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event(queue_name, 'default', payload, null, null, null, null);
end;
$$;

create or replace function pgque.send(queue_name text, payload jsonb)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event(queue_name, 'default', payload::text, null, null, null, null);
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.send_batch(queue_name, [type_name,] payloads text[]|jsonb[]) -> bigint[]
--   Publish many events in one statement; returns their ids in input order.
--   NULL array: payloads must not be null. Empty array: '{}' (the queue is
--   not looked at). Calls: insert_event_bulk.
-- ---------------------------------------------------------------------------
create or replace function pgque.send_batch(queue_name text, type_name text, payloads text[])
returns bigint[]
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event_bulk(queue_name, type_name, payloads);
end;
$$;

create or replace function pgque.send_batch(queue_name text, type_name text, payloads jsonb[])
returns bigint[]
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event_bulk(queue_name, type_name, payloads::text[]);
end;
$$;

create or replace function pgque.send_batch(queue_name text, payloads text[])
returns bigint[]
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event_bulk(queue_name, 'default', payloads);
end;
$$;

create or replace function pgque.send_batch(queue_name text, payloads jsonb[])
returns bigint[]
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event_bulk(queue_name, 'default', payloads::text[]);
end;
$$;
