-- sa_pgque engine, revision 0002: cooperative consumers.
--
-- A cooperative group is one logical consumer whose cursor is shared by
-- several workers. The group's own subscription row (sub_role 'coop_main',
-- consumer <c>) owns the group cursor and never holds a batch. Each worker
-- is a member row (sub_role 'coop_member', consumer <c>.<s>) that carries
-- the main row's sub_id, so retries parked by any member are visible to
-- all of them and dead letters go to the main consumer.
--
-- Allocation hands each tick window to exactly one member: it locks the
-- main row, then the member row, takes the window after the group cursor
-- and moves the group cursor past it at once; the member row records the
-- window (sub_last_tick = start, sub_next_tick = end, sub_batch). ack
-- (finish_batch, revision 0001) then only releases the member. Because the
-- main row stays locked until the caller's transaction ends, allocations of
-- one group are serialized: the next sibling gets the next window only after
-- the previous allocating transaction committed (or rolled back, which puts
-- the window back). Keep transactions around receive_coop short, or commit
-- the allocation before long handler work, to let siblings run in parallel.
--
-- A member that holds a window and goes silent can have it re-issued to a
-- sibling (stale takeover, i_dead_interval) under a fresh batch id; the old
-- id stops working. Lock order everywhere: main consumer row, main
-- subscription, member consumer row, member subscription, then victims
-- with SKIP LOCKED.
--
-- The core (revision 0001) already knows the roles: legacy next_batch* and
-- receive refuse mains with members and members (_coop_guard), finish_batch
-- releases members, unregister_consumer removes idle members, event_dead
-- attributes a member's dead letters to its main, rotation ignores idle
-- members' NULL cursors.

-- ---------------------------------------------------------------------------
-- pgque._validate_coop_names(i_queue text, i_consumer text, i_subconsumer text) -> void
--   The name checks shared by the cooperative entry points, in this order:
--   empty queue, consumer, subconsumer; a dot in consumer, in subconsumer
--   (member consumers are named <consumer>.<subconsumer>, and clients split
--   that name on its last dot).
--   Errors (PQ010): queue name must not be empty; consumer name must not be
--   empty; subconsumer name must not be empty; cooperative consumer name
--   must not contain dot: <c>; cooperative subconsumer name must not contain
--   dot: <s>.  Tables: none.
-- ---------------------------------------------------------------------------
create or replace function pgque._validate_coop_names(i_queue text, i_consumer text, i_subconsumer text)
returns void
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    if i_queue is null or i_queue = '' then
        raise exception 'queue name must not be empty' using errcode = 'PQ010';
    end if;
    if i_consumer is null or i_consumer = '' then
        raise exception 'consumer name must not be empty' using errcode = 'PQ010';
    end if;
    if i_subconsumer is null or i_subconsumer = '' then
        raise exception 'subconsumer name must not be empty' using errcode = 'PQ010';
    end if;
    if strpos(i_consumer, '.') > 0 then
        raise exception 'cooperative consumer name must not contain dot: %', i_consumer using errcode = 'PQ010';
    end if;
    if strpos(i_subconsumer, '.') > 0 then
        raise exception 'cooperative subconsumer name must not contain dot: %', i_subconsumer
            using errcode = 'PQ010';
    end if;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque._clear_member_cursor(p_queue_id integer, p_consumer_id integer) -> void
