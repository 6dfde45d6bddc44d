-- sa_pgque engine, revision 0004 downgrade: remove the statistics, health
-- and metrics functions. They hold no data.

drop function if exists pgque.otel_metrics();
drop function if exists pgque.queue_health(text, interval);
drop function if exists pgque._interval_text(interval);
drop function if exists pgque.stuck_consumers(interval, text);
drop function if exists pgque.consumer_stats(text, text);
drop function if exists pgque.queue_stats(text);
