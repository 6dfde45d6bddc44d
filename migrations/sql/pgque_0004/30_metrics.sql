-- sa_pgque engine, revision 0004: metrics in one flat table.
--
-- otel_metrics() lays queue_stats, consumer_stats and queue_health out as
-- gauge data points named in OpenTelemetry's style, so any collector can
-- export them with one query: sa_pgque's OpenTelemetry bridge and
-- Prometheus exporter (sa_pgque.metrics) read it, and so can an SQL-based
-- collector. Durations are in seconds (unit 's'), counts of events in
-- '{event}'. A Prometheus exporter replaces the dots with underscores and
-- appends '_seconds' to the 's' metrics. Missing values (no tick yet, no
-- open batch, no rate) produce no data point.

-- ---------------------------------------------------------------------------
-- pgque.otel_metrics() -> table(metric_name text, metric_unit text,
--                               metric_value float8, attributes jsonb)
--   Data points, by metric name then attributes:
--   per queue ({"queue": q}): pgque.queue.depth, .oldest_pending_age,
--   .unticked_events, .events_per_second, .ticker_lag, .consumers,
--   .retry_pending, .dead_letters, .delayed_pending, .delayed_due,
--   .rotation_age, .paused (1 or 0);
--   per subscription ({"queue": q, "consumer": c}): pgque.consumer.lag,
--   .last_seen, .pending_events, .batch_age;
--   per queue and check ({"queue": q, "check": name}): pgque.queue.health
--   (0 ok, 1 warn, 2 fail; stuck threshold 5 minutes).
--   Calls: queue_stats, consumer_stats, queue_health.
-- ---------------------------------------------------------------------------
create or replace function pgque.otel_metrics()
returns table (metric_name text, metric_unit text, metric_value float8, attributes jsonb)
language sql
stable
security definer
set search_path = pgque, pg_catalog
as $$
    select m.metric_name, m.metric_unit, m.metric_value, m.attributes
      from (
        select v.metric_name, v.metric_unit, v.metric_value, jsonb_build_object('queue', s.queue_name) as attributes
          from pgque.queue_stats() s
         cross join lateral (values
            ('pgque.queue.depth', '{event}', s.depth::float8),
            ('pgque.queue.oldest_pending_age', 's', extract(epoch from s.oldest_pending_age)::float8),
            ('pgque.queue.unticked_events', '{event}', s.unticked_events::float8),
            ('pgque.queue.events_per_second', '{event}/s', s.ev_per_sec),
            ('pgque.queue.ticker_lag', 's', extract(epoch from s.ticker_lag)::float8),
            ('pgque.queue.consumers', '{consumer}', s.consumers::float8),
            ('pgque.queue.retry_pending', '{event}', s.retry_pending::float8),
            ('pgque.queue.dead_letters', '{event}', s.dead_letters::float8),
            ('pgque.queue.delayed_pending', '{event}', s.delayed_pending::float8),
            ('pgque.queue.delayed_due', '{event}', s.delayed_due::float8),
            ('pgque.queue.rotation_age', 's', extract(epoch from s.rotation_age)::float8),
            ('pgque.queue.paused', '1', case when s.ticker_paused then 1 else 0 end::float8)
         ) as v(metric_name, metric_unit, metric_value)
        union all
        select v.metric_name, v.metric_unit, v.metric_value,
               jsonb_build_object('queue', c.queue_name, 'consumer', c.consumer_name)
          from pgque.consumer_stats() c
         cross join lateral (values
            ('pgque.consumer.lag', 's', extract(epoch from c.lag)::float8),
            ('pgque.consumer.last_seen', 's', extract(epoch from c.last_seen)::float8),
            ('pgque.consumer.pending_events', '{event}', c.pending_events::float8),
            ('pgque.consumer.batch_age', 's', extract(epoch from c.batch_age)::float8)
         ) as v(metric_name, metric_unit, metric_value)
        union all
        select 'pgque.queue.health', '1',
               case h.status when 'ok' then 0 when 'warn' then 1 else 2 end::float8,
               jsonb_build_object('queue', h.queue_name, 'check', h.check_name)
          from pgque.queue_health() h
      ) m
     where m.metric_value is not null
     order by m.metric_name, m.attributes::text
$$;
