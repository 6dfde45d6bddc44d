-- sa_pgque engine, revision 0001: batches.
--
-- A batch of a subscription is every event whose transaction is visible in
-- the end tick's snapshot and not in the start tick's, minus retried events
-- owned by other subscriptions. The query is built per batch so that it
-- reads only the txid range between the two snapshots (plus the few
-- transactions that were running at the start tick), which keeps its cost
-- proportional to the batch, not to the age of the oldest open transaction.

-- ---------------------------------------------------------------------------
-- pgque.find_tick_helper(i_queue_id, i_prev_tick_id, i_prev_tick_time,
--     i_prev_tick_seq, i_min_count, i_min_interval,
--     OUT next_tick_id, OUT next_tick_time, OUT next_tick_seq) -> record
--   End tick for a batch that should hold at least i_min_count events or span
--   at least i_min_interval. Takes the newest tick if it satisfies a
--   threshold without overshooting any given one by more than 2x; if it
--   overshoots, the oldest tick that satisfies one. NULLs when none does.
--   Tables: tick.
-- ---------------------------------------------------------------------------
create or replace function pgque.find_tick_helper(
    i_queue_id integer, i_prev_tick_id bigint, i_prev_tick_time timestamptz,
    i_prev_tick_seq bigint, i_min_count bigint, i_min_interval interval,
    out next_tick_id bigint, out next_tick_time timestamptz, out next_tick_seq bigint)
returns record
language plpgsql
stable
as $$
declare
    v_newest pgque.tick;
begin
    select * into v_newest from pgque.tick t
     where t.tick_queue = i_queue_id and t.tick_id > i_prev_tick_id
     order by t.tick_id desc
     limit 1;
    if not found
       or not (   (i_min_count is not null and v_newest.tick_event_seq - i_prev_tick_seq >= i_min_count)
               or (i_min_interval is not null and v_newest.tick_time - i_prev_tick_time >= i_min_interval)) then
        return;
    end if;

    if     (i_min_count is null or v_newest.tick_event_seq - i_prev_tick_seq <= 2 * i_min_count)
       and (i_min_interval is null or v_newest.tick_time - i_prev_tick_time <= 2 * i_min_interval) then
        next_tick_id := v_newest.tick_id;
        next_tick_time := v_newest.tick_time;
        next_tick_seq := v_newest.tick_event_seq;
        return;
    end if;

    select t.tick_id, t.tick_time, t.tick_event_seq
      into next_tick_id, next_tick_time, next_tick_seq
      from pgque.tick t
     where t.tick_queue = i_queue_id and t.tick_id > i_prev_tick_id
       and (   (i_min_count is not null and t.tick_event_seq - i_prev_tick_seq >= i_min_count)
            or (i_min_interval is not null and t.tick_time - i_prev_tick_time >= i_min_interval))
     order by t.tick_id
     limit 1;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque._event_tables(i_data_pfx, i_cur_table, i_ntables, i_step1, i_step2,
--                     i_tmin, i_tmax) -> text[]
--   The child tables a batch spanning txids [i_tmin, i_tmax] must read:
--   only the previous child if the batch ended before the last switch, only
--   the current one if it started after the switch was visible to everyone,
--   else both (previous first). Rotation never truncates those two.
-- ---------------------------------------------------------------------------
create or replace function pgque._event_tables(
    i_data_pfx text, i_cur_table integer, i_ntables integer,
    i_step1 bigint, i_step2 bigint, i_tmin bigint, i_tmax bigint)
returns text[]
language sql
immutable
as $$
    select case
        when i_tmax < i_step1
            then array[i_data_pfx || '_' || ((i_cur_table + i_ntables - 1) % i_ntables)]
        when i_step2 is not null and i_tmin > i_step2
            then array[i_data_pfx || '_' || i_cur_table]
        else array[i_data_pfx || '_' || ((i_cur_table + i_ntables - 1) % i_ntables),
                   i_data_pfx || '_' || i_cur_table]
    end
$$;

