-- sa_pgque engine, revision 0001: retries and nack.
--
-- A retried event is copied into pgque.retry_queue with a due time and the
-- asking subscription as owner; maint_retry_events() appends due rows back to
-- the queue (same ev_id and ev_time, new txid), where only that subscription
-- (or cooperative group) sees them again, with ev_retry counting up. nack
-- decides between a retry and the dead-letter queue.

-- ---------------------------------------------------------------------------
-- pgque._batch_event(i_batch_id bigint, i_ev_id bigint) -> pgque.event_template
--   One event of an open batch, as stored; all fields NULL when the batch
--   does not contain it. Calls: batch_event_sql.
-- ---------------------------------------------------------------------------
create or replace function pgque._batch_event(i_batch_id bigint, i_ev_id bigint)
returns pgque.event_template
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_event pgque.event_template;
begin
    execute 'select * from (' || pgque.batch_event_sql(i_batch_id) || ') b where b.ev_id = $1'
        into v_event using i_ev_id;
    return v_event;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque._park_retry(i_queue_id, i_owner, i_retry_after, i_event) -> integer
--   Put one event into the retry queue for subscription i_owner, its retry
--   count raised by one. 1 when parked, 0 when it was already waiting.
--   Tables: retry_queue.
-- ---------------------------------------------------------------------------
create or replace function pgque._park_retry(
    i_queue_id integer, i_owner integer, i_retry_after timestamptz, i_event pgque.event_template)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_parked integer;
