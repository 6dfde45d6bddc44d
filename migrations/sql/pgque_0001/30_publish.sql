-- sa_pgque engine, revision 0001: appending events.
--
-- Every event is appended to the queue's current child table with the
-- inserting transaction's id; nothing is ever updated or deleted in place.
-- send/send_batch are the modern wrappers over insert_event/insert_event_bulk.
-- insert_event (7-argument) is generated code with a static INSERT per child
-- table of every queue, rewritten by create_queue and drop_queue through
-- _build_insert_event, so that its plans are prepared once per session.

-- ---------------------------------------------------------------------------
-- pgque.insert_event_raw(queue_name, ev_id, ev_time, ev_owner, ev_retry,
--                        ev_type, ev_data, ev_extra1..4) -> bigint
--   Low-level append into the current child. A NULL ev_id takes the next
--   sequence value; the sequence advances even when an id is supplied (retry
--   re-inserts rely on keeping their id). Disabled queues refuse inserts
--   unless session_replication_role = replica. Returns the event id.
--   Tables: queue (read), current event child (insert).
-- ---------------------------------------------------------------------------
create or replace function pgque.insert_event_raw(
    queue_name text, ev_id bigint, ev_time timestamptz, ev_owner integer, ev_retry integer,
    ev_type text, ev_data text, ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text)
returns bigint
language plpgsql
as $$
declare
    v_queue record;
    v_id bigint;
begin
    select q.queue_data_pfx, q.queue_cur_table, q.queue_event_seq, q.queue_disable_insert
      into v_queue
      from pgque.queue q
     where q.queue_name = insert_event_raw.queue_name;
    if not found then
        raise exception 'queue not found: %', insert_event_raw.queue_name using errcode = 'PQ001';
    end if;

    v_id := pg_catalog.nextval(v_queue.queue_event_seq::regclass);
    if insert_event_raw.ev_id is not null then
        v_id := insert_event_raw.ev_id;
    end if;
    if v_queue.queue_disable_insert
       and pg_catalog.current_setting('session_replication_role') <> 'replica' then
        raise exception 'Insert into queue disallowed' using errcode = 'PQ020';
    end if;

    execute format('insert into %s_%s (ev_id, ev_time, ev_owner, ev_retry, ev_type, ev_data, '
                   'ev_extra1, ev_extra2, ev_extra3, ev_extra4) '
                   'values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
                   v_queue.queue_data_pfx, v_queue.queue_cur_table)
        using v_id, insert_event_raw.ev_time, insert_event_raw.ev_owner, insert_event_raw.ev_retry,
              insert_event_raw.ev_type, insert_event_raw.ev_data, insert_event_raw.ev_extra1,
              insert_event_raw.ev_extra2, insert_event_raw.ev_extra3, insert_event_raw.ev_extra4;
    return v_id;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.insert_event(queue_name, ev_type, ev_data, ev_extra1..4) -> bigint
--   The single-event primitive: append one event stamped with now() and the
--   current transaction id. Returns the event id.
--   Errors: queue not found: <q>; Insert into queue disallowed.
--   Generated code (written out by _build_insert_event below, which holds
--   its template): a static INSERT for each child table of each queue, so
--   PL/pgSQL prepares each INSERT once per session and reuses its plan; an
--   INSERT built for EXECUTE is parsed and planned on every call, which was
--   most of the cost of one insert_event. The body reads the queue row in
--   the calling transaction (so rotation is followed: the INSERT chosen is
--   the one into the child queue_cur_table names, and a TRUNCATE or DROP of
--   a child invalidates the cached plans that use it), finds the queue's
--   code by a binary search over queue ids (a tree of IFs, ~log2(queues)
--   tests), draws the id from the queue's sequence and inserts. With more
--   than 64 queues the INSERTs live in group functions _insert_event_g<n>
--   (queue ids 64n+1 .. 64n+64), which the tree calls. An unknown or
--   disabled queue, or one without code (see _build_insert_event), goes to
--   insert_event_raw, which raises the errors or inserts with EXECUTE.
--   Calls: _insert_event_g<n>, insert_event_raw.
--   Tables: queue (read), current event child (insert).
-- ---------------------------------------------------------------------------

