-- sa_pgque engine, revision 0001: scheduling, status and uninstall.
--
-- The engine needs someone to call ticker (often), maint_retry_events and
-- maint (every half minute) and maint_rotate_tables_step2 (every few
-- seconds). start()/stop() hand that to pg_cron when it is installed; the
-- Python package ships a ticker runner for servers without it.

-- ---------------------------------------------------------------------------
-- pgque._has_pg_cron() -> boolean
--   Whether the pg_cron extension is installed in this database.
-- ---------------------------------------------------------------------------
create or replace function pgque._has_pg_cron()
returns boolean
language sql
stable
as $$ select exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') $$;

-- ---------------------------------------------------------------------------
-- pgque._tick_rate(i_period_ms integer) -> text
--   Ticks per second for a tick period, with two decimals (100 -> '10.00').
-- ---------------------------------------------------------------------------
create or replace function pgque._tick_rate(i_period_ms integer)
returns text
language sql
immutable
as $$ select pg_catalog.to_char(1000.0 / i_period_ms, 'FM999990.00') $$;

-- ---------------------------------------------------------------------------
-- pgque.start() -> void
--   Schedule the engine's jobs with pg_cron (stopping earlier ones first, so
--   it is idempotent): pgque_ticker (ticker_loop every second),
--   pgque_retry_events and pgque_maint (every 30 s), pgque_rotate_step2
--   (every 10 s). Needs pg_cron >= 1.5 for second-granularity schedules.
--   Error: pg_cron extension is not installed. ...
--   Calls: stop_timetable, stop, cron.schedule_in_database.  Tables: config.
-- ---------------------------------------------------------------------------
create or replace function pgque.start()
returns void
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_period integer;
    v_ticker bigint;
    v_retry bigint;
    v_maint bigint;
    v_step2 bigint;
    v_schedule constant text := 'select cron.schedule_in_database($1, $2, $3, $4)';
begin
    if not pgque._has_pg_cron() then
        raise exception 'pg_cron extension is not installed. PgQue itself works without pg_cron, but pgque.start() schedules cron jobs. Install pg_cron first, or run pgque.ticker() and pgque.maint() manually.'
            using errcode = 'PQ050';
    end if;
    perform pgque.stop_timetable();
    perform pgque.stop();

    select tick_period_ms into v_period from pgque.config;
    execute v_schedule into v_ticker
        using 'pgque_ticker', '1 second', 'CALL pgque.ticker_loop()', current_database();
    execute v_schedule into v_retry
        using 'pgque_retry_events', '30 seconds',
              'SET statement_timeout = ''25s''; SELECT pgque.maint_retry_events()', current_database();
    execute v_schedule into v_maint
        using 'pgque_maint', '30 seconds',
              'SET statement_timeout = ''25s''; SELECT pgque.maint()', current_database();
    execute v_schedule into v_step2
        using 'pgque_rotate_step2', '10 seconds', 'SELECT pgque.maint_rotate_tables_step2()', current_database();

    update pgque.config set ticker_job_id = v_ticker, maint_job_id = v_maint, scheduler = 'pg_cron';
    raise notice 'pgque started: ticker=% (% ticks/sec), retry_events=%, maint=%, rotate_step2=%',
        v_ticker, pgque._tick_rate(v_period), v_retry, v_maint, v_step2;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.stop() -> void
--   Unschedule the pg_cron jobs (tolerating ones already gone) and clear the
--   scheduler settings. Delegates to stop_timetable() when pg_timetable is
--   the scheduler. Safe without pg_cron.
--   Calls: stop_timetable, cron.unschedule.  Tables: config.
-- ---------------------------------------------------------------------------
create or replace function pgque.stop()
returns void
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_config pgque.config;
    v_job_id bigint;
begin
    select * into v_config from pgque.config;
    if v_config.scheduler = 'pg_timetable' then
        perform pgque.stop_timetable();
        return;
    end if;

    if pgque._has_pg_cron() then
        foreach v_job_id in array array[v_config.ticker_job_id, v_config.maint_job_id] loop
            continue when v_job_id is null;
            begin
                execute 'select cron.unschedule($1::bigint)' using v_job_id;
            exception when others then
                null;  -- the job was removed behind our back: nothing to stop
            end;
        end loop;
        begin
            execute 'select cron.unschedule($1::text)' using 'pgque_retry_events';
        exception when others then
            raise notice 'pgque.stop: retry_events job not found (OK on first install)';
        end;
        begin
            execute 'select cron.unschedule($1::text)' using 'pgque_rotate_step2';
        exception when others then
            raise notice 'pgque.stop: rotate_step2 job not found (OK on first install)';
        end;
    end if;

    update pgque.config
       set ticker_job_id = null, maint_job_id = null, scheduler = null
     where scheduler is null or scheduler = 'pg_cron';
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque._timetable_api() -> text
--   'missing' when pg_timetable's schema or its add_job/delete_job API is
--   absent; 'untrusted schema' when the schema is owned by neither us nor a
--   superuser; 'untrusted api' when those functions are not owned by the
--   schema owner; else 'ok'. Jobs are only handed to a trusted scheduler.
-- ---------------------------------------------------------------------------
create or replace function pgque._timetable_api()
returns text
language plpgsql
stable
as $$
declare
    v_schema oid;
    v_owner oid;