--   Release a cooperative member: clear its start tick, end tick and batch
--   and set sub_active = now(). Its batch id stops working. Only rows with
--   role coop_member are touched. The caller holds the row lock.
--   Tables: subscription.
-- ---------------------------------------------------------------------------
create or replace function pgque._clear_member_cursor(p_queue_id integer, p_consumer_id integer)
returns void
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    update pgque.subscription
       set sub_last_tick = null, sub_next_tick = null, sub_batch = null, sub_active = now()
     where sub_queue = p_queue_id and sub_consumer = p_consumer_id and sub_role = 'coop_member';
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.register_subconsumer(i_queue, i_consumer, i_subconsumer,
--                            i_convert_normal default false) -> integer
--   Make <consumer> a cooperative main on the queue (created at the latest
--   tick when it has no subscription; an idle normal subscription is
--   converted, keeping its cursor, only when i_convert_normal is true) and
--   register the member <consumer>.<subconsumer> in its group. 1 when the
--   member was added, 0 when it was already registered (its sub_active is
--   refreshed: every cooperative call is a heartbeat).
--   Errors: the name checks (PQ010); Event queue not created yet (PQ001);
--   No ticks for this queue.  Please run ticker on database. (PQ040);
--   consumer <c> on queue <q> is already a normal consumer; explicit
--   conversion is required / cannot convert active normal consumer <c> on
--   queue <q> to cooperative main / consumer <c> on queue <q> is not a
--   cooperative main consumer / consumer name <c.s> on queue <q> is already
--   registered incompatibly (PQ030).
--   Calls: _validate_coop_names, _consumer_id.
--   Tables: queue, consumer, subscription, tick.
-- ---------------------------------------------------------------------------
create or replace function pgque.register_subconsumer(
    i_queue text, i_consumer text, i_subconsumer text, i_convert_normal boolean default false)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_queue_id integer;
    v_main_co integer;
    v_main record;
    v_tick bigint;
    v_member_name text := i_consumer || '.' || i_subconsumer;
    v_member_co integer;
    v_member record;
begin
    perform pgque._validate_coop_names(i_queue, i_consumer, i_subconsumer);
    select q.queue_id into v_queue_id from pgque.queue q where q.queue_name = i_queue;
    if not found then
        raise exception 'Event queue not created yet' using errcode = 'PQ001';
    end if;

    v_main_co := pgque._consumer_id(i_consumer);
    select s.sub_id, s.sub_role, s.sub_batch into v_main
      from pgque.subscription s
     where s.sub_queue = v_queue_id and s.sub_consumer = v_main_co
       for update;
    if not found then
        select max(t.tick_id) into v_tick from pgque.tick t where t.tick_queue = v_queue_id;
        if v_tick is null then
            raise exception 'No ticks for this queue.  Please run ticker on database.' using errcode = 'PQ040';
        end if;
        insert into pgque.subscription (sub_queue, sub_consumer, sub_last_tick, sub_role)
        values (v_queue_id, v_main_co, v_tick, 'coop_main')
        returning sub_id, sub_role, sub_batch into v_main;
    elsif v_main.sub_role = 'normal' then
        if not coalesce(i_convert_normal, false) then
            raise exception 'consumer % on queue % is already a normal consumer; explicit conversion is required',
                i_consumer, i_queue using errcode = 'PQ030';
        end if;
        if v_main.sub_batch is not null then
            raise exception 'cannot convert active normal consumer % on queue % to cooperative main',
                i_consumer, i_queue using errcode = 'PQ030';
        end if;
        update pgque.subscription
           set sub_role = 'coop_main', sub_active = now()
         where sub_queue = v_queue_id and sub_consumer = v_main_co;
    elsif v_main.sub_role = 'coop_member' then
        raise exception 'consumer % on queue % is not a cooperative main consumer', i_consumer, i_queue
            using errcode = 'PQ030';
    end if;

    v_member_co := pgque._consumer_id(v_member_name);
    select s.sub_id, s.sub_role into v_member
      from pgque.subscription s
     where s.sub_queue = v_queue_id and s.sub_consumer = v_member_co
       for update;
    if found then
        if v_member.sub_role <> 'coop_member' or v_member.sub_id <> v_main.sub_id then
            raise exception 'consumer name % on queue % is already registered incompatibly', v_member_name, i_queue
                using errcode = 'PQ030';
        end if;
        update pgque.subscription
           set sub_active = now()
         where sub_queue = v_queue_id and sub_consumer = v_member_co;
        return 0;
    end if;

    insert into pgque.subscription (sub_id, sub_queue, sub_consumer, sub_last_tick, sub_active,
                                    sub_batch, sub_next_tick, sub_role)
    values (v_main.sub_id, v_queue_id, v_member_co, null, now(), null, null, 'coop_member');
    return 1;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.subscribe_subconsumer(i_queue, i_consumer, i_subconsumer,
--                             i_convert_normal default false) -> integer
--   register_subconsumer under its modern name.
-- ---------------------------------------------------------------------------
create or replace function pgque.subscribe_subconsumer(
    i_queue text, i_consumer text, i_subconsumer text, i_convert_normal boolean default false)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.register_subconsumer(i_queue, i_consumer, i_subconsumer, i_convert_normal);
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.unregister_subconsumer(i_queue, i_consumer, i_subconsumer,
--                              i_batch_handling default 0) -> integer
--   Remove member <consumer>.<subconsumer> from its group. The group cursor
--   already moved past a window the member holds, so that window must not
--   be dropped: with i_batch_handling = 0 a member holding a batch is
--   refused; with 1 every event of its batch goes the way nack sends it
--   (dead letter with reason 'subconsumer unregistered' once the queue's
--   max_retries, default 5, is spent, else a retry due in 60 seconds, owned
--   by the group), all or nothing, and the batch id stops working. The
--   member's consumer row goes when it has no subscription left; when the
--   last member leaves, the main turns back into a normal consumer.
--   Returns 1, or 0 when the queue, the main, its coop_main subscription,
--   the member consumer or its member subscription does not exist.
--   Errors: the name checks and unsupported batch_handling value: <n>
--   (PQ010); cannot unregister active cooperative subconsumer <q>/<c>/<s>
--   without batch_handling = 1 (PQ031).
--   Calls: _validate_coop_names, batch_event_sql, event_dead, _park_retry,
--   _clear_member_cursor, _forget_consumer.
--   Tables: queue, consumer, subscription, retry_queue, dead_letter.
-- ---------------------------------------------------------------------------
create or replace function pgque.unregister_subconsumer(
    i_queue text, i_consumer text, i_subconsumer text, i_batch_handling integer default 0)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_queue record;
    v_main_co integer;
    v_main record;
    v_member_co integer;
    v_member record;
    v_event pgque.event_template;
    v_retry_at timestamptz := now() + interval '60 seconds';