-- ---------------------------------------------------------------------------
-- pgque._insert_event_code(i_queue_id, i_event_seq, i_schema, i_base,
--                          i_ntables) -> text
--   The generated code of one queue: IF v_queue_id is this queue, then per
--   child table (named <i_schema>.<i_base>_<n>) an IF on v_cur_table with
--   nextval of the queue's sequence, the INSERT and RETURN v_id. Uses the
--   names insert_event and the group functions both declare: v_queue_id,
--   v_cur_table, v_id, ev_type, ev_data, ev_extra1..4.
-- ---------------------------------------------------------------------------
create or replace function pgque._insert_event_code(
    i_queue_id integer, i_event_seq text, i_schema text, i_base text, i_ntables integer)
returns text
language sql
immutable
as $$
    select pg_catalog.format(E'if v_queue_id = %s then\n', i_queue_id)
           || pg_catalog.string_agg(pg_catalog.format(
                  E'    %s v_cur_table = %s then\n'
                   '        v_id := nextval(%L::regclass);\n'
                   '        insert into %I.%I (ev_id, ev_time, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)\n'
                   '        values (v_id, now(), ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4);\n'
                   '        return v_id;\n',
                  case when p = 0 then 'if' else 'elsif' end, p,
                  i_event_seq, i_schema, i_base || '_' || p), '' order by p)
           || E'    end if;\nend if;\n'
      from pg_catalog.generate_series(0, i_ntables - 1) p
$$;

-- ---------------------------------------------------------------------------
-- pgque._insert_event_tree(i_keys integer[], i_leaves text[], i_lo, i_hi) -> text
--   A binary search in generated code: for leaves i_lo..i_hi (i_keys
--   ascending, the smallest queue id each leaf can handle), the leaf itself,
--   or IF v_queue_id < the middle key, the left half, ELSE the right half.
--   Each leaf checks its own range. Not indented, to keep the text short:
--   every session that calls the generated function parses all of it.
-- ---------------------------------------------------------------------------
create or replace function pgque._insert_event_tree(
    i_keys integer[], i_leaves text[], i_lo integer, i_hi integer)
returns text
language plpgsql
immutable
as $$
declare
    v_mid integer;
begin
    if i_lo >= i_hi then
        return i_leaves[i_lo];
    end if;
    v_mid := (i_lo + i_hi + 1) / 2;
    return 'if v_queue_id < ' || i_keys[v_mid] || E' then\n'
        || pgque._insert_event_tree(i_keys, i_leaves, i_lo, v_mid - 1)
        || E'else\n'
        || pgque._insert_event_tree(i_keys, i_leaves, v_mid, i_hi)
        || E'end if;\n';
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque._insert_event_block(i_ids integer[]) -> text
--   The generated code for the queues i_ids (ascending): their
--   _insert_event_code leaves under an _insert_event_tree. '' for none.
--   Tables: queue.
-- ---------------------------------------------------------------------------
create or replace function pgque._insert_event_block(i_ids integer[])
returns text
language plpgsql
stable
as $$
declare
    v_leaves text[];