begin
    select n.oid, n.nspowner into v_schema, v_owner from pg_catalog.pg_namespace n where n.nspname = 'timetable';
    if not found
       or not exists (select 1 from pg_catalog.pg_proc p where p.pronamespace = v_schema and p.proname = 'add_job')
       or not exists (select 1 from pg_catalog.pg_proc p where p.pronamespace = v_schema and p.proname = 'delete_job') then
        return 'missing';
    end if;
    if v_owner <> (select r.oid from pg_catalog.pg_roles r where r.rolname = current_user)
       and not (select r.rolsuper from pg_catalog.pg_roles r where r.oid = v_owner) then
        return 'untrusted schema';
    end if;
    if exists (select 1 from pg_catalog.pg_proc p
                where p.pronamespace = v_schema and p.proname in ('add_job', 'delete_job')
                  and p.proowner <> v_owner) then
        return 'untrusted api';
    end if;
    return 'ok';
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.start_timetable(i_ticks_per_second default 10) -> void
--   Schedule the same four jobs with pg_timetable (one instance each).
--   Errors: pg_timetable schema/API is not installed...; untrusted owners;
--   ticks_per_second must be an exact divisor of 1000 ...
--   Calls: stop, stop_timetable, timetable.add_job.  Tables: config.
-- ---------------------------------------------------------------------------
create or replace function pgque.start_timetable(i_ticks_per_second integer default 10)
returns void
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_api text := pgque._timetable_api();
    v_ids bigint[] := '{}';
    v_id bigint;
    v_job record;
begin
    if v_api = 'missing' then
        raise exception 'pg_timetable schema/API is not installed. Run pg_timetable against this database first, or use pgque.start() for pg_cron.'
            using errcode = 'PQ050';
    elsif v_api = 'untrusted schema' then
        raise exception 'untrusted pg_timetable schema owner: %',
            (select n.nspowner::regrole from pg_namespace n where n.nspname = 'timetable')
            using errcode = 'PQ050';
    elsif v_api = 'untrusted api' then
        raise exception 'untrusted pg_timetable API owner: add_job/delete_job must be owned by timetable schema owner'
            using errcode = 'PQ050';
    end if;
    if i_ticks_per_second is null or i_ticks_per_second < 1 or i_ticks_per_second > 1000
       or 1000 % i_ticks_per_second <> 0 then
        raise exception 'ticks_per_second must be an exact divisor of 1000 between 1 and 1000 (got %)',
            coalesce(i_ticks_per_second::text, 'NULL') using errcode = 'PQ010';
    end if;

    update pgque.config set tick_period_ms = 1000 / i_ticks_per_second;
    if pgque._has_pg_cron() then
        perform pgque.stop();
    end if;
    perform pgque.stop_timetable();

    for v_job in
        select * from (values
            (1, 'pgque_ticker', '@every 1 second', 'CALL pgque.ticker_loop()'),
            (2, 'pgque_retry_events', '@every 30 seconds', 'SELECT pgque.maint_retry_events()'),
            (3, 'pgque_maint', '@every 30 seconds', 'SELECT pgque.maint()'),
            (4, 'pgque_rotate_step2', '@every 10 seconds', 'SELECT pgque.maint_rotate_tables_step2()')
        ) as j(n, job_name, job_schedule, job_command)
        order by n
    loop
        execute 'select timetable.add_job(job_name => $1, job_schedule => $2, job_command => $3,'
                ' job_max_instances => 1, job_ignore_errors => false)'
            into v_id using v_job.job_name, v_job.job_schedule, v_job.job_command;
        v_ids := v_ids || v_id;
    end loop;

    update pgque.config set ticker_job_id = v_ids[1], maint_job_id = v_ids[3], scheduler = 'pg_timetable';
    raise notice 'pgque started with pg_timetable: ticker=% (% ticks/sec), retry_events=%, maint=%, rotate_step2=%',
        v_ids[1], i_ticks_per_second, v_ids[2], v_ids[3], v_ids[4];
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.stop_timetable() -> void
--   Delete the four pg_timetable jobs by name when the API is present and
--   trusted; clear the config when pg_timetable was the scheduler.
--   Calls: timetable.delete_job.  Tables: config.
-- ---------------------------------------------------------------------------
create or replace function pgque.stop_timetable()
returns void
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_api text := pgque._timetable_api();
    v_name text;