-- ---------------------------------------------------------------------------
-- pgque._batch_context(x_batch_id bigint) -> record
--   Everything needed to read an open batch: owning subscription, queue
--   storage and rotation state, and the two tick snapshots. No row when the
--   batch is not open. Tables: subscription, queue, tick.
--   Each tick is looked up by its whole key in a subquery of its own: joined
--   twice to the same queue, the planner may probe the second tick by
--   tick_queue alone and filter on tick_id, reading every tick the queue
--   keeps (thousands between rotations) for each batch.
-- ---------------------------------------------------------------------------
create or replace function pgque._batch_context(
    x_batch_id bigint,
    out sub_id integer, out data_pfx text, out cur_table integer, out ntables integer,
    out step1 bigint, out step2 bigint, out snap_start pg_snapshot, out snap_end pg_snapshot)
returns setof record
language sql
stable
as $$
    select b.* from (
        select s.sub_id, q.queue_data_pfx, q.queue_cur_table, q.queue_ntables,
               q.queue_switch_step1, q.queue_switch_step2,
               (select t.tick_snapshot from pgque.tick t
                 where t.tick_queue = s.sub_queue and t.tick_id = s.sub_last_tick) as snap_start,
               (select t.tick_snapshot from pgque.tick t
                 where t.tick_queue = s.sub_queue and t.tick_id = s.sub_next_tick) as snap_end
          from pgque.subscription s
          join pgque.queue q on q.queue_id = s.sub_queue
         where s.sub_batch = x_batch_id) b
     where b.snap_start is not null and b.snap_end is not null
$$;

-- ---------------------------------------------------------------------------
-- pgque.batch_event_tables(x_batch_id bigint) -> setof text
--   The child tables the batch reads (see _event_tables).
--   Error: batch not found.  Calls: _batch_context, _event_tables.
-- ---------------------------------------------------------------------------
create or replace function pgque.batch_event_tables(x_batch_id bigint)
returns setof text
language plpgsql
as $$
declare
    v_batch record;
begin
    select * into v_batch from pgque._batch_context(x_batch_id);
    if not found then
        raise exception 'batch not found' using errcode = 'PQ003';
    end if;
    return query
        select unnest(pgque._event_tables(
            v_batch.data_pfx, v_batch.cur_table, v_batch.ntables, v_batch.step1, v_batch.step2,
            pg_snapshot_xmin(v_batch.snap_start)::text::bigint,
            pg_snapshot_xmax(v_batch.snap_end)::text::bigint));
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.batch_event_sql(x_batch_id bigint) -> text
--   The query returning an open batch's events (ev_id, ev_time, ev_txid,
--   ev_owner, ev_retry, ev_type, ev_data, ev_extra1..4), ordered by ev_id.
--   Per child table: txids in [lo, hi] passing the two-snapshot test, plus
--   an explicit list of transactions that were running at the start tick
--   and finished by the end tick. Running txids within 100 of lo are folded
--   into the range instead of the list. Retried events (ev_owner set) are
--   only for the subscription that owns them.
--   The range [lo, hi) stands for the two-snapshot test by itself when no
--   txid was folded into it and no txid in it was running at the end tick;
--   only otherwise is the test (two pg_visible_in_snapshot calls per row)
--   added, which keeps the per-row cost of a busy queue's batches low.
--   Error: batch not found.  Calls: _batch_context, _event_tables.
-- ---------------------------------------------------------------------------
create or replace function pgque.batch_event_sql(x_batch_id bigint)
returns text
language plpgsql
as $$
declare
    v_batch record;
    v_lo bigint;
    v_hi bigint;
    v_txid bigint;
    v_list bigint[] := '{}';
    v_range_cond text;
    v_list_cond text;
    v_owner_cond text;
    v_table text;
    v_sql text := '';