begin
    perform pgque._validate_coop_names(i_queue, i_consumer, i_subconsumer);
    if i_batch_handling is null or i_batch_handling not in (0, 1) then
        raise exception 'unsupported batch_handling value: %', i_batch_handling using errcode = 'PQ010';
    end if;

    select q.queue_id, coalesce(q.queue_max_retries, 5) as max_retries into v_queue
      from pgque.queue q where q.queue_name = i_queue;
    if not found then
        return 0;
    end if;
    select c.co_id into v_main_co from pgque.consumer c where c.co_name = i_consumer for update;
    if not found then
        return 0;
    end if;
    select s.sub_id into v_main
      from pgque.subscription s
     where s.sub_queue = v_queue.queue_id and s.sub_consumer = v_main_co and s.sub_role = 'coop_main'
       for update;
    if not found then
        return 0;
    end if;
    select c.co_id into v_member_co
      from pgque.consumer c where c.co_name = i_consumer || '.' || i_subconsumer
       for update;
    if not found then
        return 0;
    end if;
    select s.sub_batch into v_member
      from pgque.subscription s
     where s.sub_queue = v_queue.queue_id and s.sub_consumer = v_member_co
       and s.sub_id = v_main.sub_id and s.sub_role = 'coop_member'
       for update;
    if not found then
        return 0;
    end if;

    if v_member.sub_batch is not null then
        if i_batch_handling = 0 then
            raise exception 'cannot unregister active cooperative subconsumer %/%/% without batch_handling = 1',
                i_queue, i_consumer, i_subconsumer using errcode = 'PQ031';
        end if;
        for v_event in execute pgque.batch_event_sql(v_member.sub_batch) loop
            if coalesce(v_event.ev_retry, 0) >= v_queue.max_retries then
                perform pgque.event_dead(v_member.sub_batch, v_event.ev_id, 'subconsumer unregistered',
                                         v_event.ev_time, v_event.ev_txid, v_event.ev_retry, v_event.ev_type,
                                         v_event.ev_data, v_event.ev_extra1, v_event.ev_extra2,
                                         v_event.ev_extra3, v_event.ev_extra4);
            else
                perform pgque._park_retry(v_queue.queue_id, v_main.sub_id, v_retry_at, v_event);
            end if;
        end loop;
        perform pgque._clear_member_cursor(v_queue.queue_id, v_member_co);
    end if;

    delete from pgque.subscription where sub_queue = v_queue.queue_id and sub_consumer = v_member_co;
    perform pgque._forget_consumer(v_member_co);
    update pgque.subscription
       set sub_role = 'normal', sub_active = now()
     where sub_queue = v_queue.queue_id and sub_consumer = v_main_co
       and not exists (select 1 from pgque.subscription m
                        where m.sub_queue = v_queue.queue_id and m.sub_id = v_main.sub_id
                          and m.sub_role = 'coop_member');
    return 1;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.unsubscribe_subconsumer(i_queue, i_consumer, i_subconsumer,
--                               i_batch_handling default 0) -> integer
--   unregister_subconsumer under its modern name.
-- ---------------------------------------------------------------------------
create or replace function pgque.unsubscribe_subconsumer(
    i_queue text, i_consumer text, i_subconsumer text, i_batch_handling integer default 0)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return pgque.unregister_subconsumer(i_queue, i_consumer, i_subconsumer, i_batch_handling);
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.next_batch_custom(i_queue, i_consumer, i_subconsumer, i_min_lag,
--     i_min_count, i_min_interval, i_dead_interval default NULL,
--     OUT batch_id, OUT prev_tick_id, OUT next_tick_id) -> record
--   Cooperative allocation for member <consumer>.<subconsumer>, registering
--   it (and the main) first if needed. A member that holds a batch gets it
--   again. Otherwise, with i_dead_interval, a sibling that holds a batch and
--   was last active before now() - i_dead_interval (oldest first, ties by
--   consumer id, rows locked by others skipped) loses its window to the
--   caller under a fresh batch id. Otherwise the window after the group
--   cursor is chosen as the legacy next_batch_custom chooses it (next tick,
--   or find_tick_helper for i_min_count / i_min_interval; i_min_lag refuses
--   a too young end tick), the group cursor moves to its end at once and the
--   member records (start, end, batch). All three outputs NULL when no
--   window is ready. The main row stays locked until the caller's
--   transaction ends, so one group allocates one window at a time.
--   Errors: those of register_subconsumer; cooperative main consumer not
--   found: <q>/<c> and cooperative subconsumer not found: <q>/<c>/<s>
--   (PQ002); cooperative main consumer <q>/<c> has an unexpected active
--   batch <id>, PgQ corruption: cooperative main consumer <c> on queue <q>
--   has no cursor / does not see tick <t> (PQ040).
--   Calls: register_subconsumer, _clear_member_cursor, find_tick_helper.
--   Tables: queue, consumer, subscription, tick.
-- ---------------------------------------------------------------------------
create or replace function pgque.next_batch_custom(
    i_queue text, i_consumer text, i_subconsumer text,
    i_min_lag interval, i_min_count integer, i_min_interval interval,
    i_dead_interval interval default null,
    out batch_id bigint, out prev_tick_id bigint, out next_tick_id bigint)
