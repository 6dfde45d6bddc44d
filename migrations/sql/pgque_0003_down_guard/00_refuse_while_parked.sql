-- sa_pgque engine, revision 0003 downgrade guard (run only when the
-- downgrade stops at revision 0002, not for a full uninstall).
--
-- Policy: refuse (SQLSTATE PQ020, nothing changed) while any delayed event
-- is still parked: revision 0002 has nowhere to keep it, and delivering it
-- early or dropping it would both break a promise made to its producer. Let
-- the events come due and be delivered (pgque.maint_deliver_delayed), or
-- delete them from pgque.delay_queue, first.

do $refuse$
declare
    v_parked bigint;
    v_example text;
begin
    select count(*), min(q.queue_name)
      into v_parked, v_example
      from pgque.delay_queue d
      join pgque.queue q on q.queue_id = d.ev_queue;
    if v_parked > 0 then
        raise exception 'cannot downgrade below pgque_0003: % delayed event(s) still parked in pgque.delay_queue (e.g. on queue %); deliver them with pgque.maint_deliver_delayed once due, or delete them, first',
            v_parked, v_example using errcode = 'PQ020';
    end if;
end
$refuse$;
