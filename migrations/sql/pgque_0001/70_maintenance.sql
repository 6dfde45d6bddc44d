-- sa_pgque engine, revision 0001: maintenance and table rotation.
--
-- Event tables are never vacuumed: old data goes away by TRUNCATE of a whole
-- child table. Rotation step 1 switches inserts to the next child (truncating
-- it first) once every consumer is past the data it could still need; step 2,
-- in a later transaction, records the txid from which every new transaction
-- is known to insert into the new child.

-- ---------------------------------------------------------------------------
-- pgque._rotation_due(q pgque.queue) -> boolean
--   A queue is due for rotation when its previous rotation completed (step 2
--   ran) and its rotation period has passed.
-- ---------------------------------------------------------------------------
create or replace function pgque._rotation_due(q pgque.queue)
returns boolean
language sql
stable
as $$
    select q.queue_rotation_period is not null
       and q.queue_switch_step2 is not null
       and q.queue_switch_time + q.queue_rotation_period < pg_catalog.now()
$$;

-- ---------------------------------------------------------------------------
-- pgque.maint_rotate_tables_step1(i_queue_name text) -> integer
--   Switch a due queue's inserts to its oldest child, after truncating it.
--   Skipped while the slowest cursor may still need data written before the
--   previous switch, or when the child cannot be locked at once (e.g. a
--   pg_dump is reading it). Ticks older than the previous switch are
--   deleted. Always returns 0.
--   Errors: queue <q> maint failure: step1=<a>, current=<b>;
--   queue <q> maint failure: tick <t> not found.
--   Tables: queue, subscription, tick, event child (truncate).
-- ---------------------------------------------------------------------------
create or replace function pgque.maint_rotate_tables_step1(i_queue_name text)
returns integer
language plpgsql
as $$
declare
    v_queue pgque.queue;
    v_txid bigint;
    v_min_tick bigint;
    v_min_xmin bigint;
    v_target integer;
begin
    select * into v_queue from pgque.queue q where q.queue_name = i_queue_name for update;
    if not found or not pgque._rotation_due(v_queue) then
        return 0;
    end if;

    v_txid := pg_catalog.pg_current_xact_id()::text::bigint;
    if v_txid < v_queue.queue_switch_step1 then
        raise exception 'queue % maint failure: step1=%, current=%',
            i_queue_name, v_queue.queue_switch_step1, v_txid using errcode = 'PQ040';
    end if;

    -- Idle cooperative members have no cursor; a member holding a batch has
    -- the batch's start tick there.
    select min(s.sub_last_tick) into v_min_tick
      from pgque.subscription s where s.sub_queue = v_queue.queue_id;
    if v_min_tick is not null then
        select pg_catalog.pg_snapshot_xmin(t.tick_snapshot)::text::bigint into v_min_xmin
          from pgque.tick t where t.tick_queue = v_queue.queue_id and t.tick_id = v_min_tick;
        if not found then
            raise exception 'queue % maint failure: tick % not found', i_queue_name, v_min_tick
                using errcode = 'PQ040';
        end if;
        if v_min_xmin <= v_queue.queue_switch_step2 then
            return 0;
        end if;
    end if;

    v_target := (v_queue.queue_cur_table + 1) % v_queue.queue_ntables;
    begin
        execute format('lock table %s_%s in access exclusive mode nowait', v_queue.queue_data_pfx, v_target);
    exception when lock_not_available then
        return 0;
    end;
    execute format('truncate %s_%s', v_queue.queue_data_pfx, v_target);

    update pgque.queue
       set queue_cur_table = v_target,
           queue_switch_time = pg_catalog.now(),
           queue_switch_step1 = v_txid,
           queue_switch_step2 = null
     where queue_id = v_queue.queue_id;

    delete from pgque.tick t
     where t.tick_queue = v_queue.queue_id
       and pg_catalog.pg_snapshot_xmin(t.tick_snapshot)::text::bigint < v_queue.queue_switch_step2;
    return 0;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.maint_rotate_tables_step2() -> integer