returns record
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_main record;
    v_member record;
    v_victim record;
    v_cursor record;
    v_end record;
begin
    perform pgque.register_subconsumer(i_queue, i_consumer, i_subconsumer, false);

    select s.sub_queue, s.sub_consumer, s.sub_id, s.sub_last_tick, s.sub_batch into v_main
      from pgque.queue q
      join pgque.subscription s on s.sub_queue = q.queue_id
      join pgque.consumer c on c.co_id = s.sub_consumer
     where q.queue_name = i_queue and c.co_name = i_consumer and s.sub_role = 'coop_main'
       for update of s;
    if not found then
        raise exception 'cooperative main consumer not found: %/%', i_queue, i_consumer using errcode = 'PQ002';
    end if;
    select s.sub_consumer, s.sub_last_tick, s.sub_next_tick, s.sub_batch into v_member
      from pgque.subscription s
      join pgque.consumer c on c.co_id = s.sub_consumer
     where s.sub_queue = v_main.sub_queue and s.sub_id = v_main.sub_id and s.sub_role = 'coop_member'
       and c.co_name = i_consumer || '.' || i_subconsumer
       for update of s;
    if not found then
        raise exception 'cooperative subconsumer not found: %/%/%', i_queue, i_consumer, i_subconsumer
            using errcode = 'PQ002';
    end if;

    -- 1. the caller's own open batch, again
    if v_member.sub_batch is not null then
        update pgque.subscription set sub_active = now()
         where sub_queue = v_main.sub_queue and sub_consumer = v_member.sub_consumer;
        batch_id := v_member.sub_batch;
        prev_tick_id := v_member.sub_last_tick;
        next_tick_id := v_member.sub_next_tick;
        return;
    end if;

    -- 2. stale takeover: re-issue a silent sibling's window under a new id
    if i_dead_interval is not null then
        select s.sub_consumer, s.sub_last_tick, s.sub_next_tick into v_victim
          from pgque.subscription s
         where s.sub_queue = v_main.sub_queue and s.sub_id = v_main.sub_id and s.sub_role = 'coop_member'
           and s.sub_consumer <> v_member.sub_consumer
           and s.sub_batch is not null
           and s.sub_active < now() - i_dead_interval
         order by s.sub_active, s.sub_consumer
         limit 1
           for update skip locked;
        if found then
            batch_id := nextval('pgque.batch_id_seq');
            perform pgque._clear_member_cursor(v_main.sub_queue, v_victim.sub_consumer);
            update pgque.subscription
               set sub_last_tick = v_victim.sub_last_tick, sub_next_tick = v_victim.sub_next_tick,
                   sub_batch = batch_id, sub_active = now()
             where sub_queue = v_main.sub_queue and sub_consumer = v_member.sub_consumer;
            prev_tick_id := v_victim.sub_last_tick;
            next_tick_id := v_victim.sub_next_tick;
            return;
        end if;
    end if;

    -- 3. the next window after the group cursor
    if v_main.sub_batch is not null then
        raise exception 'cooperative main consumer %/% has an unexpected active batch %',
            i_queue, i_consumer, v_main.sub_batch using errcode = 'PQ040';
    end if;
    if v_main.sub_last_tick is null then
        raise exception 'PgQ corruption: cooperative main consumer % on queue % has no cursor',
            i_consumer, i_queue using errcode = 'PQ040';
    end if;
    select t.tick_id, t.tick_time, t.tick_event_seq into v_cursor
      from pgque.tick t where t.tick_queue = v_main.sub_queue and t.tick_id = v_main.sub_last_tick;
    if not found then
        raise exception 'PgQ corruption: cooperative main consumer % on queue % does not see tick %',
            i_consumer, i_queue, v_main.sub_last_tick using errcode = 'PQ040';
    end if;

    if i_min_count is null and i_min_interval is null then
        select t.tick_id as next_tick_id, t.tick_time as next_tick_time into v_end
          from pgque.tick t
         where t.tick_queue = v_main.sub_queue and t.tick_id > v_cursor.tick_id
         order by t.tick_id
         limit 1;
    else
        select h.next_tick_id, h.next_tick_time into v_end
          from pgque.find_tick_helper(v_main.sub_queue, v_cursor.tick_id, v_cursor.tick_time,
                                      v_cursor.tick_event_seq, i_min_count, i_min_interval) h;
    end if;
    if v_end.next_tick_id is null
       or (i_min_lag is not null and v_end.next_tick_time > now() - i_min_lag) then
        return;
    end if;

    batch_id := nextval('pgque.batch_id_seq');
    update pgque.subscription
       set sub_last_tick = v_end.next_tick_id, sub_active = now()
     where sub_queue = v_main.sub_queue and sub_consumer = v_main.sub_consumer;
    update pgque.subscription
       set sub_last_tick = v_cursor.tick_id, sub_next_tick = v_end.next_tick_id,
           sub_batch = batch_id, sub_active = now()
     where sub_queue = v_main.sub_queue and sub_consumer = v_member.sub_consumer;
    prev_tick_id := v_cursor.tick_id;
    next_tick_id := v_end.next_tick_id;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.next_batch(i_queue, i_consumer, i_subconsumer, i_dead_interval default NULL) -> bigint