begin
    if v_api like 'untrusted%' then
        if (select scheduler from pgque.config) = 'pg_timetable' then
            raise exception 'untrusted pg_timetable API owner: add_job/delete_job must be owned by timetable schema owner'
                using errcode = 'PQ050';
        end if;
        return;
    end if;
    if v_api = 'ok' then
        foreach v_name in array array['pgque_ticker', 'pgque_retry_events', 'pgque_maint', 'pgque_rotate_step2'] loop
            execute 'select timetable.delete_job($1)' using v_name;
        end loop;
    end if;
    update pgque.config
       set ticker_job_id = null, maint_job_id = null, scheduler = null
     where scheduler = 'pg_timetable';
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.status() -> table(component text, status text, detail text)
--   A human-readable health summary: server and engine versions, scheduler,
--   ticker and maintenance jobs, missing schedulers, queue and subscription
--   counts.  Tables: config, queue, subscription.
-- ---------------------------------------------------------------------------
create or replace function pgque.status()
returns table (component text, status text, detail text)
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_config pgque.config;
begin
    select * into v_config from pgque.config;

    component := 'postgresql'; status := 'info'; detail := pg_catalog.version();
    return next;
    component := 'pgque'; status := 'info'; detail := pgque.version();
    return next;
    component := 'scheduler';
    status := coalesce(v_config.scheduler, 'manual');
    detail := format('ticker_job_id=%s, maint_job_id=%s, tick_period_ms=%s (%s ticks/sec)',
                     coalesce(v_config.ticker_job_id::text, 'NULL'), coalesce(v_config.maint_job_id::text, 'NULL'),
                     v_config.tick_period_ms, pgque._tick_rate(v_config.tick_period_ms));
    return next;
    component := 'ticker';
    if v_config.ticker_job_id is not null then
        status := 'scheduled';
        detail := format('scheduler=%s, job_id=%s, tick_period_ms=%s (%s ticks/sec)', v_config.scheduler,
                         v_config.ticker_job_id, v_config.tick_period_ms, pgque._tick_rate(v_config.tick_period_ms));
    else
        status := 'stopped';
        detail := format('not scheduled (tick_period_ms=%s)', v_config.tick_period_ms);
    end if;
    return next;
    component := 'maintenance';
    if v_config.maint_job_id is not null then
        status := 'scheduled';
        detail := format('scheduler=%s, job_id=%s', v_config.scheduler, v_config.maint_job_id);
    else
        status := 'stopped';
        detail := 'not scheduled';
    end if;
    return next;
    if not pgque._has_pg_cron() then
        component := 'pg_cron'; status := 'unavailable';
        detail := 'use pgque.start_timetable() for pg_timetable, or call pgque.ticker() / pgque.maint() manually';
        return next;
    end if;
    if to_regnamespace('timetable') is null then
        component := 'pg_timetable'; status := 'unavailable';
        detail := 'run pg_timetable against this database, then call pgque.start_timetable()';
        return next;
    end if;
    component := 'queues'; status := 'info';
    detail := format('%s queues configured', (select count(*) from pgque.queue));
    return next;
    component := 'consumers'; status := 'info';
    detail := format('%s active subscriptions', (select count(*) from pgque.subscription));
    return next;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.uninstall() -> void
--   Remove the engine: stop scheduled jobs, drop schema pgque with
--   everything in it (triggers using the trigger helpers go too). Roles are
--   kept. Refused when the engine is installed as an extension.
--   Owner or superuser only.
-- ---------------------------------------------------------------------------
create or replace function pgque.uninstall()
returns void
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    if exists (select 1 from pg_extension where extname = 'pgque') then
        raise exception 'pgque is installed as an extension; run: drop extension pgque cascade; (for pg_tle installs, use sql/pgque-tle-uninstall.sql to also unregister from pg_tle)'
            using errcode = 'PQ070';
    end if;
    if pgque._has_pg_cron() then
        perform pgque.stop();
    end if;
    if to_regnamespace('timetable') is not null then
        perform pgque.stop_timetable();
    end if;
    drop schema pgque cascade;
    raise notice 'pgque uninstalled. Run DROP ROLE IF EXISTS pgque_reader, pgque_writer, pgque_admin; manually if needed.';
end;
$$;
