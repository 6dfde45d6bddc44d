-- sa_pgque engine, revision 0003: delayed delivery.
--
-- send_at parks an event in pgque.delay_queue until its delivery time;
-- maint_deliver_delayed appends the due ones to their queues. Like a retried
-- event, a delivered one belongs to the mover's transaction, so the first
-- tick after the mover commits carries it to every subscriber.
--
-- Who moves them: maint_retry_events() calls maint_deliver_delayed() after
-- moving retries (and counts both), so every existing schedule of the retry
-- mover delivers delayed events too without being rescheduled: pg_cron's
-- and pg_timetable's pgque_retry_events job (every 30 s), the Python Ticker
-- (every second by default), and anyone calling maint_retry_events()
-- by hand. Delivery is therefore late by up to that period plus the
-- ticker's lag; schedule maint_deliver_delayed() more often where that is
-- too coarse.

-- ---------------------------------------------------------------------------
-- pgque.send_at(i_queue text, i_type text, i_payload text, i_deliver_at timestamptz) -> bigint
--   Publish one event to be delivered at i_deliver_at. The event id is drawn
--   now and returned; consumers see the event under that id, with ev_time
--   the moment it was delivered. A time not after now() (the transaction's
--   start) appends at once, exactly like send. Disabled queues refuse
--   (unless session_replication_role = replica), as send does.
--   Errors: deliver_at must not be null (PQ010); queue not found: <q>
--   (PQ001); Insert into queue disallowed (PQ020).
--   Calls: insert_event.  Tables: queue, delay_queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.send_at(
    i_queue text, i_type text, i_payload text, i_deliver_at timestamptz)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_queue record;
    v_id bigint;
begin
    if i_deliver_at is null then
        raise exception 'deliver_at must not be null' using errcode = 'PQ010';
    end if;
    if i_deliver_at <= now() then
        return pgque.insert_event(i_queue, i_type, i_payload, null, null, null, null);
    end if;

    select q.queue_id, q.queue_event_seq, q.queue_disable_insert into v_queue
      from pgque.queue q where q.queue_name = i_queue;
    if not found then
        raise exception 'queue not found: %', i_queue using errcode = 'PQ001';
    end if;
    v_id := nextval(v_queue.queue_event_seq::regclass);
    if v_queue.queue_disable_insert and current_setting('session_replication_role') <> 'replica' then
        raise exception 'Insert into queue disallowed' using errcode = 'PQ020';
    end if;

    insert into pgque.delay_queue (ev_deliver_at, ev_queue, ev_id, ev_time, ev_type, ev_data)
    values (i_deliver_at, v_queue.queue_id, v_id, now(), i_type, i_payload);
    return v_id;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.send_at(i_queue, i_type, i_payload jsonb, i_deliver_at) -> bigint
--   The jsonb payload form: stores PostgreSQL's canonical jsonb text.
--   Calls: send_at (text form).
-- ---------------------------------------------------------------------------
create or replace function pgque.send_at(
    i_queue text, i_type text, i_payload jsonb, i_deliver_at timestamptz)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.send_at(i_queue, i_type, i_payload::text, i_deliver_at);
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.maint_deliver_delayed(i_limit integer default 1000) -> integer
--   Append up to i_limit due parked events (ev_deliver_at <= now(), earliest
--   first) to their queues' current tables under their reserved ids, and
--   delete them from delay_queue in the same transaction. Returns how many
--   moved; call again until it returns less than i_limit to drain. Rows are
--   taken FOR UPDATE SKIP LOCKED, so concurrent movers share the work and
--   never deliver one event twice. Events of insert-disabled queues wait
--   (unless session_replication_role = replica).
--   Errors: maint_deliver_delayed: limit must be >= 1, got <n> (PQ010).
--   Calls: insert_event_raw.  Tables: delay_queue, queue, event tables.
-- ---------------------------------------------------------------------------
create or replace function pgque.maint_deliver_delayed(i_limit integer default 1000)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_row record;
    v_moved integer := 0;
    v_replica boolean := current_setting('session_replication_role') = 'replica';
begin
    if i_limit is null or i_limit < 1 then
        raise exception 'maint_deliver_delayed: limit must be >= 1, got %', coalesce(i_limit::text, 'NULL')
            using errcode = 'PQ010';
    end if;
    for v_row in
        select q.queue_name, d.ev_queue, d.ev_id, d.ev_type, d.ev_data,
               d.ev_extra1, d.ev_extra2, d.ev_extra3, d.ev_extra4
          from pgque.delay_queue d
          join pgque.queue q on q.queue_id = d.ev_queue
         where d.ev_deliver_at <= now()
           and (not q.queue_disable_insert or v_replica)
         order by d.ev_deliver_at
         limit i_limit
           for update of d skip locked
    loop
        perform pgque.insert_event_raw(v_row.queue_name, v_row.ev_id, now(), null, null,
                                       v_row.ev_type, v_row.ev_data, v_row.ev_extra1,
                                       v_row.ev_extra2, v_row.ev_extra3, v_row.ev_extra4);
        delete from pgque.delay_queue d where d.ev_queue = v_row.ev_queue and d.ev_id = v_row.ev_id;
        v_moved := v_moved + 1;
    end loop;
    return v_moved;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.maint_retry_events() -> integer
--   Revision 0001's retry mover, now also the delayed-event mover: append
--   up to 10 due retry rows (oldest due first) back to their queues and
--   delete them from the retry queue, then deliver due delayed events
--   (maint_deliver_delayed(), up to 1000). Returns how many events moved in
--   all; call again until 0 to drain. The SHARE UPDATE EXCLUSIVE lock
--   admits one retry mover at a time without blocking new retries. The
--   appended rows belong to this transaction, so a later tick delivers them.
--   Calls: insert_event_raw, maint_deliver_delayed.
--   Tables: retry_queue, delay_queue, queue, event tables.
-- ---------------------------------------------------------------------------
create or replace function pgque.maint_retry_events()
returns integer
language plpgsql
as $$
declare
    v_row record;
    v_moved integer := 0;
begin
    lock table pgque.retry_queue in share update exclusive mode;
    for v_row in
        select q.queue_name, r.ev_owner, r.ev_id, r.ev_time, r.ev_retry, r.ev_type, r.ev_data,
               r.ev_extra1, r.ev_extra2, r.ev_extra3, r.ev_extra4
          from pgque.retry_queue r
          join pgque.queue q on q.queue_id = r.ev_queue
         where r.ev_retry_after <= now()
         order by r.ev_retry_after
         limit 10
    loop
        perform pgque.insert_event_raw(v_row.queue_name, v_row.ev_id, v_row.ev_time, v_row.ev_owner,
                                       v_row.ev_retry, v_row.ev_type, v_row.ev_data, v_row.ev_extra1,
                                       v_row.ev_extra2, v_row.ev_extra3, v_row.ev_extra4);
        delete from pgque.retry_queue where ev_owner = v_row.ev_owner and ev_id = v_row.ev_id;
        v_moved := v_moved + 1;
    end loop;
    return v_moved + pgque.maint_deliver_delayed();
end;
$$;
