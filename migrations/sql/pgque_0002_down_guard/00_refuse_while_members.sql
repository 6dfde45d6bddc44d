-- sa_pgque engine, revision 0002 downgrade guard: refuse while groups live.
--
-- Runs before pgque_0002_down when the downgrade stops at revision 0001
-- (not for a full uninstall, which drops schema pgque with everything in
-- it anyway). It refuses, SQLSTATE PQ030, nothing changed, while any
-- cooperative member is registered: revision 0001 cannot allocate windows
-- to members, and the group cursor of a main has already moved past the
-- window a member holds, so removing the cooperative API under live groups
-- would strand those members and their batches. Unregister every
-- subconsumer first (pgque.unregister_subconsumer, batch_handling = 1 for
-- members that hold a batch); the last member leaving turns each main back
-- into a normal consumer.

do $refuse$
declare
    v_members bigint;
    v_example text;
begin
    select count(*), min(q.queue_name || '/' || c.co_name)
      into v_members, v_example
      from pgque.subscription s
      join pgque.queue q on q.queue_id = s.sub_queue
      join pgque.consumer c on c.co_id = s.sub_consumer
     where s.sub_role = 'coop_member';
    if v_members > 0 then
        raise exception 'cannot downgrade below pgque_0002: % cooperative subconsumer(s) still registered (e.g. %); unregister them first with pgque.unregister_subconsumer',
            v_members, v_example using errcode = 'PQ030';
    end if;
end
$refuse$;