begin
    select * into v_batch from pgque._batch_context(x_batch_id);
    if not found then
        raise exception 'batch not found' using errcode = 'PQ003';
    end if;

    v_lo := pg_snapshot_xmax(v_batch.snap_start)::text::bigint;
    v_hi := pg_snapshot_xmax(v_batch.snap_end)::text::bigint;
    for v_txid in
        select x::text::bigint
          from pg_snapshot_xip(v_batch.snap_start) x
         where not exists (select 1 from pg_snapshot_xip(v_batch.snap_end) y where y = x)
         order by 1 desc
    loop
        if v_txid >= v_lo - 100 then
            v_lo := v_txid;
        else
            v_list := v_list || v_txid;
        end if;
    end loop;

    v_owner_cond := format('(ev.ev_owner is null or ev.ev_owner = %s)', v_batch.sub_id);
    -- Below xmax(end) a txid is visible at the end tick unless it is in
    -- xip(end); from xmax(start) on it is invisible at the start tick.
    v_range_cond := format('ev.ev_txid >= %L::xid8 and ev.ev_txid < %L::xid8', v_lo, v_hi);
    if exists (select 1 from pg_snapshot_xip(v_batch.snap_end) y where y::text::bigint >= v_lo) then
        v_range_cond := v_range_cond || format(
            ' and pg_catalog.pg_visible_in_snapshot(ev.ev_txid, %L::pg_snapshot)', v_batch.snap_end);
    end if;
    if v_lo < pg_snapshot_xmax(v_batch.snap_start)::text::bigint then
        v_range_cond := v_range_cond || format(
            ' and not pg_catalog.pg_visible_in_snapshot(ev.ev_txid, %L::pg_snapshot)', v_batch.snap_start);
    end if;
    if cardinality(v_list) > 0 then
        v_list_cond := format('ev.ev_txid = any (%L::xid8[])', v_list);
    end if;

    foreach v_table in array pgque._event_tables(
        v_batch.data_pfx, v_batch.cur_table, v_batch.ntables, v_batch.step1, v_batch.step2,
        pg_snapshot_xmin(v_batch.snap_start)::text::bigint, v_hi)
    loop
        if v_sql <> '' then
            v_sql := v_sql || ' union all ';
        end if;
        v_sql := v_sql || format(
            'select ev.ev_id, ev.ev_time, ev.ev_txid, ev.ev_owner, ev.ev_retry, ev.ev_type, ev.ev_data,'
            ' ev.ev_extra1, ev.ev_extra2, ev.ev_extra3, ev.ev_extra4 from %s ev where %s and %s',
            v_table, v_range_cond, v_owner_cond);
        if v_list_cond is not null then
            v_sql := v_sql || format(
                ' union all select ev.ev_id, ev.ev_time, ev.ev_txid, ev.ev_owner, ev.ev_retry, ev.ev_type,'
                ' ev.ev_data, ev.ev_extra1, ev.ev_extra2, ev.ev_extra3, ev.ev_extra4 from %s ev where %s and %s',
                v_table, v_list_cond, v_owner_cond);
        end if;
    end loop;
    return v_sql || ' order by 1';
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque._coop_guard(i_role text, i_sub_id integer, i_queue_id integer,
--                   i_consumer text, i_queue text) -> void
--   The legacy (non-cooperative) batch functions refuse a cooperative main
--   that has members and every cooperative member, pointing the caller to
--   the cooperative API. Tables: subscription.
-- ---------------------------------------------------------------------------
create or replace function pgque._coop_guard(
    i_role text, i_sub_id integer, i_queue_id integer, i_consumer text, i_queue text)
returns void
language plpgsql
stable
as $$
begin
    if i_role = 'coop_main'
       and exists (select 1 from pgque.subscription s
                    where s.sub_queue = i_queue_id and s.sub_id = i_sub_id and s.sub_role = 'coop_member') then
        raise exception 'consumer % on queue % is a cooperative main consumer; use cooperative receive/next_batch with a subconsumer',
            i_consumer, i_queue using errcode = 'PQ030';
    elsif i_role = 'coop_member' then
        raise exception 'consumer % on queue % is a cooperative subconsumer; use receive_coop / next_batch (cooperative form) instead of the legacy 5-arg next_batch_custom',
            i_consumer, i_queue using errcode = 'PQ030';
    end if;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.next_batch_custom(i_queue_name, i_consumer_name, i_min_lag,
--     i_min_count, i_min_interval, OUT batch_id, OUT cur_tick_id,
--     OUT prev_tick_id, OUT cur_tick_time, OUT prev_tick_time,
--     OUT cur_tick_event_seq, OUT prev_tick_event_seq) -> record
--   Open the next batch of a normal subscription, or return the one already
--   open. The end tick is the next tick after the cursor, or the one chosen
--   by find_tick_helper when a minimum size is asked for; i_min_lag refuses
--   an end tick younger than that. All-NULL row when nothing is ready.
--   The subscription row stays locked until the caller's transaction ends,
--   so two sessions of one consumer serialize.
--   Errors: Not subscriber to queue: <q>/<c>; cooperative misuse; PgQ corruption.
--   Calls: _coop_guard, find_tick_helper.  Tables: subscription, tick, queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.next_batch_custom(
    i_queue_name text, i_consumer_name text,
    i_min_lag interval, i_min_count integer, i_min_interval interval,
    out batch_id bigint, out cur_tick_id bigint, out prev_tick_id bigint,
    out cur_tick_time timestamptz, out prev_tick_time timestamptz,
    out cur_tick_event_seq bigint, out prev_tick_event_seq bigint)