begin
    if pg_catalog.cardinality(i_ids) = 0 then
        return '';
    end if;
    select pg_catalog.array_agg(pgque._insert_event_code(s.queue_id, s.queue_event_seq, s.name[1], s.name[2],
                                                         s.queue_ntables) order by s.queue_id)
      into v_leaves
      from (select q.queue_id, q.queue_event_seq, q.queue_ntables,
                   pg_catalog.parse_ident(q.queue_data_pfx) as name
              from pgque.queue q
             where q.queue_id = any (i_ids)) s;
    return pgque._insert_event_tree(i_ids, v_leaves, 1, pg_catalog.cardinality(i_ids));
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque._build_insert_event(i_queue_id integer default null) -> integer
--   (Re)write insert_event (7-argument) with code for every queue whose
--   event sequence and child tables exist: inline for up to 64 queues,
--   else through one group function _insert_event_g<n>(v_queue_id,
--   v_cur_table, ev_type, ev_data, ev_extra1..4) per 64 queue ids in use,
--   which keeps what every session parses small however many queues there
--   are (the generated text is parsed whole; its cost grows faster than
--   its length). Group functions are (re)written only for i_queue_id's
--   group, or for all when i_queue_id is NULL or they do not exist yet;
--   groups left empty, or all of them when the queues fit inline, are
--   dropped. Group functions run with the caller's rights and nobody but
--   the owner may call them (insert_event does, as the owner).
--   create_queue and drop_queue call this (with their queue's id), and so
--   does this file (a reinstall covers the queues there). CREATE OR REPLACE
--   keeps insert_event's oid, owner and grants; check_function_bodies is
--   off meanwhile (the text is ours, parsing it twice costs time). Holds
--   the advisory lock create_queue and drop_queue take before anything
--   else, to the end of the transaction: regenerations never run side by
--   side, and in READ COMMITTED each sees every queue the previous ones
--   committed. A create_queue in a REPEATABLE READ or SERIALIZABLE
--   transaction does not see queues committed after its snapshot: those
--   are left to insert_event_raw until the next create/drop_queue touching
--   their group (correct, only slower). Returns the number of queues with
--   generated code.  Tables: queue.
-- ---------------------------------------------------------------------------
create or replace function pgque._build_insert_event(i_queue_id integer default null)
returns integer
language plpgsql
set check_function_bodies = off
as $build$
declare
    c_inline_max constant integer := 64;
    c_group_size constant integer := 64;
    v_ids integer[];
    v_n integer;
    v_groups integer[];
    v_group integer;
    v_keys integer[];
    v_leaves text[];
    v_tree text;
    v_proc regprocedure;
begin
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgque._build_insert_event'));

    select coalesce(pg_catalog.array_agg(s.queue_id order by s.queue_id), '{}')
      into v_ids
      from (select q.queue_id, q.queue_event_seq, q.queue_ntables,
                   pg_catalog.parse_ident(q.queue_data_pfx) as name
              from pgque.queue q) s
     where pg_catalog.cardinality(s.name) = 2
       and s.queue_ntables between 1 and 100
       and pg_catalog.to_regclass(s.queue_event_seq) is not null
       and (select pg_catalog.bool_and(pg_catalog.to_regclass(
                       pg_catalog.format('%I.%I', s.name[1], s.name[2] || '_' || p)) is not null)
              from pg_catalog.generate_series(0, s.queue_ntables - 1) p);
    v_n := pg_catalog.cardinality(v_ids);

    if v_n <= c_inline_max then
        v_groups := '{}';
        v_tree := pgque._insert_event_block(v_ids);
    else
        select pg_catalog.array_agg(distinct (i - 1) / c_group_size order by (i - 1) / c_group_size)
          into v_groups
          from pg_catalog.unnest(v_ids) i;
        foreach v_group in array v_groups loop
            continue when i_queue_id is not null
                      and v_group <> (i_queue_id - 1) / c_group_size
                      and pg_catalog.to_regprocedure(pg_catalog.format(
                              'pgque._insert_event_g%s(integer, integer, text, text, text, text, text, text)',
                              v_group)) is not null;
            select pg_catalog.array_agg(i order by i) into v_keys
              from pg_catalog.unnest(v_ids) i
             where (i - 1) / c_group_size = v_group;
            execute pg_catalog.format(
                $create$create or replace function pgque.%I(
    v_queue_id integer, v_cur_table integer, ev_type text, ev_data text,
    ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text)
returns bigint
language plpgsql
as %L$create$,
                '_insert_event_g' || v_group,
                E'\n-- Generated by pgque._build_insert_event() for the queues with ids '
                || (v_group * c_group_size + 1) || ' to ' || (v_group * c_group_size + c_group_size)
                || E'; see 30_publish.sql. Do not edit.\n'
                || E'declare\n    v_id bigint;\nbegin\n'
                || pgque._insert_event_block(v_keys)
                || E'return null;\nend;\n');
            execute pg_catalog.format('revoke all on function pgque.%I(integer, integer, text, text, text, text, text, text) from public',
                                      '_insert_event_g' || v_group);
        end loop;
        select pg_catalog.array_agg(g * c_group_size + 1 order by g),
               pg_catalog.array_agg(pg_catalog.format(
                   E'if v_queue_id between %s and %s then\n'
                    'v_id := pgque._insert_event_g%s(v_queue_id, v_cur_table, ev_type, ev_data,'
                    ' ev_extra1, ev_extra2, ev_extra3, ev_extra4);\n'
                    'end if;\n',
                   g * c_group_size + 1, g * c_group_size + c_group_size, g) order by g)
          into v_keys, v_leaves
          from pg_catalog.unnest(v_groups) g;
        v_tree := pgque._insert_event_tree(v_keys, v_leaves, 1, pg_catalog.cardinality(v_keys));
    end if;

    execute pg_catalog.format(
        $create$create or replace function pgque.insert_event(
    queue_name text, ev_type text, ev_data text,
    ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as %L$create$,
        E'\n-- Generated by pgque._build_insert_event() for ' || v_n
        || E' queue(s); see 30_publish.sql. Do not edit.\n'
        || E'declare\n'
        || E'    v_queue_id integer;\n'
        || E'    v_cur_table integer;\n'
        || E'    v_disabled boolean;\n'
        || E'    v_id bigint;\n'
        || E'begin\n'
        || E'    select q.queue_id, q.queue_cur_table, q.queue_disable_insert\n'
        || E'      into v_queue_id, v_cur_table, v_disabled\n'
        || E'      from pgque.queue q\n'
        || E'     where q.queue_name = insert_event.queue_name;\n'
        || E'    if found and not v_disabled then\n'
        || v_tree
        || E'        if v_id is not null then\n'
        || E'            return v_id;\n'
        || E'        end if;\n'
        || E'    end if;\n'
        || E'    -- unknown or disabled queue, or a queue without code above\n'
        || E'    return pgque.insert_event_raw(insert_event.queue_name, null, now(), null, null,\n'
        || E'                                  insert_event.ev_type, insert_event.ev_data, insert_event.ev_extra1,\n'
        || E'                                  insert_event.ev_extra2, insert_event.ev_extra3, insert_event.ev_extra4);\n'
        || E'end;\n');

    -- group functions no longer called
    for v_proc in
        select p.oid::regprocedure
          from pg_catalog.pg_proc p
         where p.pronamespace = 'pgque'::regnamespace
           and p.proname ~ '^_insert_event_g[0-9]+$'
           and substr(p.proname, 16)::integer <> all (v_groups)
    loop
        execute pg_catalog.format('drop function %s', v_proc);
    end loop;
    return v_n;
end;
$build$;

select pgque._build_insert_event();

-- ---------------------------------------------------------------------------
-- pgque.insert_event(queue_name, ev_type, ev_data) -> bigint
--   insert_event with the four extra fields NULL. A one-statement SQL
--   function, so the planner inlines it into the calling query: it costs
--   no call of its own.
-- ---------------------------------------------------------------------------
create or replace function pgque.insert_event(queue_name text, ev_type text, ev_data text)
returns bigint
language sql
as $$
    select pgque.insert_event(queue_name, ev_type, ev_data, null, null, null, null)
$$;

-- ---------------------------------------------------------------------------
-- pgque.insert_event_bulk(queue_name, ev_type, ev_data_list text[]) -> bigint[]
--   Append one event per array element in a single set-based INSERT. Ids
--   are drawn in array order and returned aligned with the input; all rows
--   share one ev_time. A NULL element gives an event with NULL ev_data.
--   An empty array returns '{}' without looking at the queue.
--   The sequence name is resolved to a regclass once per call, not once
--   per id (resolving it per row cost about 20% of the whole call).
--   Tables: queue (read), current event child (insert).
-- ---------------------------------------------------------------------------
create or replace function pgque.insert_event_bulk(queue_name text, ev_type text, ev_data_list text[])
returns bigint[]
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_queue record;
    v_seq regclass;
    v_ids bigint[];
begin
    if ev_data_list is null then
        raise exception 'payloads must not be null' using errcode = 'PQ010';
    end if;
    if cardinality(ev_data_list) = 0 then
        return '{}'::bigint[];
    end if;

    select q.queue_data_pfx, q.queue_cur_table, q.queue_event_seq, q.queue_disable_insert
      into v_queue
      from pgque.queue q
     where q.queue_name = insert_event_bulk.queue_name;
    if not found then
        raise exception 'queue not found: %', insert_event_bulk.queue_name using errcode = 'PQ001';
    end if;
    if v_queue.queue_disable_insert and current_setting('session_replication_role') <> 'replica' then
        raise exception 'Insert into queue disallowed' using errcode = 'PQ020';
    end if;

    v_seq := v_queue.queue_event_seq::regclass;
    v_ids := array(select nextval(v_seq) from generate_series(1, cardinality(ev_data_list)));
    execute format('insert into %s_%s (ev_id, ev_time, ev_type, ev_data) '
                   'select e.id, now(), $1, e.data from unnest($2, $3) as e(id, data)',
                   v_queue.queue_data_pfx, v_queue.queue_cur_table)
        using ev_type, v_ids, ev_data_list;
    return v_ids;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.current_event_table(x_queue_name text) -> text
--   Name of the child table receiving inserts right now, e.g.
--   pgque.event_7_1 (valid for the current transaction only).
-- ---------------------------------------------------------------------------
create or replace function pgque.current_event_table(x_queue_name text)
returns text
language plpgsql
as $$
declare
    v_queue record;
begin
    select q.queue_data_pfx, q.queue_cur_table, q.queue_disable_insert
      into v_queue
      from pgque.queue q
     where q.queue_name = x_queue_name;
    if not found then
        raise exception 'Event queue not found' using errcode = 'PQ001';
    end if;
    if v_queue.queue_disable_insert
       and pg_catalog.current_setting('session_replication_role') <> 'replica' then
        raise exception 'Writing to queue disabled' using errcode = 'PQ020';
    end if;
    return v_queue.queue_data_pfx || '_' || v_queue.queue_cur_table;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.send(queue_name, [type_name,] payload text|jsonb) -> bigint
--   Publish one event. text payloads are stored byte for byte; jsonb ones as
--   PostgreSQL's canonical jsonb text. Without type_name the type is
--   'default'. Calls: insert_event.
-- ---------------------------------------------------------------------------
create or replace function pgque.send(queue_name text, type_name text, payload text)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event(queue_name, type_name, payload, null, null, null, null);
end;
$$;

create or replace function pgque.send(queue_name text, type_name text, payload jsonb)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event(queue_name, type_name, payload::text, null, null, null, null);
end;
$$;

create or replace function pgque.send(queue_name text, payload text)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event(queue_name, 'default', payload, null, null, null, null);
end;
$$;

create or replace function pgque.send(queue_name text, payload jsonb)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event(queue_name, 'default', payload::text, null, null, null, null);
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.send_batch(queue_name, [type_name,] payloads text[]|jsonb[]) -> bigint[]
--   Publish many events in one statement; returns their ids in input order.
--   NULL array: payloads must not be null. Empty array: '{}' (the queue is
--   not looked at). Calls: insert_event_bulk.
-- ---------------------------------------------------------------------------
create or replace function pgque.send_batch(queue_name text, type_name text, payloads text[])
returns bigint[]
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event_bulk(queue_name, type_name, payloads);
end;
$$;

create or replace function pgque.send_batch(queue_name text, type_name text, payloads jsonb[])
returns bigint[]
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event_bulk(queue_name, type_name, payloads::text[]);
end;
$$;

create or replace function pgque.send_batch(queue_name text, payloads text[])
returns bigint[]
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event_bulk(queue_name, 'default', payloads);
end;
$$;

create or replace function pgque.send_batch(queue_name text, payloads jsonb[])
returns bigint[]
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.insert_event_bulk(queue_name, 'default', payloads::text[]);
end;
$$;
