-- sa_pgque engine, revision 0001: small utilities shared by the engine.
--
-- Sequence access by name, identifier quoting, privilege copying for the
-- per-queue tables, storage tuning, and the version string.

-- ---------------------------------------------------------------------------
-- pgque.version() -> text
--   The engine version. PgQue clients never check it; any semver string will
--   do. The build part names this implementation.
-- ---------------------------------------------------------------------------
create or replace function pgque.version()
returns text
language sql
immutable
security definer
set search_path = pgque, pg_catalog
as $$ select '0.3.0-devel+sa-pgque.1'::text $$;

-- ---------------------------------------------------------------------------
-- pgque.quote_fqname(i_name text) -> text
--   Quote "schema.name" as two identifiers; a name without a dot is taken to
--   be in schema public. 'a.b' -> a.b, 'x' -> public.x, 'A.b c' -> "A"."b c".
-- ---------------------------------------------------------------------------
create or replace function pgque.quote_fqname(i_name text)
returns text
language sql
strict
immutable
as $$
    select case
        when pg_catalog.strpos(i_name, '.') = 0
            then 'public.' || pg_catalog.quote_ident(i_name)
        else pg_catalog.quote_ident(pg_catalog.split_part(i_name, '.', 1)) || '.'
             || pg_catalog.quote_ident(pg_catalog.substr(i_name, pg_catalog.strpos(i_name, '.') + 1))
    end
$$;

-- ---------------------------------------------------------------------------
-- pgque.seq_getval(i_seq_name text) -> bigint
--   Last value of a sequence, without advancing it. A sequence that was never
--   used reports its start value (1), as its last_value column does.
-- ---------------------------------------------------------------------------
create or replace function pgque.seq_getval(i_seq_name text)
returns bigint
language plpgsql
strict
as $$
declare
    v_value bigint;
begin
    execute 'select last_value from ' || pgque.quote_fqname(i_seq_name) into v_value;
    return v_value;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.seq_setval(i_seq_name text, i_new_value bigint) -> bigint
--   Move a sequence forward to at least i_new_value; never backwards.
--   Returns the value the sequence is at afterwards.
-- ---------------------------------------------------------------------------
create or replace function pgque.seq_setval(i_seq_name text, i_new_value bigint)
returns bigint
language plpgsql
strict
as $$
declare
    v_fqname text := pgque.quote_fqname(i_seq_name);
    v_current bigint;
begin
    execute 'select last_value from ' || v_fqname into v_current;
    if v_current >= i_new_value then
        return v_current;
    end if;
    return pg_catalog.setval(v_fqname::regclass, i_new_value);
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque._grant_perms_from(src_schema, src_table, dst_schema, dst_table) -> integer
--   Re-issue every table privilege held on the source table (grant options
--   included) on the destination table. Used to give per-queue tables the
--   privileges of pgque.event_template. Returns 1.
-- ---------------------------------------------------------------------------
create or replace function pgque._grant_perms_from(
    src_schema text, src_table text, dst_schema text, dst_table text)
returns integer
language plpgsql
strict
as $$
declare
    v_acl record;
begin
    for v_acl in
        select a.privilege_type, a.grantee, a.is_grantable
          from pg_catalog.pg_class c
          join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          cross join lateral pg_catalog.aclexplode(c.relacl) a
         where n.nspname = src_schema
           and c.relname = src_table
           and a.grantee <> c.relowner
    loop
        execute format('grant %s on %I.%I to %s%s',
                       v_acl.privilege_type, dst_schema, dst_table,
                       case when v_acl.grantee = 0 then 'public'
                            else pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(v_acl.grantee)) end,
                       case when v_acl.is_grantable then ' with grant option' else '' end);
    end loop;
    return 1;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.grant_perms(x_queue_name text) -> integer
--   Give a queue's parent and child event tables the privileges of
--   pgque.event_template, and its two sequences their fixed grants (PUBLIC
--   may read both; pgque_admin may draw event ids). Returns 1.
--   Tables: pgque.queue (read), per-queue tables and sequences (grants).
-- ---------------------------------------------------------------------------
create or replace function pgque.grant_perms(x_queue_name text)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_queue pgque.queue;
    v_table text;
    v_part integer;
begin
    select * into v_queue from pgque.queue where queue_name = x_queue_name;
    if not found then
        raise exception 'Queue not found' using errcode = 'PQ001';
    end if;

    v_table := pg_catalog.split_part(v_queue.queue_data_pfx, '.', 2);
    perform pgque._grant_perms_from('pgque', 'event_template', 'pgque', v_table);
    for v_part in 0 .. v_queue.queue_ntables - 1 loop
        perform pgque._grant_perms_from('pgque', 'event_template', 'pgque', v_table || '_' || v_part);
    end loop;

    execute format('grant select on sequence %s to public', pgque.quote_fqname(v_queue.queue_event_seq));
    execute format('grant usage on sequence %s to pgque_admin', pgque.quote_fqname(v_queue.queue_event_seq));
    execute format('grant select on sequence %s to public', pgque.quote_fqname(v_queue.queue_tick_seq));
    return 1;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.tune_storage(i_queue_name text) -> integer
--   Storage options of a queue's child tables: they are only ever appended to
--   and truncated, so pages are packed full and autovacuum is switched off.
--   Returns 1, or 0 for an unknown queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.tune_storage(i_queue_name text)
returns integer
language plpgsql
strict
as $$
declare
    v_queue pgque.queue;
    v_part integer;
begin
    select * into v_queue from pgque.queue where queue_name = i_queue_name;
    if not found then
        return 0;
    end if;
    for v_part in 0 .. v_queue.queue_ntables - 1 loop
        execute format('alter table %s_%s set (fillfactor = 100, autovacuum_enabled = off, '
                       'toast.autovacuum_enabled = off)', v_queue.queue_data_pfx, v_part);
    end loop;
    return 1;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.upgrade_schema() -> integer
--   Legacy upgrade helper kept for PgQue compatibility: makes sure the
--   catalog has what older installs lacked. Returns the number of changes
--   made (0 on a current install).
-- ---------------------------------------------------------------------------
create or replace function pgque.upgrade_schema()
returns integer
language plpgsql
as $$
declare
    v_changes integer := 0;
begin
    if exists (select 1
                 from pg_catalog.pg_attribute
                where attrelid = 'pgque.subscription'::regclass
                  and attname = 'sub_last_tick'
                  and attnotnull) then
        alter table pgque.subscription alter column sub_last_tick drop not null;
        v_changes := v_changes + 1;
    end if;
    if not exists (select 1
                     from pg_catalog.pg_attribute
                    where attrelid = 'pgque.queue'::regclass
                      and attname = 'queue_extra_maint'
                      and not attisdropped) then
        alter table pgque.queue add column queue_extra_maint text[];
        v_changes := v_changes + 1;
    end if;
    return v_changes;
end;
$$;