returns record
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_sub record;
    v_end record;
begin
    select s.sub_id, s.sub_queue, s.sub_consumer, s.sub_role, s.sub_batch,
           s.sub_last_tick, s.sub_next_tick
      into v_sub
      from pgque.queue q
      join pgque.subscription s on s.sub_queue = q.queue_id
      join pgque.consumer c on c.co_id = s.sub_consumer
     where q.queue_name = i_queue_name and c.co_name = i_consumer_name
       for update of s;
    if not found then
        raise exception 'Not subscriber to queue: %/%',
            coalesce(i_queue_name, 'NULL'), coalesce(i_consumer_name, 'NULL')
            using errcode = 'PQ002';
    end if;
    perform pgque._coop_guard(v_sub.sub_role, v_sub.sub_id, v_sub.sub_queue, i_consumer_name, i_queue_name);

    select t.tick_time, t.tick_event_seq into prev_tick_time, prev_tick_event_seq
      from pgque.tick t where t.tick_queue = v_sub.sub_queue and t.tick_id = v_sub.sub_last_tick;
    if not found then
        raise exception 'PgQ corruption: Consumer % on queue % does not see tick %',
            i_consumer_name, i_queue_name, v_sub.sub_last_tick using errcode = 'PQ040';
    end if;
    prev_tick_id := v_sub.sub_last_tick;

    if v_sub.sub_batch is not null then
        batch_id := v_sub.sub_batch;
        select t.tick_id, t.tick_time, t.tick_event_seq
          into cur_tick_id, cur_tick_time, cur_tick_event_seq
          from pgque.tick t where t.tick_queue = v_sub.sub_queue and t.tick_id = v_sub.sub_next_tick;
        return;
    end if;

    if i_min_count is null and i_min_interval is null then
        select t.tick_id as next_tick_id, t.tick_time as next_tick_time, t.tick_event_seq as next_tick_seq
          into v_end
          from pgque.tick t
         where t.tick_queue = v_sub.sub_queue and t.tick_id > v_sub.sub_last_tick
         order by t.tick_id
         limit 1;
    else
        select * into v_end
          from pgque.find_tick_helper(v_sub.sub_queue, v_sub.sub_last_tick, prev_tick_time,
                                      prev_tick_event_seq, i_min_count, i_min_interval);
    end if;

    if v_end.next_tick_id is null
       or (i_min_lag is not null and v_end.next_tick_time > now() - i_min_lag) then
        prev_tick_id := null;
        prev_tick_time := null;
        prev_tick_event_seq := null;
        return;
    end if;

    batch_id := nextval('pgque.batch_id_seq');
    update pgque.subscription
       set sub_batch = batch_id, sub_next_tick = v_end.next_tick_id, sub_active = now()
     where sub_queue = v_sub.sub_queue and sub_consumer = v_sub.sub_consumer and sub_role = 'normal';
    cur_tick_id := v_end.next_tick_id;
    cur_tick_time := v_end.next_tick_time;
    cur_tick_event_seq := v_end.next_tick_seq;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.next_batch_info(i_queue_name, i_consumer_name, OUT ...) -> record
