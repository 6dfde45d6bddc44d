-- sa_pgque engine, revision 0001: schema and roles.
--
-- Everything the engine owns lives in schema pgque. The three API roles are
-- cluster-wide and are created only when missing; uninstall never drops them.
-- Re-running this file on an installed database changes nothing.

create schema if not exists pgque;

-- ---------------------------------------------------------------------------
-- Roles: pgque_reader (consume), pgque_writer (produce), pgque_admin (both,
-- plus operations). Reader and writer are siblings; admin is a member of both.
-- ---------------------------------------------------------------------------
do $roles$
declare
    v_role text;
    v_can_create boolean;
begin
    select r.rolcreaterole or r.rolsuper
      into v_can_create
      from pg_catalog.pg_roles r
     where r.rolname = current_user;

    foreach v_role in array array['pgque_reader', 'pgque_writer', 'pgque_admin'] loop
        if not exists (select 1 from pg_catalog.pg_roles where rolname = v_role) then
            if not coalesce(v_can_create, false) then
                raise exception 'cannot install pgque: role % does not exist and % may not create roles', v_role, current_user
                    using errcode = '42501',
                          hint = 'Install as a role with CREATEROLE, or have an administrator run: '
                                 'CREATE ROLE pgque_reader NOLOGIN; CREATE ROLE pgque_writer NOLOGIN; '
                                 'CREATE ROLE pgque_admin NOLOGIN;';
            end if;
            execute format('create role %I nologin', v_role);
        end if;
    end loop;

    -- Older installs made the writer a member of the reader; the roles are siblings now.
    if exists (select 1
                 from pg_catalog.pg_auth_members m
                where m.roleid = 'pgque_reader'::regrole
                  and m.member = 'pgque_writer'::regrole) then
        revoke pgque_reader from pgque_writer;
    end if;

    if not exists (select 1 from pg_catalog.pg_auth_members m
                    where m.roleid = 'pgque_reader'::regrole and m.member = 'pgque_admin'::regrole) then
        grant pgque_reader to pgque_admin;
    end if;
    if not exists (select 1 from pg_catalog.pg_auth_members m
                    where m.roleid = 'pgque_writer'::regrole and m.member = 'pgque_admin'::regrole) then
        grant pgque_writer to pgque_admin;
    end if;
end
$roles$;