--   Second half of rotation, in a later transaction than step 1: stamp every
--   freshly switched queue with the current txid. Always returns 0.
--   Tables: queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.maint_rotate_tables_step2()
returns integer
language plpgsql
as $$
begin
    update pgque.queue
       set queue_switch_step2 = pg_catalog.pg_current_xact_id()::text::bigint
     where queue_switch_step2 is null;
    return 0;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.maint_operations(OUT func_name text, OUT func_arg text) -> setof record
--   The maintenance calls due now, in order: rotation step 1 per due queue,
--   step 2 when needed, each queue's extra maintenance functions, and (only
--   when autovacuum is off) legacy vacuum entries.
--   Tables: queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.maint_operations(out func_name text, out func_arg text)
returns setof record
language plpgsql
as $$
declare
    v_queue pgque.queue;
    v_hook text;
    v_rotating boolean := false;
begin
    for v_queue in select * from pgque.queue q order by q.queue_name loop
        if pgque._rotation_due(v_queue) then
            func_name := 'pgque.maint_rotate_tables_step1';
            func_arg := v_queue.queue_name;
            v_rotating := true;
            return next;
        end if;
    end loop;

    if v_rotating or exists (select 1 from pgque.queue q where q.queue_switch_step2 is null) then
        func_name := 'pgque.maint_rotate_tables_step2';
        func_arg := null;
        return next;
    end if;

    for v_queue in
        select * from pgque.queue q where q.queue_extra_maint is not null order by q.queue_name
    loop
        foreach v_hook in array v_queue.queue_extra_maint loop
            func_name := v_hook;
            func_arg := v_queue.queue_name;
            return next;
        end loop;
    end loop;

    for func_name in select pgque.maint_tables_to_vacuum() loop
        func_arg := func_name;
        func_name := 'vacuum';
        return next;
    end loop;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.maint_tables_to_vacuum() -> setof text
--   Legacy: the engine's small bookkeeping tables, but only when autovacuum
--   is switched off on the server (otherwise nothing).
-- ---------------------------------------------------------------------------
create or replace function pgque.maint_tables_to_vacuum()
returns setof text
language sql
as $$
    select t
      from unnest(array['pgque.queue', 'pgque.subscription', 'pgque.consumer',
                        'pgque.tick', 'pgque.retry_queue']) as t
     where pg_catalog.current_setting('autovacuum') = 'off'
$$;

-- ---------------------------------------------------------------------------
-- pgque.maint() -> integer
--   One maintenance pass: rotation step 1 for due queues and the queues'
--   extra maintenance hooks. A hook runs only if it resolves to a
--   function(text) owned by maint()'s owner (others are skipped with a
--   warning). Step 2 has its own schedule (it needs its own transaction);
--   retries are moved by maint_retry_events. Returns the sum of the results.
--   Calls: maint_operations and the functions it lists.
-- ---------------------------------------------------------------------------
create or replace function pgque.maint()
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_op record;
    v_proc regprocedure;
    v_owner oid;
    v_call text;
    v_maint_owner oid;
    v_total integer := 0;
    v_result integer;
begin
    select p.proowner into v_maint_owner from pg_proc p where p.oid = 'pgque.maint()'::regprocedure;
    for v_op in select * from pgque.maint_operations() loop
        continue when v_op.func_name in ('pgque.maint_rotate_tables_step2', 'vacuum');
        if v_op.func_arg is null then
            execute format('select %s()', v_op.func_name) into v_result;
        else
            begin
                v_proc := (v_op.func_name || '(text)')::regprocedure;
            exception when others then
                raise warning 'pgque.maint: skipping % — invalid regprocedure: %', v_op.func_name, sqlerrm;
                continue;
            end;
            select p.proowner, format('%I.%I', n.nspname, p.proname)
              into v_owner, v_call
              from pg_proc p join pg_namespace n on n.oid = p.pronamespace
             where p.oid = v_proc;
            if v_owner <> v_maint_owner then
                raise warning 'pgque.maint: skipping % — owner % is not maint() owner %',
                    v_op.func_name, v_owner::regrole, v_maint_owner::regrole;
                continue;
            end if;
            execute format('select %s($1::text)', v_call) into v_result using v_op.func_arg;
        end if;
        v_total := v_total + coalesce(v_result, 0);
    end loop;
    return v_total;
end;
$$;