--   next_batch_custom with no size or lag constraints.
-- ---------------------------------------------------------------------------
create or replace function pgque.next_batch_info(
    i_queue_name text, i_consumer_name text,
    out batch_id bigint, out cur_tick_id bigint, out prev_tick_id bigint,
    out cur_tick_time timestamptz, out prev_tick_time timestamptz,
    out cur_tick_event_seq bigint, out prev_tick_event_seq bigint)
returns record
language plpgsql
as $$
begin
    select * into batch_id, cur_tick_id, prev_tick_id, cur_tick_time, prev_tick_time,
                  cur_tick_event_seq, prev_tick_event_seq
      from pgque.next_batch_custom(i_queue_name, i_consumer_name, null, null, null);
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.next_batch(i_queue_name, i_consumer_name) -> bigint
--   Id of the next (or still open) batch; NULL when none is ready.
-- ---------------------------------------------------------------------------
create or replace function pgque.next_batch(i_queue_name text, i_consumer_name text)
returns bigint
language plpgsql
as $$
begin
    return (pgque.next_batch_custom(i_queue_name, i_consumer_name, null, null, null)).batch_id;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.get_batch_events(x_batch_id bigint, OUT ev_id, OUT ev_time,
--     OUT ev_txid bigint, OUT ev_retry, OUT ev_type, OUT ev_data,
--     OUT ev_extra1..4) -> setof record
--   All events of an open batch in ev_id order. Read-only and repeatable.
--   Runs with the owner's rights so that a pgque_reader can call it.
--   Error: batch not found.  Calls: batch_event_sql.
-- ---------------------------------------------------------------------------
create or replace function pgque.get_batch_events(
    x_batch_id bigint,
    out ev_id bigint, out ev_time timestamptz, out ev_txid bigint, out ev_retry int4,
    out ev_type text, out ev_data text,
    out ev_extra1 text, out ev_extra2 text, out ev_extra3 text, out ev_extra4 text)
returns setof record
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return query execute
        'select b.ev_id, b.ev_time, b.ev_txid::text::bigint, b.ev_retry, b.ev_type, b.ev_data,'
        ' b.ev_extra1, b.ev_extra2, b.ev_extra3, b.ev_extra4 from ('
        || pgque.batch_event_sql(x_batch_id) || ') b order by b.ev_id';
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.get_batch_cursor(i_batch_id, i_cursor_name, i_quick_limit,
--                        i_extra_where) -> setof record
--   Open a no-scroll cursor named i_cursor_name over the batch's events
--   (ev_id order; i_extra_where, trusted SQL, filters them), return the first
--   i_quick_limit rows; the rest can be FETCHed in the same transaction.
--   i_quick_limit <= 0 returns nothing and leaves the cursor open. A NULL
--   batch id, cursor name or limit returns nothing and opens no cursor.
--   Admin only, because i_extra_where is executed verbatim.
--   Calls: batch_event_sql.
-- ---------------------------------------------------------------------------
create or replace function pgque.get_batch_cursor(
    i_batch_id bigint, i_cursor_name text, i_quick_limit integer, i_extra_where text,
    out ev_id bigint, out ev_time timestamptz, out ev_txid bigint, out ev_retry int4,
    out ev_type text, out ev_data text,
    out ev_extra1 text, out ev_extra2 text, out ev_extra3 text, out ev_extra4 text)
returns setof record
language plpgsql
as $$
declare
    v_cursor refcursor;
    v_fetched integer := 0;
begin
    if i_batch_id is null or i_cursor_name is null or i_quick_limit is null then
        return;
    end if;
    v_cursor := i_cursor_name;
    open v_cursor no scroll for execute
        'select b.ev_id, b.ev_time, b.ev_txid::text::bigint, b.ev_retry, b.ev_type, b.ev_data,'
        ' b.ev_extra1, b.ev_extra2, b.ev_extra3, b.ev_extra4 from ('
        || pgque.batch_event_sql(i_batch_id) || ') b'
        || coalesce(' where (' || i_extra_where || ')', '')
        || ' order by b.ev_id';
    while v_fetched < i_quick_limit loop
        fetch v_cursor into ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data,
                            ev_extra1, ev_extra2, ev_extra3, ev_extra4;
        exit when not found;
        v_fetched := v_fetched + 1;
        return next;
    end loop;