--   batch_id of the cooperative next_batch_custom without size or lag
--   constraints; NULL when no window is ready.
-- ---------------------------------------------------------------------------
create or replace function pgque.next_batch(
    i_queue text, i_consumer text, i_subconsumer text, i_dead_interval interval default null)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
begin
    return (pgque.next_batch_custom(i_queue, i_consumer, i_subconsumer, null, null, null, i_dead_interval)).batch_id;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.receive_coop(i_queue, i_consumer, i_subconsumer, i_max_return default 100,
--                    i_dead_interval default NULL) -> setof pgque.message
--   receive for a cooperative member: the events of its batch (a new window,
--   a stale sibling's with i_dead_interval, or the one it still holds), in
--   ev_id order, at most i_max_return of them (NULL: no limit). An empty
--   window is finished here and yields no rows, so an idle member never
--   holds a batch. Registers the member (and main) on first use.
--   Errors: pgque.receive_coop: max_return must be >= 1, got <n> (PQ010,
--   checked before anything else); those of the cooperative next_batch.
--   Calls: next_batch (cooperative), _batch_messages.
-- ---------------------------------------------------------------------------
create or replace function pgque.receive_coop(
    i_queue text, i_consumer text, i_subconsumer text,
    i_max_return integer default 100, i_dead_interval interval default null)
returns setof pgque.message
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_batch_id bigint;
begin
    if i_max_return < 1 then
        raise exception 'pgque.receive_coop: max_return must be >= 1, got %', i_max_return using errcode = 'PQ010';
    end if;
    v_batch_id := pgque.next_batch(i_queue, i_consumer, i_subconsumer, i_dead_interval);
    if v_batch_id is not null then
        return query select * from pgque._batch_messages(v_batch_id, i_max_return);
    end if;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.touch_subconsumer(i_queue, i_consumer, i_subconsumer) -> integer
--   Heartbeat of a long-running member: sub_active = clock_timestamp() on
--   member <consumer>.<subconsumer> of the queue, so that siblings do not
--   take its window over. Never creates anything, never touches batch
--   state. Returns the number of rows updated (1, or 0 when not registered).
--   Errors: the name checks (PQ010).
--   Calls: _validate_coop_names.  Tables: queue, consumer, subscription.
-- ---------------------------------------------------------------------------
create or replace function pgque.touch_subconsumer(i_queue text, i_consumer text, i_subconsumer text)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_touched integer;
begin
    perform pgque._validate_coop_names(i_queue, i_consumer, i_subconsumer);
    update pgque.subscription s
       set sub_active = clock_timestamp()
      from pgque.queue q, pgque.consumer c
     where q.queue_name = i_queue
       and c.co_name = i_consumer || '.' || i_subconsumer
       and s.sub_queue = q.queue_id and s.sub_consumer = c.co_id
       and s.sub_role = 'coop_member';
    get diagnostics v_touched = row_count;
    return v_touched;
end;
$$;
