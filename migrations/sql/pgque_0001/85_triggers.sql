-- sa_pgque engine, revision 0001: change-capture triggers (spec 6.9).
--
-- pgque.jsontriga(), pgque.logutriga() and pgque.sqltriga() turn row changes
-- of an application table into queue events. Attach them as row-level AFTER
-- (or BEFORE, for SKIP) triggers on INSERT/UPDATE/DELETE, or statement-level
-- on TRUNCATE, with the queue name as the first trigger argument:
--
--   create trigger orders_cdc after insert or update or delete on app.orders
--       for each row execute function pgque.jsontriga('orders_cdc');
--
-- The three functions differ only in how a row is encoded (JSON, URL-encoded
-- name=value pairs, SQL fragments). Everything else -- argument parsing, key
-- columns, filters, the ev_* overrides and the insert -- is done once, by
-- pgque._trig_capture(), which the trigger functions call with their trigger
-- context.
--
-- Privileges. Everything here is SECURITY INVOKER: a trigger runs with the
-- rights of the role performing the DML. PostgreSQL checks EXECUTE on a
-- trigger function only when the trigger is created, so jsontriga, logutriga
-- and sqltriga are granted to pgque_admin only. Functions *called* while the
-- trigger fires are checked against the DML role, which therefore needs
-- EXECUTE on pgque._trig_capture() and pgque.insert_event() (7-arg); both are
-- granted to pgque_writer. For the same reason _trig_capture does its own URL
-- encoding instead of calling the admin-only pgque._urlencode().
--
-- search_path is deliberately not pinned: the ev_type=/ev_extraN=/when=
-- expressions are the table owner's SQL and must resolve as in the session
-- doing the DML. Every object the engine itself uses is schema-qualified.
--
-- All usage errors carry SQLSTATE PQ060.

-- ---------------------------------------------------------------------------
-- pgque._urlencode(val text) -> text                    INV, STRICT, IMMUTABLE
--   URL-encode one string the way logutriga writes names and values: the
--   unreserved characters A-Z a-z 0-9 _ . - are kept, a space becomes '+',
--   every other character becomes %xx per byte of its UTF-8 encoding
--   (lowercase hex). Characters are classified by code point, never by
--   collation, so the result does not depend on the database locale.
--   _trig_capture() contains the same expression (see the file header for
--   why it cannot call this function); keep the two in step.
--   Tables: none.
-- ---------------------------------------------------------------------------
create or replace function pgque._urlencode(val text)
returns text
language sql
strict
immutable
security invoker
as $fn$
    select coalesce(pg_catalog.string_agg(
               case
                   when x.code between 48 and 57          -- 0-9
                     or x.code between 65 and 90          -- A-Z
                     or x.code between 97 and 122         -- a-z
                     or x.code in (45, 46, 95)            -- - . _
                       then s.ch
                   when x.code = 32 then '+'
                   else pg_catalog.regexp_replace(
                            pg_catalog.encode(pg_catalog.convert_to(s.ch, 'UTF8'), 'hex'),
                            '(..)', E'%\\1', 'g')
               end, '' order by s.pos), '')
      from pg_catalog.regexp_split_to_table(val, '') with ordinality as s(ch, pos)
     cross join lateral (select pg_catalog.ascii(s.ch)) as x(code)
$fn$;