end;
$$;

create or replace function pgque.get_batch_cursor(
    i_batch_id bigint, i_cursor_name text, i_quick_limit integer,
    out ev_id bigint, out ev_time timestamptz, out ev_txid bigint, out ev_retry int4,
    out ev_type text, out ev_data text,
    out ev_extra1 text, out ev_extra2 text, out ev_extra3 text, out ev_extra4 text)
returns setof record
language sql
strict
as $$
    select * from pgque.get_batch_cursor(i_batch_id, i_cursor_name, i_quick_limit, null)
$$;

-- ---------------------------------------------------------------------------
-- pgque.finish_batch(x_batch_id bigint) -> integer
--   Close an open batch: a normal subscription's cursor moves to the batch's
--   end tick; a cooperative member is released (the group cursor moved when
--   the batch was allocated). Everything not handed to event_retry/event_dead
--   counts as consumed. Unknown or finished id: warning and 0.
--   Tables: subscription.
-- ---------------------------------------------------------------------------
create or replace function pgque.finish_batch(x_batch_id bigint)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_sub record;
begin
    select s.sub_queue, s.sub_consumer, s.sub_role
      into v_sub
      from pgque.subscription s
     where s.sub_batch = x_batch_id
       for update;
    if not found then
        raise warning 'finish_batch: batch % not found', x_batch_id;
        return 0;
    end if;

    if v_sub.sub_role = 'coop_main' then
        raise exception 'cannot finish cooperative main consumer batch % as normal active consumer', x_batch_id
            using errcode = 'PQ030';
    elsif v_sub.sub_role = 'coop_member' then
        update pgque.subscription
           set sub_last_tick = null, sub_next_tick = null, sub_batch = null, sub_active = now()
         where sub_queue = v_sub.sub_queue and sub_consumer = v_sub.sub_consumer;
    else
        update pgque.subscription
           set sub_last_tick = sub_next_tick, sub_next_tick = null, sub_batch = null, sub_active = now()
         where sub_queue = v_sub.sub_queue and sub_consumer = v_sub.sub_consumer;
    end if;
    return 1;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.get_batch_info(x_batch_id bigint) -> record
--   Always one row: the open batch's queue, owner, tick window, lag and
--   sequence range; every column NULL for an unknown or finished batch.
--   Tables: subscription, queue, consumer, tick.
-- ---------------------------------------------------------------------------
create or replace function pgque.get_batch_info(
    x_batch_id bigint,
    out queue_name text, out consumer_name text,
    out batch_start timestamptz, out batch_end timestamptz,
    out prev_tick_id bigint, out tick_id bigint, out lag interval,
    out seq_start bigint, out seq_end bigint)
returns record
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_sub record;
    v_start pgque.tick;
    v_end pgque.tick;
begin
    -- the ticks by their whole key, one statement each (see _batch_context)
    select q.queue_name, c.co_name, s.sub_queue, s.sub_last_tick, s.sub_next_tick into v_sub
      from pgque.subscription s
      join pgque.queue q on q.queue_id = s.sub_queue
      join pgque.consumer c on c.co_id = s.sub_consumer
     where s.sub_batch = x_batch_id;
    if not found then
        return;
    end if;
    select * into v_start from pgque.tick t where t.tick_queue = v_sub.sub_queue and t.tick_id = v_sub.sub_last_tick;
    select * into v_end from pgque.tick t where t.tick_queue = v_sub.sub_queue and t.tick_id = v_sub.sub_next_tick;
    if v_start.tick_id is null or v_end.tick_id is null then
        return;
    end if;
    queue_name := v_sub.queue_name;
    consumer_name := v_sub.co_name;
    batch_start := v_start.tick_time;
    batch_end := v_end.tick_time;
    prev_tick_id := v_sub.sub_last_tick;
    tick_id := v_sub.sub_next_tick;
    lag := now() - v_end.tick_time;
    seq_start := v_start.tick_event_seq;
    seq_end := v_end.tick_event_seq;
end;
$$;
