-- sa_pgque engine, revision 0003: idempotent send (spec 6.10, 7.11).
--
-- A producer that may repeat itself (a retried HTTP request, a re-run job)
-- sends with a key; the first send with a key appends the event and claims
-- the key for a time to live, later sends with the key append nothing and
-- report the first one's event id. The claim and the append commit or roll
-- back together, so a failed send leaves the key free.
--
-- Concurrency: the claim is an INSERT on idem's primary key. A second
-- transaction claiming the same key waits for the first; when the first
-- commits it sees the live claim and reports that event (deduped), when the
-- first rolls back it claims the key itself. Under REPEATABLE READ or
-- SERIALIZABLE the waiting transaction fails with 40001 instead (the claim
-- was made after its snapshot); retrying it then reports the first event.
--
-- Expired claims are removed by maint_idem, which send_idem registers as a
-- per-queue extra-maintenance hook (queue_extra_maint) so that every
-- maint() pass runs it.

-- ---------------------------------------------------------------------------
-- pgque.send_idem(i_queue text, i_type text, i_payload text, i_idem_key text,
--                 i_ttl interval default '1 hour', i_partition_key text default null)
--   -> table(event_id bigint, deduped boolean)
--   Append one event unless i_idem_key is already claimed on the queue.
--   New key (or expired claim, reused in place): append with
--   insert_event(queue, type, payload, i_partition_key, i_idem_key, NULL,
--   NULL), claim the key until now() + i_ttl, return (new id, false).
--   Live claim: append nothing, return (the claim's event id, true); a
--   duplicate does not extend the window.
--   On first use per queue, adds pgque.maint_idem to queue_extra_maint.
--   That registration locks the queue row until the transaction ends (only
--   once per queue); it is skipped when another transaction holds the row,
--   so it never waits and cannot deadlock, and a later call registers.
--   Errors: idem_key must not be null; ttl must be a positive interval
--   (PQ010); queue not found: <q> (PQ001); insert_event's errors.
--   Calls: insert_event.  Tables: queue, idem.
-- ---------------------------------------------------------------------------
create or replace function pgque.send_idem(
    i_queue text, i_type text, i_payload text, i_idem_key text,
    i_ttl interval default '1 hour', i_partition_key text default null)
returns table (event_id bigint, deduped boolean)
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_queue_id integer;
    v_hooks text[];
    v_claim pgque.idem;
    v_claimed boolean;
    v_event_id bigint;
begin
    if i_idem_key is null then
        raise exception 'idem_key must not be null' using errcode = 'PQ010';
    end if;
    if i_ttl is null or i_ttl <= interval '0' then
        raise exception 'ttl must be a positive interval' using errcode = 'PQ010';
    end if;
    select q.queue_id, q.queue_extra_maint into v_queue_id, v_hooks
      from pgque.queue q where q.queue_name = i_queue;
    if not found then
        raise exception 'queue not found: %', i_queue using errcode = 'PQ001';
    end if;

    if not coalesce('pgque.maint_idem' = any(v_hooks), false) then
        perform 1 from pgque.queue q
         where q.queue_id = v_queue_id
           and not coalesce('pgque.maint_idem' = any(q.queue_extra_maint), false)
           for no key update skip locked;
        if found then
            update pgque.queue q
               set queue_extra_maint = array_append(coalesce(q.queue_extra_maint, '{}'), 'pgque.maint_idem')
             where q.queue_id = v_queue_id;
        end if;
    end if;

    -- A live claim that is already visible (committed, or made by this
    -- transaction) answers without taking any lock.
    select * into v_claim from pgque.idem i where i.queue_id = v_queue_id and i.idem_key = i_idem_key;
    if found and v_claim.expires_at > now() then
        event_id := v_claim.event_id;
        deduped := true;
        return next;
        return;
    end if;

    insert into pgque.idem as i (queue_id, idem_key, event_id, expires_at)
    values (v_queue_id, i_idem_key, null, now() + i_ttl)
    on conflict on constraint idem_pkey do update
       set event_id = null, expires_at = excluded.expires_at
     where i.expires_at <= now()
    returning true into v_claimed;

    if v_claimed then
        v_event_id := pgque.insert_event(i_queue, i_type, i_payload, i_partition_key, i_idem_key, null, null);
        update pgque.idem i set event_id = v_event_id
         where i.queue_id = v_queue_id and i.idem_key = i_idem_key;
        event_id := v_event_id;
        deduped := false;
    else
        -- Claimed by a transaction that committed while we waited for it.
        select i.event_id into v_event_id
          from pgque.idem i where i.queue_id = v_queue_id and i.idem_key = i_idem_key;
        event_id := v_event_id;
        deduped := true;
    end if;
    return next;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.send_idem(i_queue, i_type, i_payload jsonb, i_idem_key,
--                 i_ttl default '1 hour', i_partition_key default null)
--   -> table(event_id bigint, deduped boolean)
--   The jsonb payload form: stores PostgreSQL's canonical jsonb text.
--   Calls: send_idem (text form).
-- ---------------------------------------------------------------------------
create or replace function pgque.send_idem(
    i_queue text, i_type text, i_payload jsonb, i_idem_key text,
    i_ttl interval default '1 hour', i_partition_key text default null)
returns table (event_id bigint, deduped boolean)
language sql
security definer
set search_path = pgque, pg_catalog
as $$
    select s.event_id, s.deduped
      from pgque.send_idem(i_queue, i_type, i_payload::text, i_idem_key, i_ttl, i_partition_key) s
$$;

-- ---------------------------------------------------------------------------
-- pgque.maint_idem(i_queue_name text) -> integer
--   Delete up to 10 000 expired claims (expires_at < now()) of one queue,
--   skipping claims locked by a send in progress. Returns 1 when the batch
--   was full (call again), else 0; 0 for an unknown queue. maint() calls it
--   as the queue's extra-maintenance hook.  Tables: queue, idem.
-- ---------------------------------------------------------------------------
create or replace function pgque.maint_idem(i_queue_name text)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_queue_id integer;
    v_deleted bigint;
begin
    select q.queue_id into v_queue_id from pgque.queue q where q.queue_name = i_queue_name;
    if not found then
        return 0;
    end if;
    delete from pgque.idem i
     using (select e.queue_id, e.idem_key from pgque.idem e
             where e.queue_id = v_queue_id and e.expires_at < now()
             limit 10000
               for update skip locked) expired
     where i.queue_id = expired.queue_id and i.idem_key = expired.idem_key;
    get diagnostics v_deleted = row_count;
    return case when v_deleted >= 10000 then 1 else 0 end;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.maint_idem() -> integer
--   maint_idem across all queues: up to 10 000 expired claims; 1 when the
--   batch was full, else 0.  Tables: idem.
-- ---------------------------------------------------------------------------
create or replace function pgque.maint_idem()
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_deleted bigint;
begin
    delete from pgque.idem i
     using (select e.queue_id, e.idem_key from pgque.idem e
             where e.expires_at < now()
             limit 10000
               for update skip locked) expired
     where i.queue_id = expired.queue_id and i.idem_key = expired.idem_key;
    get diagnostics v_deleted = row_count;
    return case when v_deleted >= 10000 then 1 else 0 end;
end;
$$;
