-- sa_pgque engine, revision 0004: health checks.
--
-- queue_health turns the statistics into a check list an operator (or a
-- readiness probe, or an alert rule on pgque.queue.health) can act on.
-- Status is 'ok', 'warn' (look at it) or 'fail' (events are not flowing).
-- The column is check_name, not check, because CHECK is a reserved word.

-- ---------------------------------------------------------------------------
-- pgque._interval_text(i_value interval) -> text
--   An interval rounded to whole milliseconds, for check details.
-- ---------------------------------------------------------------------------
create or replace function pgque._interval_text(i_value interval)
returns text
language sql
immutable
as $$ select pg_catalog.date_trunc('millisecond', i_value)::text $$;

-- ---------------------------------------------------------------------------
-- pgque.queue_health(i_queue text default null, i_stuck_threshold interval default '5 minutes')
--   -> table(queue_name text, check_name text, status text, detail text)
--   Five checks per queue (NULL: every queue), by queue name, in this order:
--   * ticker: the latest tick's age against what the ticker promises: with
--     committed events waiting for a tick (unticked_events > 0) a tick is
--     due within ticker_max_lag, otherwise within ticker_idle_period. Older
--     than twice that: warn; ten times: fail (nothing ticks the queue: is
--     pgque.start() / the Ticker running?). A paused queue: warn.
--   * consumers: fail when stuck_consumers(i_stuck_threshold) lists any of
--     the queue's subscriptions (named in the detail); warn when the queue
--     has no consumer (its events reach nobody); else ok.
--   * dead_letters: warn while the queue has dead letters.
--   * rotation: warn when the last table switch is older than twice the
--     rotation period (the detail names the consumer whose cursor blocks
--     it, or asks whether maint() runs), or when rotation step 2 has not
--     followed step 1 within a minute (is maint_rotate_tables_step2
--     scheduled?); else ok.
--   * delayed_delivery: warn when a delayed event has been due for more
--     than a minute without being delivered (is maint_retry_events or
--     maint_deliver_delayed scheduled? is the queue insert-disabled?).
--   Errors: queue_health: stuck threshold must be a positive interval (PQ010).
--   Calls: queue_stats, stuck_consumers.
--   Tables: queue, subscription, consumer, tick, delay_queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.queue_health(
    i_queue text default null, i_stuck_threshold interval default '5 minutes')
returns table (queue_name text, check_name text, status text, detail text)
language plpgsql
stable
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_stats record;
    v_queue pgque.queue;
    v_expected interval;
    v_count bigint;
    v_names text;
    v_since timestamptz;
    v_slowest record;