-- ---------------------------------------------------------------------------
-- pgque._trig_capture(i_format, i_op, i_when, i_level, i_relid, i_argv,
--                     i_new, i_old) -> boolean                          INV
--   The body shared by the three capture triggers. Arguments are the
--   caller's trigger context: i_format is 'json' (jsontriga), 'urlenc'
--   (logutriga) or 'sql' (sqltriga); i_op, i_when, i_level, i_relid and
--   i_argv are TG_OP, TG_WHEN, TG_LEVEL, TG_RELID and TG_ARGV; i_new and
--   i_old are NEW and OLD (NULL where the trigger has none).
--
--   Steps, in order:
--     1. session_replication_role = 'local' -> do nothing at all.
--     2. Arguments: queue name first (none -> 'Trigger needs queue name'),
--        then SKIP/skip, backup, deny, ignore=, pkey=, ev_type=,
--        ev_extra1..4=, when=; anything else -> 'bad argument: <arg>'.
--     3. Operation: row-level INSERT/UPDATE/DELETE or statement-level
--        TRUNCATE, else 'TG_OP not supported: <op>'.
--     4. deny -> 'Table ''<schema>.<table>'' to queue ''<q>'': change not
--        allowed (<OP>)'.
--     5. Key columns: the pkey= list (a name the table lacks -> 'bad
--        argument: pkey=...'), else the primary key in column order. None
--        on UPDATE/DELETE -> 'Update/Delete on table without pkey'; an UPDATE
--        changing a key column -> 'primary key update not allowed'. Values
--        are compared by their text form.
--     6. An UPDATE whose changes are all in ignore= columns emits nothing.
--     7. ev_type=/ev_extraN=/when= expressions are evaluated over the row
--        (OLD for DELETE, NEW otherwise; an all-NULL row for TRUNCATE), with
--        the columns visible by name and the row aliased as the table name;
--        a field takes the expression's value cast to text (NULL included).
--        when= not true (false or NULL) -> nothing is emitted.
--     8. The row is encoded (columns in table order, minus ignore= columns
--        and the _pgq_ev_* columns); with backup, an UPDATE's OLD row is
--        encoded the same way into ev_extra2 (sqltriga: as an INSERT
--        fragment).
--     9. Event fields, later sources winning: the format's ev_type and
--        ev_extra1 = quoted <schema>.<table>; the row's _pgq_ev_type /
--        _pgq_ev_extra1..4 column values; backup (ev_extra2); the ev_*=
--        expressions. Then pgque.insert_event(7-arg) is called.
--   Returns true when the trigger must hand its row back (a row-level
--   BEFORE or INSTEAD OF trigger without SKIP), false when it must return
--   NULL.
--
--   Tables: pg_class, pg_namespace, pg_attribute, pg_index (read); the
--   queue's current event table through pgque.insert_event.
-- ---------------------------------------------------------------------------
create or replace function pgque._trig_capture(
    i_format text,
    i_op     text,
    i_when   text,
    i_level  text,
    i_relid  oid,
    i_argv   text[],
    i_new    record,
    i_old    record)
returns boolean
language plpgsql
security invoker
as $fn$
declare
    -- hand the row back (BEFORE / INSTEAD OF row trigger), unless SKIP
    v_pass      boolean := i_level = 'ROW' and i_when <> 'AFTER';
    v_queue     text;
    v_arg       text;
    v_i         integer;
    v_skip      boolean := false;
    v_backup    boolean := false;
    v_deny      boolean := false;
    v_ignore    text[] := '{}';
    v_pkey_arg  text;                       -- the pkey=... argument, as given
    v_expr      text[] := array[null, null, null, null, null]::text[];  -- ev_type, ev_extra1..4
    v_cond      text;                       -- the when= expression
    v_schema    text;
    v_table     text;
    v_fqname    text;                       -- quoted <schema>.<table>
    v_names     text[];                     -- live columns, in column order
    v_types     oid[];
    v_inc       boolean[];                  -- column goes into the payload
    v_keys      text[];                     -- key columns
    v_row       record;                     -- encoded row: OLD for DELETE, else NEW
    v_sql       text;
    v_txt       text[];                     -- v_row's columns as text
    v_json      text[];                     -- v_row's columns as JSON (jsontriga)
    v_old_txt   text[];                     -- UPDATE: OLD's columns as text
    v_old_json  text[];
    v_changed   text[];                     -- UPDATE: columns whose value changed
    v_cur_txt   text[];
    v_cur_json  text[];
    v_vals      text[];                     -- expression results; [6] = when
    v_enc       text;
    v_data      text;
    v_backup_ev text;
    v_where     text;
    v_set       text;
    v_ev        text[];                     -- ev_type, ev_extra1..4
    v_pos       integer;
begin
    -- 1. Replication in 'local' mode: the trigger does nothing.
    if pg_catalog.current_setting('session_replication_role') = 'local' then
        return v_pass;
    end if;

    -- 2. Arguments.
    if coalesce(pg_catalog.cardinality(i_argv), 0) = 0 then
        raise exception 'Trigger needs queue name' using errcode = 'PQ060';
    end if;
    v_queue := i_argv[pg_catalog.array_lower(i_argv, 1)];
    for v_i in pg_catalog.array_lower(i_argv, 1) + 1 .. pg_catalog.array_upper(i_argv, 1) loop
        v_arg := i_argv[v_i];
        if v_arg in ('SKIP', 'skip') then
            v_skip := true;
        elsif v_arg = 'backup' then
            v_backup := true;
        elsif v_arg = 'deny' then
            v_deny := true;
        elsif pg_catalog.left(v_arg, 7) = 'ignore=' then
            v_ignore := v_ignore || pg_catalog.string_to_array(pg_catalog.substr(v_arg, 8), ',');
        elsif pg_catalog.left(v_arg, 5) = 'pkey=' then
            v_pkey_arg := v_arg;
        elsif pg_catalog.left(v_arg, 8) = 'ev_type=' and pg_catalog.length(v_arg) > 8 then
            v_expr[1] := pg_catalog.substr(v_arg, 9);
        elsif v_arg ~ '^ev_extra[1-4]=.' then
            v_expr[pg_catalog.substr(v_arg, 9, 1)::integer + 1] := pg_catalog.substr(v_arg, 11);
        elsif pg_catalog.left(v_arg, 5) = 'when=' and pg_catalog.length(v_arg) > 5 then
            v_cond := pg_catalog.substr(v_arg, 6);
        else
            raise exception 'bad argument: %', v_arg using errcode = 'PQ060';
        end if;
    end loop;

    -- 3. Supported operations: row-level DML, statement-level TRUNCATE.
    if i_op not in ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
       or (i_op = 'TRUNCATE') = (i_level = 'ROW') then
        raise exception 'TG_OP not supported: %', i_op
            using errcode = 'PQ060',
                  hint = 'Fire INSERT/UPDATE/DELETE triggers FOR EACH ROW '
                         'and TRUNCATE triggers FOR EACH STATEMENT.';
    end if;

    select n.nspname, c.relname
      into v_schema, v_table
      from pg_catalog.pg_class c
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where c.oid = i_relid;
    v_fqname := pg_catalog.quote_ident(v_schema) || '.' || pg_catalog.quote_ident(v_table);

    -- 4. deny
    if v_deny then
        raise exception 'Table ''%'' to queue ''%'': change not allowed (%)', v_fqname, v_queue, i_op
            using errcode = 'PQ060';
    end if;

    -- 5. Columns and key columns.
    select coalesce(pg_catalog.array_agg(a.attname::text order by a.attnum), '{}'),
           coalesce(pg_catalog.array_agg(a.atttypid order by a.attnum), '{}')
      into v_names, v_types
      from pg_catalog.pg_attribute a
     where a.attrelid = i_relid
       and a.attnum > 0
       and not a.attisdropped;

    select pg_catalog.array_agg(not (c.n = any (v_ignore)
                                     or c.n in ('_pgq_ev_type', '_pgq_ev_extra1', '_pgq_ev_extra2',
                                                '_pgq_ev_extra3', '_pgq_ev_extra4'))
                                order by c.i)
      into v_inc
      from pg_catalog.unnest(v_names) with ordinality as c(n, i);

    if v_pkey_arg is not null then
        v_keys := pg_catalog.string_to_array(pg_catalog.substr(v_pkey_arg, 6), ',');
        if not v_keys <@ v_names then
            raise exception 'bad argument: %', v_pkey_arg using errcode = 'PQ060';
        end if;
    else
        select pg_catalog.array_agg(a.attname::text order by a.attnum)
          into v_keys
          from pg_catalog.pg_index i
          join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
         where i.indrelid = i_relid
           and i.indisprimary;
    end if;
    v_keys := coalesce(v_keys, '{}');

    if i_op in ('UPDATE', 'DELETE') and pg_catalog.cardinality(v_keys) = 0 then
        raise exception 'Update/Delete on table without pkey' using errcode = 'PQ060';
    end if;

    -- Column values, read from the row passed as $1: the text form each
    -- value's output function gives (booleans t/f, char(n) padded), NULL
    -- kept as NULL; for jsontriga also the JSON form. Identifiers are
    -- quoted, so any column name is safe.
    if i_op <> 'TRUNCATE' then
        select 'select array[' || coalesce(pg_catalog.string_agg(x.txt, ', ' order by c.i), '')
               || ']::pg_catalog.text[], '
               || case when i_format = 'json' then
                      'array[' || coalesce(pg_catalog.string_agg(
                          case when c.t::pg_catalog.regtype in (
                                        'pg_catalog.int2'::pg_catalog.regtype,
                                        'pg_catalog.int4'::pg_catalog.regtype,
                                        'pg_catalog.int8'::pg_catalog.regtype,
                                        'pg_catalog.bool'::pg_catalog.regtype,
                                        'pg_catalog.date'::pg_catalog.regtype,
                                        'pg_catalog.timestamp'::pg_catalog.regtype,
                                        'pg_catalog.timestamptz'::pg_catalog.regtype)
                               then pg_catalog.format('pg_catalog.to_json(($1).%I)', c.n)
                               else 'pg_catalog.to_json(' || x.txt || ')'
                          end || '::pg_catalog.text', ', ' order by c.i), '')
                      || ']::pg_catalog.text[]'
                  else 'null::pg_catalog.text[]'
                  end
          into v_sql
          from rows from (pg_catalog.unnest(v_names), pg_catalog.unnest(v_types))
               with ordinality as c(n, t, i)
         cross join lateral (
               -- num_nulls, not IS NULL: a composite value with only NULL
               -- fields IS NULL but is not a NULL value.
               select pg_catalog.format(
                          'case when pg_catalog.num_nulls(($1).%1$I) = 0 '
                          'then pg_catalog.format(''%%s'', ($1).%1$I) end', c.n)
               ) as x(txt);

        if i_op = 'DELETE' then
            v_row := i_old;
        else
            v_row := i_new;
        end if;
        execute v_sql into v_txt, v_json using v_row;
        if i_op = 'UPDATE' then
            execute v_sql into v_old_txt, v_old_json using i_old;

            -- columns whose text form differs between OLD and NEW
            select coalesce(pg_catalog.array_agg(c.n), '{}')
              into v_changed
              from rows from (pg_catalog.unnest(v_names), pg_catalog.unnest(v_txt),
                              pg_catalog.unnest(v_old_txt)) as c(n, nv, ov)
             where c.nv is distinct from c.ov;

            if v_changed && v_keys then
                raise exception 'primary key update not allowed' using errcode = 'PQ060';
            end if;

            -- 6. Only ignored columns changed: nothing to report. (An UPDATE
            --    that changes nothing at all is still reported.)
            if pg_catalog.cardinality(v_changed) > 0 and v_changed <@ v_ignore then
                return v_pass and not v_skip;
            end if;
        end if;
    end if;

    -- 7. ev_type=, ev_extra1..4= and when= expressions, in one query over
    --    the row. For TRUNCATE there is no row: the columns read as NULL.
    if v_cond is not null or pg_catalog.cardinality(pg_catalog.array_remove(v_expr, null)) > 0 then
        select 'select array['
               || pg_catalog.string_agg(coalesce('(' || e.x || ')::pg_catalog.text', 'null'), ', '
                                        order by e.i)
               || ', ' || coalesce('((' || v_cond || ')::pg_catalog.bool)::pg_catalog.text', 'null')
               || ']::pg_catalog.text[] from (select ('
               || case when i_op = 'TRUNCATE'
                       then pg_catalog.format('null::%I.%I', v_schema, v_table)
                       else '$1'
                  end
               || ').*) as ' || pg_catalog.quote_ident(v_table)
          into v_sql
          from pg_catalog.unnest(v_expr) with ordinality as e(x, i);

        if i_op = 'TRUNCATE' then
            execute v_sql into v_vals;
        else
            execute v_sql into v_vals using v_row;
        end if;

        if v_cond is not null and v_vals[6] is distinct from 'true' then
            return v_pass and not v_skip;
        end if;
    end if;

    -- 8. Encode. The loop encodes a whole row in the table's format: pass 1
    --    the event's row (not needed for sqltriga UPDATE/DELETE, which are
    --    built below), pass 2 the OLD row for backup.
    if i_op = 'TRUNCATE' then
        v_data := case when i_format = 'json' then '{}' else '' end;
    else
        for v_i in case when i_format = 'sql' and i_op <> 'INSERT' then 2 else 1 end
                .. case when v_backup and i_op = 'UPDATE' then 2 else 1 end loop
            if v_i = 1 then
                v_cur_txt := v_txt;
                v_cur_json := v_json;
            else
                v_cur_txt := v_old_txt;
                v_cur_json := v_old_json;
            end if;

            if i_format = 'json' then
                -- {"col":value,...}
                select '{' || coalesce(pg_catalog.string_agg(
                           pg_catalog.to_json(c.n)::pg_catalog.text || ':' || coalesce(c.j, 'null'),
                           ',' order by c.i), '') || '}'
                  into v_enc
                  from rows from (pg_catalog.unnest(v_names), pg_catalog.unnest(v_cur_json),
                                  pg_catalog.unnest(v_inc)) with ordinality as c(n, j, inc, i)
                 where c.inc;
            elsif i_format = 'urlenc' then
                -- name=value&...; a NULL value is written as the bare name.
                -- The URL encoding is the one of pgque._urlencode().
                select coalesce(pg_catalog.string_agg(e.name || coalesce('=' || e.val, ''), '&'
                                                      order by e.i), '')
                  into v_enc
                  from (select c.i,
                               pg_catalog.string_agg(u.enc, '') filter (where p.part = 1) as name,
                               pg_catalog.string_agg(u.enc, '') filter (where p.part = 2) as val
                          from rows from (pg_catalog.unnest(v_names), pg_catalog.unnest(v_cur_txt),
                                          pg_catalog.unnest(v_inc)) with ordinality as c(n, v, inc, i)
                         cross join lateral (values (1, c.n), (2, c.v)) as p(part, str)
                         cross join lateral (
                             select case when p.str is null then null else coalesce(
                                    pg_catalog.string_agg(
                                        case
                                            when x.code between 48 and 57
                                              or x.code between 65 and 90
                                              or x.code between 97 and 122
                                              or x.code in (45, 46, 95)
                                                then s.ch
                                            when x.code = 32 then '+'
                                            else pg_catalog.regexp_replace(
                                                     pg_catalog.encode(
                                                         pg_catalog.convert_to(s.ch, 'UTF8'), 'hex'),
                                                     '(..)', E'%\\1', 'g')
                                        end, '' order by s.pos), '') end
                               from pg_catalog.regexp_split_to_table(p.str, '')
                                    with ordinality as s(ch, pos)
                              cross join lateral (select pg_catalog.ascii(s.ch)) as x(code)
                         ) as u(enc)
                         where c.inc
                         group by c.i) as e;
            else
                -- (col,...) values ('literal',...)
                select '(' || coalesce(pg_catalog.string_agg(pg_catalog.quote_ident(c.n), ','
                                                             order by c.i), '')
                       || ') values ('
                       || coalesce(pg_catalog.string_agg(
                              coalesce(pg_catalog.quote_literal(c.v), 'null'), ',' order by c.i), '')
                       || ')'
                  into v_enc
                  from rows from (pg_catalog.unnest(v_names), pg_catalog.unnest(v_cur_txt),
                                  pg_catalog.unnest(v_inc)) with ordinality as c(n, v, inc, i)
                 where c.inc;
            end if;

            if v_i = 1 then
                v_data := v_enc;
            else
                v_backup_ev := v_enc;
            end if;
        end loop;

        if i_format = 'sql' and i_op <> 'INSERT' then
            -- key conditions: key='literal' / key is null, joined by ' and '
            select pg_catalog.string_agg(
                       pg_catalog.quote_ident(k.n)
                       || coalesce('=' || pg_catalog.quote_literal(
                                              v_txt[pg_catalog.array_position(v_names, k.n)]),
                                   ' is null'),
                       ' and ' order by k.o)
              into v_where
              from pg_catalog.unnest(v_keys) with ordinality as k(n, o);

            if i_op = 'DELETE' then
                v_data := v_where;
            else
                -- changed non-key columns; if there are none, the first key
                select pg_catalog.string_agg(
                           pg_catalog.quote_ident(c.n) || '='
                           || coalesce(pg_catalog.quote_literal(c.v), 'null'),
                           ',' order by c.i)
                  into v_set
                  from rows from (pg_catalog.unnest(v_names), pg_catalog.unnest(v_txt),
                                  pg_catalog.unnest(v_inc)) with ordinality as c(n, v, inc, i)
                 where c.inc
                   and c.n = any (v_changed)
                   and not c.n = any (v_keys);
                if v_set is null then
                    v_set := pg_catalog.quote_ident(v_keys[1]) || '='
                             || coalesce(pg_catalog.quote_literal(
                                    v_txt[pg_catalog.array_position(v_names, v_keys[1])]), 'null');
                end if;
                v_data := v_set || ' where ' || v_where;
            end if;
        end if;
    end if;

    -- 9. Event fields: defaults, then _pgq_ev_* columns, backup, expressions.
    v_ev := array[
        case
            when i_format = 'json' then
                '{"op":' || pg_catalog.to_json(i_op)::pg_catalog.text
                || ',"table":' || pg_catalog.array_to_json(array[v_schema, v_table])::pg_catalog.text
                || ',"pkey":' || pg_catalog.array_to_json(v_keys)::pg_catalog.text || '}'
            when i_op = 'TRUNCATE' then 'R'
            when i_format = 'urlenc' then
                pg_catalog.left(i_op, 1) || ':' || pg_catalog.array_to_string(v_keys, ',')
            else pg_catalog.left(i_op, 1)
        end,
        v_fqname, null, null, null];

    if i_op <> 'TRUNCATE' then
        for v_i in 1 .. 5 loop
            v_pos := pg_catalog.array_position(v_names,
                         case when v_i = 1 then '_pgq_ev_type' else '_pgq_ev_extra' || (v_i - 1) end);
            if v_pos is not null then
                v_ev[v_i] := v_txt[v_pos];
            end if;
        end loop;
    end if;

    if v_backup and i_op = 'UPDATE' then
        v_ev[3] := v_backup_ev;
    end if;

    for v_i in 1 .. 5 loop
        if v_expr[v_i] is not null then
            v_ev[v_i] := v_vals[v_i];
        end if;
    end loop;

    perform pgque.insert_event(v_queue, v_ev[1], v_data, v_ev[2], v_ev[3], v_ev[4], v_ev[5]);

    return v_pass and not v_skip;
