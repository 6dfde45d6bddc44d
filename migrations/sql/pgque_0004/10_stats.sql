-- sa_pgque engine, revision 0004: queue and consumer statistics.
--
-- get_queue_info / get_consumer_info (spec 6.6) answer from sequence
-- arithmetic: cheap, but inflated by forced ticks and retries, and blind to
-- events that no tick covers yet. The functions here count the events
-- themselves, so their figures are exact for what this transaction can see
-- (committed events; uncommitted ones are not counted). The counting reads
-- the event tables through their ev_txid index, from the xmin of the
-- snapshot that bounds the count, so it costs in proportion to the backlog
-- (plus the events of transactions that were open at that snapshot), not
-- to the size of the tables. Everything else comes from the bookkeeping
-- tables.
--
-- Definitions (for one queue):
--   * an event is "finished" by a subscription when its transaction is
--     visible in the snapshot of the subscription's cursor tick
--     (sub_last_tick): every batch up to the cursor has been acked;
--   * depth: committed events not yet finished by the slowest subscription,
--     i.e. not visible in the snapshot of the smallest non-NULL cursor tick
--     (idle cooperative members have no cursor; a member holding a batch
--     has its batch's start tick there, as in rotation). That covers events
--     in ticked windows not yet acked and events that no tick covers yet.
--     Without subscriptions the bound is the latest tick, where a new
--     subscriber would start: depth is then the events waiting for a tick.
--     Retried events re-appended to the queue count again (they are rows
--     to deliver again); retry_pending counts those still parked.
--   * unticked_events: committed events not visible in the latest tick's
--     snapshot (the next tick will carry them);
--   * oldest_pending_age: now() minus the smallest ev_time among the depth
--     events (a retried event keeps its first ev_time; NULL when depth = 0);
--   * a consumer's pending_events: like depth, for its own cursor, counting
--     only the events it may receive (ev_owner NULL or its sub_id).

-- ---------------------------------------------------------------------------
-- pgque.queue_stats(i_queue text default null) -> table(...)
--   One row per queue (NULL: every queue), by name:
--   queue_name; depth, oldest_pending_age, unticked_events (see above);
--   ev_per_sec (as get_queue_info: recent sequence growth per second);
--   ticker_lag (now() minus the latest tick's time) and last_tick_id;
--   consumers (subscriptions that are not cooperative members);
--   retry_pending (rows parked in retry_queue), dead_letters,
--   delayed_pending (rows parked in delay_queue) and delayed_due (those
--   whose delivery time has passed); rotation_age (now() minus the last
--   table switch); ticker_paused. Unknown queue: no rows.
--   Calls: get_queue_info.  Tables: queue, tick, subscription, retry_queue,
--   dead_letter, delay_queue, event tables.
-- ---------------------------------------------------------------------------
create or replace function pgque.queue_stats(i_queue text default null)
returns table (
    queue_name text, depth bigint, oldest_pending_age interval, unticked_events bigint,
    ev_per_sec float8, ticker_lag interval, last_tick_id bigint, consumers integer,
    retry_pending bigint, dead_letters bigint, delayed_pending bigint, delayed_due bigint,
    rotation_age interval, ticker_paused boolean)
language plpgsql
stable
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_queue pgque.queue;
    v_latest pgque.tick;
    v_min_tick bigint;
    v_bound pg_snapshot;
    v_oldest timestamptz;
begin
    for v_queue in
        select * from pgque.queue q where i_queue is null or q.queue_name = i_queue order by q.queue_name
    loop
        queue_name := v_queue.queue_name;
        v_latest := null;
        select * into v_latest from pgque.tick t
         where t.tick_queue = v_queue.queue_id order by t.tick_id desc limit 1;
        select min(s.sub_last_tick) into v_min_tick from pgque.subscription s where s.sub_queue = v_queue.queue_id;
        v_bound := null;
        if v_min_tick is not null then
            select t.tick_snapshot into v_bound from pgque.tick t
             where t.tick_queue = v_queue.queue_id and t.tick_id = v_min_tick;
        end if;
        v_bound := coalesce(v_bound, v_latest.tick_snapshot);

        if v_bound is null then
            execute format('select count(*), min(e.ev_time), count(*) from %s e', v_queue.queue_data_pfx)
               into depth, v_oldest, unticked_events;
        else
            execute format('select count(*), min(e.ev_time),'
                           ' count(*) filter (where not pg_catalog.pg_visible_in_snapshot(e.ev_txid, $3))'
                           ' from %s e where e.ev_txid >= $1 and not pg_catalog.pg_visible_in_snapshot(e.ev_txid, $2)',
                           v_queue.queue_data_pfx)
               into depth, v_oldest, unticked_events
              using pg_snapshot_xmin(v_bound), v_bound, v_latest.tick_snapshot;
        end if;
        oldest_pending_age := now() - v_oldest;

        select i.ev_per_sec into ev_per_sec from pgque.get_queue_info(v_queue.queue_name) i;
        ticker_lag := now() - v_latest.tick_time;
        last_tick_id := v_latest.tick_id;
        select count(*) into consumers from pgque.subscription s
         where s.sub_queue = v_queue.queue_id and s.sub_role <> 'coop_member';
        select count(*) into retry_pending from pgque.retry_queue r where r.ev_queue = v_queue.queue_id;
        select count(*) into dead_letters from pgque.dead_letter d where d.dl_queue_id = v_queue.queue_id;
        select count(*), count(*) filter (where d.ev_deliver_at <= now())
          into delayed_pending, delayed_due
          from pgque.delay_queue d where d.ev_queue = v_queue.queue_id;
        rotation_age := now() - v_queue.queue_switch_time;
        ticker_paused := v_queue.queue_ticker_paused;
        return next;
    end loop;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.consumer_stats(i_queue text default null, i_consumer text default null) -> table(...)
--   One row per subscription row (cooperative mains and members included;
--   NULL arguments match everything), by queue then consumer name:
--   queue_name, consumer_name, consumer_role (sub_role); last_tick (the
--   cursor); lag (now() minus the cursor tick's time); last_seen (now()
--   minus sub_active); pending_events (see above); batch_id (the open
--   batch) and batch_age (now() minus sub_active while a batch is open:
--   since the batch was opened, or since the member's last heartbeat).
--   lag and pending_events are NULL without a cursor (idle members).
--   Tables: subscription, queue, consumer, tick, event tables.
-- ---------------------------------------------------------------------------
create or replace function pgque.consumer_stats(i_queue text default null, i_consumer text default null)
returns table (
    queue_name text, consumer_name text, consumer_role text, last_tick bigint, lag interval,
    last_seen interval, pending_events bigint, batch_id bigint, batch_age interval)
language plpgsql
stable
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_sub record;
begin
    for v_sub in
        select q.queue_name as queue, q.queue_data_pfx, c.co_name, s.sub_id, s.sub_role, s.sub_last_tick,
               s.sub_active, s.sub_batch, t.tick_time, t.tick_snapshot
          from pgque.subscription s
          join pgque.queue q on q.queue_id = s.sub_queue
          join pgque.consumer c on c.co_id = s.sub_consumer
          left join pgque.tick t on t.tick_queue = s.sub_queue and t.tick_id = s.sub_last_tick
         where (i_queue is null or q.queue_name = i_queue)
           and (i_consumer is null or c.co_name = i_consumer)
         order by q.queue_name, c.co_name
    loop
        queue_name := v_sub.queue;
        consumer_name := v_sub.co_name;
        consumer_role := v_sub.sub_role;
        last_tick := v_sub.sub_last_tick;
        lag := now() - v_sub.tick_time;
        last_seen := now() - v_sub.sub_active;
        pending_events := null;
        if v_sub.tick_snapshot is not null then
            execute format('select count(*) from %s e where e.ev_txid >= $1'
                           ' and not pg_catalog.pg_visible_in_snapshot(e.ev_txid, $2)'
                           ' and (e.ev_owner is null or e.ev_owner = $3)', v_sub.queue_data_pfx)
               into pending_events
              using pg_snapshot_xmin(v_sub.tick_snapshot), v_sub.tick_snapshot, v_sub.sub_id;
        end if;
        batch_id := v_sub.sub_batch;
        batch_age := case when v_sub.sub_batch is not null then now() - v_sub.sub_active end;
        return next;
    end loop;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.stuck_consumers(i_threshold interval default '5 minutes', i_queue text default null)
--   -> table(queue_name, consumer_name, reason, lag, batch_age, pending_events)
--   Subscriptions that look stuck, by queue then consumer name:
--   reason 'open_batch': a batch open (normal consumer or cooperative
--   member) with batch_age > i_threshold: the holder is slow or gone;
--   reason 'lag': a cursor (normal consumer or cooperative group) behind
--   the queue's latest tick with lag > i_threshold: nobody has been
--   receiving for that long although there are batches to take (an idle
--   queue still ticks every ticker_idle_period, so a consumer that stopped
--   polling is found even when no events arrive). A live consumer keeps its
--   lag around the tick spacing. 'open_batch' wins when both apply.
--   Errors: stuck_consumers: threshold must be a positive interval (PQ010).
--   Calls: consumer_stats.  Tables: queue, tick.
-- ---------------------------------------------------------------------------
create or replace function pgque.stuck_consumers(
    i_threshold interval default '5 minutes', i_queue text default null)
returns table (
    queue_name text, consumer_name text, reason text, lag interval, batch_age interval,
    pending_events bigint)
language plpgsql
stable
security definer
set search_path = pgque, pg_catalog
as $$
begin
    if i_threshold is null or i_threshold <= interval '0' then
        raise exception 'stuck_consumers: threshold must be a positive interval' using errcode = 'PQ010';
    end if;
    return query
        select c.queue_name, c.consumer_name,
               case when c.batch_age > i_threshold then 'open_batch' else 'lag' end,
               c.lag, c.batch_age, c.pending_events
          from pgque.consumer_stats(i_queue, null) c
          join pgque.queue q on q.queue_name = c.queue_name
          left join lateral (select max(t.tick_id) as tick_id from pgque.tick t
                              where t.tick_queue = q.queue_id) latest on true
         where (c.consumer_role in ('normal', 'coop_member') and c.batch_age > i_threshold)
            or (c.consumer_role in ('normal', 'coop_main') and c.lag > i_threshold
                and c.last_tick < latest.tick_id)
         order by c.queue_name, c.consumer_name;
end;
$$;