begin
    if i_stuck_threshold is null or i_stuck_threshold <= interval '0' then
        raise exception 'queue_health: stuck threshold must be a positive interval' using errcode = 'PQ010';
    end if;
    for v_stats in select * from pgque.queue_stats(i_queue) loop
        select * into v_queue from pgque.queue q where q.queue_name = v_stats.queue_name;
        queue_name := v_stats.queue_name;

        -- ticker
        check_name := 'ticker';
        if v_stats.ticker_paused then
            status := 'warn';
            detail := 'ticker paused: no new batches until pgque.resume_queue()';
        elsif v_stats.last_tick_id is null then
            status := 'fail';
            detail := 'the queue has no tick';
        else
            v_expected := case when v_stats.unticked_events > 0 then v_queue.queue_ticker_max_lag
                               else v_queue.queue_ticker_idle_period end;
            status := case when v_stats.ticker_lag > 10 * v_expected then 'fail'
                           when v_stats.ticker_lag > 2 * v_expected then 'warn'
                           else 'ok' end;
            detail := format('latest tick %s ago, %s events waiting for a tick, a tick is due within %s',
                             pgque._interval_text(v_stats.ticker_lag), v_stats.unticked_events,
                             pgque._interval_text(v_expected));
            if status <> 'ok' then
                detail := detail || ': is the ticker running (pgque.start() or the Ticker)?';
            end if;
        end if;
        return next;

        -- consumers
        check_name := 'consumers';
        select count(*), string_agg(format('%s (%s)', sc.consumer_name, sc.reason), ', ' order by sc.consumer_name)
          into v_count, v_names
          from pgque.stuck_consumers(i_stuck_threshold, v_stats.queue_name) sc;
        if v_count > 0 then
            status := 'fail';
            detail := format('%s stuck for more than %s: %s', v_count, pgque._interval_text(i_stuck_threshold), v_names);
        elsif v_stats.consumers = 0 then
            status := 'warn';
            detail := 'no consumers: events are delivered to nobody';
        else
            status := 'ok';
            detail := format('%s consumers, none stuck for more than %s', v_stats.consumers,
                             pgque._interval_text(i_stuck_threshold));
        end if;
        return next;

        -- dead letters
        check_name := 'dead_letters';
        if v_stats.dead_letters > 0 then
            status := 'warn';
            detail := format('%s dead letters: inspect with pgque.dlq_inspect(), replay with pgque.dlq_replay()',
                             v_stats.dead_letters);
        else
            status := 'ok';
            detail := 'no dead letters';
        end if;
        return next;

        -- rotation
        check_name := 'rotation';
        if v_queue.queue_switch_step2 is null and v_stats.rotation_age > interval '1 minute' then
            status := 'warn';
            detail := format('rotation step 2 has not run for %s: is pgque.maint_rotate_tables_step2() scheduled?',
                             pgque._interval_text(v_stats.rotation_age));
        elsif v_stats.rotation_age > 2 * v_queue.queue_rotation_period then
            status := 'warn';
            select c.co_name, s.sub_last_tick,
                   coalesce(pg_snapshot_xmin(t.tick_snapshot)::text::bigint <= v_queue.queue_switch_step2, true)
                       as blocking
              into v_slowest
              from pgque.subscription s
              join pgque.consumer c on c.co_id = s.sub_consumer
              left join pgque.tick t on t.tick_queue = s.sub_queue and t.tick_id = s.sub_last_tick
             where s.sub_queue = v_queue.queue_id and s.sub_last_tick is not null
             order by s.sub_last_tick, c.co_name
             limit 1;
            if found and v_slowest.blocking then
                detail := format('no table rotation for %s (period %s): consumer %s at tick %s holds it back',
                                 pgque._interval_text(v_stats.rotation_age),
                                 pgque._interval_text(v_queue.queue_rotation_period),
                                 v_slowest.co_name, v_slowest.sub_last_tick);
            else
                detail := format('no table rotation for %s (period %s): is pgque.maint() scheduled?',
                                 pgque._interval_text(v_stats.rotation_age),
                                 pgque._interval_text(v_queue.queue_rotation_period));
            end if;
        else
            status := 'ok';
            detail := format('last table rotation %s ago (period %s)', pgque._interval_text(v_stats.rotation_age),
                             pgque._interval_text(v_queue.queue_rotation_period));
        end if;
        return next;

        -- delayed delivery
        check_name := 'delayed_delivery';
        select min(d.ev_deliver_at) into v_since
          from pgque.delay_queue d where d.ev_queue = v_queue.queue_id and d.ev_deliver_at <= now();
        if now() - v_since > interval '1 minute' then
            status := 'warn';
            detail := format('%s delayed events due but not delivered, the oldest for %s: is pgque.maint_retry_events() scheduled?',
                             v_stats.delayed_due, pgque._interval_text(now() - v_since));
            if v_queue.queue_disable_insert then
                detail := detail || ' (inserts into the queue are disabled)';
            end if;
        else
            status := 'ok';
            detail := format('%s delayed events parked, %s due', v_stats.delayed_pending, v_stats.delayed_due);
        end if;
        return next;
    end loop;
end;
$$;
