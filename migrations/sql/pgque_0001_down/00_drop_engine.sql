-- sa_pgque engine, revision 0001 downgrade: remove the engine.
--
-- Unschedules pg_cron / pg_timetable jobs first (so no job keeps calling a
-- function that no longer exists), then drops schema pgque with everything
-- in it. The cluster-wide roles are kept: other databases may use them.

do $unschedule$
begin
    if to_regprocedure('pgque.stop()') is not null
       and exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
        perform pgque.stop();
    end if;
    if to_regprocedure('pgque.stop_timetable()') is not null
       and to_regnamespace('timetable') is not null then
        perform pgque.stop_timetable();
    end if;
end
$unschedule$;

drop schema if exists pgque cascade;