end;
$fn$;

-- ---------------------------------------------------------------------------
-- pgque.jsontriga() -> trigger                                            INV
--   Change capture with JSON payloads. ev_type is
--   {"op":"<OP>","table":["<schema>","<table>"],"pkey":["<key>",...]}, ev_data
--   the row as a compact JSON object (int2/4/8, boolean, date, timestamp and
--   timestamptz as JSON values, anything else as the string of its text
--   form, NULL as null; TRUNCATE -> {}). Arguments and behaviour: see
--   pgque._trig_capture().
--   Tables: the queue's current event table (through insert_event).
-- ---------------------------------------------------------------------------
create or replace function pgque.jsontriga()
returns trigger
language plpgsql
security invoker
as $fn$
begin
    if pgque._trig_capture('json', TG_OP, TG_WHEN, TG_LEVEL, TG_RELID, TG_ARGV, NEW, OLD) then
        if TG_OP = 'DELETE' then
            return OLD;
        end if;
        return NEW;
    end if;
    return null;
end;
$fn$;

-- ---------------------------------------------------------------------------
-- pgque.logutriga() -> trigger                                            INV
--   Change capture with URL-encoded payloads. ev_type is I:<keys>, U:<keys>
--   or D:<keys> (comma-separated key column names), R for TRUNCATE; ev_data
--   is name=value pairs joined by '&', both URL-encoded like
--   pgque._urlencode(), a NULL value written as the bare name, booleans as
--   t/f (TRUNCATE -> empty string). Arguments and behaviour: see
--   pgque._trig_capture().
--   Tables: the queue's current event table (through insert_event).
-- ---------------------------------------------------------------------------
create or replace function pgque.logutriga()
returns trigger
language plpgsql
security invoker
as $fn$
begin
    if pgque._trig_capture('urlenc', TG_OP, TG_WHEN, TG_LEVEL, TG_RELID, TG_ARGV, NEW, OLD) then
        if TG_OP = 'DELETE' then
            return OLD;
        end if;
        return NEW;
    end if;
    return null;
end;
$fn$;

-- ---------------------------------------------------------------------------
-- pgque.sqltriga() -> trigger                                             INV
--   Change capture with SQL-fragment payloads. ev_type is I, U, D (R for
--   TRUNCATE); ev_data is
--     INSERT:   (<col>,...) values (<literal>,...)
--     UPDATE:   <col>=<literal>,... where <key>=<literal> and ...
--               (changed non-key columns; none changed -> the first key)
--     DELETE:   <key>=<literal> and ...
--     TRUNCATE: empty string
--   with values as quoted SQL literals (NULL as null, a NULL key as
--   "<key> is null") and names quoted as identifiers where needed.
--   Arguments and behaviour: see pgque._trig_capture().
--   Tables: the queue's current event table (through insert_event).
-- ---------------------------------------------------------------------------
create or replace function pgque.sqltriga()
returns trigger
language plpgsql
security invoker
as $fn$
begin
    if pgque._trig_capture('sql', TG_OP, TG_WHEN, TG_LEVEL, TG_RELID, TG_ARGV, NEW, OLD) then
        if TG_OP = 'DELETE' then
            return OLD;
        end if;
        return NEW;
    end if;
    return null;
end;
$fn$;
