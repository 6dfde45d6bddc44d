-- sa_pgque engine, revision 0004: privileges of the statistics, health and
-- metrics functions.
--
-- Deny by default, as in revision 0001: PUBLIC loses EXECUTE on everything
-- (repeating this is harmless). They only read, so monitoring runs as
-- pgque_reader (pgque_admin inherits them); the interval formatter stays
-- owner-only.

revoke execute on all routines in schema pgque from public;

grant execute on function
    pgque.queue_stats(text),
    pgque.consumer_stats(text, text),
    pgque.stuck_consumers(interval, text),
    pgque.queue_health(text, interval),
    pgque.otel_metrics()
  to pgque_reader;