begin
    insert into pgque.retry_queue (ev_retry_after, ev_queue, ev_id, ev_time, ev_txid, ev_owner, ev_retry,
                                   ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
    values (i_retry_after, i_queue_id, i_event.ev_id, i_event.ev_time, null, i_owner,
            coalesce(i_event.ev_retry, 0) + 1, i_event.ev_type, i_event.ev_data,
            i_event.ev_extra1, i_event.ev_extra2, i_event.ev_extra3, i_event.ev_extra4)
    on conflict (ev_owner, ev_id) do nothing;
    get diagnostics v_parked = row_count;
    return v_parked;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.event_retry(x_batch_id, x_event_id, x_retry_time timestamptz) -> integer
--   Schedule one event of an open batch for redelivery at x_retry_time. The
--   batch stays open. 1 when scheduled, 0 when it already was.
--   Errors: batch not found: <id>; event not found.
--   Calls: _batch_event, _park_retry.  Tables: subscription, retry_queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.event_retry(x_batch_id bigint, x_event_id bigint, x_retry_time timestamptz)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_sub record;
    v_event pgque.event_template;
begin
    select sub_id, sub_queue into v_sub from pgque.subscription where sub_batch = x_batch_id;
    if not found then
        raise exception 'batch not found: %', x_batch_id using errcode = 'PQ003';
    end if;
    v_event := pgque._batch_event(x_batch_id, x_event_id);
    if v_event.ev_id is null then
        raise exception 'event not found' using errcode = 'PQ003';
    end if;
    return pgque._park_retry(v_sub.sub_queue, v_sub.sub_id, x_retry_time, v_event);
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.event_retry(x_batch_id, x_event_id, x_retry_seconds integer) -> integer
--   event_retry due x_retry_seconds from now.
-- ---------------------------------------------------------------------------
create or replace function pgque.event_retry(x_batch_id bigint, x_event_id bigint, x_retry_seconds integer)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.event_retry(x_batch_id, x_event_id, now() + make_interval(secs => x_retry_seconds));
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.batch_retry(i_batch_id, i_retry_seconds) -> integer
--   Schedule every event of an open batch that is not already waiting for a
--   retry. Returns how many were scheduled; the batch stays open.
--   Error: batch_retry: batch <id> not found.
--   Calls: batch_event_sql.  Tables: subscription, retry_queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.batch_retry(i_batch_id bigint, i_retry_seconds integer)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_sub record;
    v_parked integer;
begin
    select sub_id, sub_queue into v_sub from pgque.subscription where sub_batch = i_batch_id;
    if not found then
        raise exception 'batch_retry: batch % not found', i_batch_id using errcode = 'PQ003';
    end if;
    execute
        'insert into pgque.retry_queue (ev_retry_after, ev_queue, ev_id, ev_time, ev_txid, ev_owner, ev_retry,'
        ' ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)'
        ' select $1, $2, b.ev_id, b.ev_time, null, $3, coalesce(b.ev_retry, 0) + 1,'
        ' b.ev_type, b.ev_data, b.ev_extra1, b.ev_extra2, b.ev_extra3, b.ev_extra4 from ('
        || pgque.batch_event_sql(i_batch_id) || ') b on conflict (ev_owner, ev_id) do nothing'
        using now() + make_interval(secs => i_retry_seconds), v_sub.sub_queue, v_sub.sub_id;
    get diagnostics v_parked = row_count;
    return v_parked;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.event_retry_raw(x_queue, x_consumer, x_retry_after, x_ev_id, x_ev_time,
--     x_ev_retry, x_ev_type, x_ev_data, x_ev_extra1..4) -> bigint
--   Put an arbitrary event into the retry queue of a (queue, consumer)
--   subscription. A NULL x_ev_id draws a new id. Returns the id.
--   Error: consumer not registered.  Tables: subscription, retry_queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.event_retry_raw(
    x_queue text, x_consumer text, x_retry_after timestamptz, x_ev_id bigint, x_ev_time timestamptz,
    x_ev_retry integer, x_ev_type text, x_ev_data text,
    x_ev_extra1 text, x_ev_extra2 text, x_ev_extra3 text, x_ev_extra4 text)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_sub record;
    v_id bigint := x_ev_id;
begin
    select s.sub_id, q.queue_id, q.queue_event_seq into v_sub
      from pgque.queue q
      join pgque.subscription s on s.sub_queue = q.queue_id
      join pgque.consumer c on c.co_id = s.sub_consumer
     where q.queue_name = x_queue and c.co_name = x_consumer;
    if not found then
        raise exception 'consumer not registered' using errcode = 'PQ002';
    end if;
    if v_id is null then
        v_id := nextval(v_sub.queue_event_seq::regclass);
    end if;
    insert into pgque.retry_queue (ev_retry_after, ev_queue, ev_id, ev_time, ev_txid, ev_owner, ev_retry,
                                   ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
    values (x_retry_after, v_sub.queue_id, v_id, x_ev_time, null, v_sub.sub_id, x_ev_retry,
            x_ev_type, x_ev_data, x_ev_extra1, x_ev_extra2, x_ev_extra3, x_ev_extra4);
    return v_id;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.maint_retry_events() -> integer
--   Append up to 10 due retry rows (oldest due first) back to their queues
--   and delete them from the retry queue. Returns how many moved; call again
--   until 0 to drain. The SHARE UPDATE EXCLUSIVE lock admits one mover at a
--   time without blocking new retries. The appended rows belong to this
--   transaction, so a later tick delivers them.
--   Calls: insert_event_raw.  Tables: retry_queue, queue, event tables.
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
    return v_moved;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.nack(i_batch_id, i_msg pgque.message, i_retry_after default 60 s,
--            i_reason default NULL) -> integer
--   Negative acknowledgement of one event of an open batch; only
--   i_msg.msg_id is used, the event itself is re-read from the batch. An
--   event that has used up the queue's retry budget (max_retries, default 5)
--   goes to the dead-letter queue with i_reason (default 'max retries
--   exceeded'); otherwise it is scheduled for a retry after i_retry_after
--   (rounded to whole seconds). Repeats are no-ops. The batch stays open:
--   ack it afterwards. Returns 1.
--   Errors: batch not found: <id>; msg_id <id> not found in batch <b>.
--   Calls: _batch_event, event_dead, _park_retry.
-- ---------------------------------------------------------------------------
create or replace function pgque.nack(
    i_batch_id bigint, i_msg pgque.message,
    i_retry_after interval default '60 seconds', i_reason text default null)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_sub record;
    v_event pgque.event_template;
begin
    select s.sub_id, s.sub_queue, coalesce(q.queue_max_retries, 5) as max_retries
      into v_sub
      from pgque.subscription s
      join pgque.queue q on q.queue_id = s.sub_queue
     where s.sub_batch = i_batch_id;
    if not found then
        raise exception 'batch not found: %', i_batch_id using errcode = 'PQ003';
    end if;

    v_event := pgque._batch_event(i_batch_id, (i_msg).msg_id);
    if v_event.ev_id is null then
        raise exception 'msg_id % not found in batch %', (i_msg).msg_id, i_batch_id using errcode = 'PQ003';
    end if;

    if coalesce(v_event.ev_retry, 0) >= v_sub.max_retries then
        perform pgque.event_dead(i_batch_id, v_event.ev_id, coalesce(i_reason, 'max retries exceeded'),
                                 v_event.ev_time, v_event.ev_txid, v_event.ev_retry, v_event.ev_type,
                                 v_event.ev_data, v_event.ev_extra1, v_event.ev_extra2,
                                 v_event.ev_extra3, v_event.ev_extra4);
    else
        perform pgque._park_retry(
            v_sub.sub_queue, v_sub.sub_id,
            now() + make_interval(secs => round(extract(epoch from i_retry_after))),
            v_event);
    end if;
    return 1;
end;
$$;
