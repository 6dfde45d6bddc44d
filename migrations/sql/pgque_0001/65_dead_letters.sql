-- sa_pgque engine, revision 0001: the dead-letter queue.
--
-- Events whose retry budget is spent are kept in pgque.dead_letter, one row
-- per (queue, consumer, event). They can be inspected, replayed as new events
-- (to every subscriber) or purged by age.

-- ---------------------------------------------------------------------------
-- pgque.event_dead(i_batch_id, i_event_id, i_reason, i_ev_time, i_ev_txid,
--     i_ev_retry, i_ev_type, i_ev_data, i_ev_extra1..4 default NULL) -> integer
--   Record an event of an open batch as dead. A cooperative member's dead
--   letters are attributed to its group's main consumer. A second call for
--   the same event adds nothing. Returns 1. Trusts its event arguments
--   (nack is the validating caller).
--   Error: batch not found: <id>.  Tables: subscription, dead_letter.
-- ---------------------------------------------------------------------------
create or replace function pgque.event_dead(
    i_batch_id bigint, i_event_id bigint, i_reason text, i_ev_time timestamptz, i_ev_txid xid8,
    i_ev_retry int4, i_ev_type text, i_ev_data text,
    i_ev_extra1 text default null, i_ev_extra2 text default null,
    i_ev_extra3 text default null, i_ev_extra4 text default null)
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_sub record;
begin
    select s.sub_queue,
           case when s.sub_role = 'coop_member'
                then (select m.sub_consumer from pgque.subscription m
                       where m.sub_queue = s.sub_queue and m.sub_id = s.sub_id and m.sub_role = 'coop_main')
                else s.sub_consumer end as consumer_id
      into v_sub
      from pgque.subscription s
     where s.sub_batch = i_batch_id;
    if not found then
        raise exception 'batch not found: %', i_batch_id using errcode = 'PQ003';
    end if;

    insert into pgque.dead_letter (dl_queue_id, dl_consumer_id, dl_time, dl_reason, ev_id, ev_time, ev_txid,
                                   ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
    values (v_sub.sub_queue, v_sub.consumer_id, now(), i_reason, i_event_id, i_ev_time, i_ev_txid,
            i_ev_retry, i_ev_type, i_ev_data, i_ev_extra1, i_ev_extra2, i_ev_extra3, i_ev_extra4)
    on conflict (dl_queue_id, dl_consumer_id, ev_id) do nothing;
    return 1;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.dlq_inspect(i_queue_name, i_limit_count default 100) -> setof pgque.dead_letter
--   Dead letters of a queue, newest first, at most i_limit_count (NULL: all).
--   Unknown queue: no rows.  Tables: dead_letter, queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.dlq_inspect(i_queue_name text, i_limit_count integer default 100)
returns setof pgque.dead_letter
language sql
stable
security definer
set search_path = pgque, pg_catalog
as $$
    select d.*
      from pgque.dead_letter d
      join pgque.queue q on q.queue_id = d.dl_queue_id
     where q.queue_name = i_queue_name
     order by d.dl_time desc, d.dl_id desc
     limit i_limit_count
$$;

-- ---------------------------------------------------------------------------
-- pgque.dlq_replay(i_dead_letter_id bigint) -> bigint
--   Append a dead letter to its queue again as a brand-new event (new id,
--   no owner, retry count reset, so every subscriber receives it) and delete
--   it from the DLQ, atomically. The row is locked: of two concurrent
--   replays of one id, one wins and the other finds nothing.
--   Error: dead letter entry not found: <id>.
--   Calls: insert_event.  Tables: dead_letter, queue, event tables.
-- ---------------------------------------------------------------------------
create or replace function pgque.dlq_replay(i_dead_letter_id bigint)
returns bigint
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_dead record;
    v_ev_id bigint;
begin
    select q.queue_name, d.ev_type, d.ev_data, d.ev_extra1, d.ev_extra2, d.ev_extra3, d.ev_extra4
      into v_dead
      from pgque.dead_letter d
      join pgque.queue q on q.queue_id = d.dl_queue_id
     where d.dl_id = i_dead_letter_id
       for update of d;
    if not found then
        raise exception 'dead letter entry not found: %', i_dead_letter_id using errcode = 'PQ004';
    end if;
    v_ev_id := pgque.insert_event(v_dead.queue_name, v_dead.ev_type, v_dead.ev_data,
                                  v_dead.ev_extra1, v_dead.ev_extra2, v_dead.ev_extra3, v_dead.ev_extra4);
    delete from pgque.dead_letter where dl_id = i_dead_letter_id;
    return v_ev_id;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.dlq_replay_all(i_queue_name, OUT replayed, OUT failed, OUT first_error) -> record
--   Replay every dead letter of a queue, each in its own subtransaction so
--   one failure does not stop the rest; rows being replayed concurrently
--   are skipped. Failures raise a warning each and the first one's text is
--   returned. Unknown queue or empty DLQ: (0, 0, NULL).
--   Calls: dlq_replay.  Tables: dead_letter, queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.dlq_replay_all(
    i_queue_name text, out replayed bigint, out failed bigint, out first_error text)
returns record
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_dl_id bigint;
begin
    replayed := 0;
    failed := 0;
    for v_dl_id in
        select d.dl_id
          from pgque.dead_letter d
          join pgque.queue q on q.queue_id = d.dl_queue_id
         where q.queue_name = i_queue_name
         order by d.dl_id
           for update of d skip locked
    loop
        begin
            perform pgque.dlq_replay(v_dl_id);
            replayed := replayed + 1;
        exception when others then
            failed := failed + 1;
            raise warning 'dlq_replay_all: failed to replay dl_id=%, error: %', v_dl_id, sqlerrm;
            if first_error is null then
                first_error := format('dl_id=%s: %s', v_dl_id, sqlerrm);
            end if;
        end;
    end loop;
end;
$$;

-- ---------------------------------------------------------------------------
-- pgque.dlq_purge(i_queue_name, i_older_than default 30 days) -> integer
--   Delete a queue's dead letters older than i_older_than; returns how many.
--   Unknown queue: 0.  Tables: dead_letter, queue.
-- ---------------------------------------------------------------------------
create or replace function pgque.dlq_purge(i_queue_name text, i_older_than interval default '30 days')
returns integer
language plpgsql
security definer
set search_path = pgque, pg_catalog
as $$
declare
    v_purged integer;
begin
    delete from pgque.dead_letter d
     using pgque.queue q
     where q.queue_id = d.dl_queue_id
       and q.queue_name = i_queue_name
       and d.dl_time < now() - i_older_than;
    get diagnostics v_purged = row_count;
    return v_purged;
end;
$$;
