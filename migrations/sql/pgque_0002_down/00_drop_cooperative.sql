-- sa_pgque engine, revision 0002 downgrade: remove the cooperative functions.
--
-- Policy: the downgrade refuses (SQLSTATE PQ030, nothing changed) while any
-- cooperative member is registered. Revision 0001 cannot allocate windows to
-- members, and the group cursor of a main has already moved past the window
-- a member holds, so dropping the cooperative API under live groups would
-- strand those members and their batches. Unregister every subconsumer
-- first (pgque.unregister_subconsumer, batch_handling = 1 for members that
-- hold a batch); the last member leaving turns each main back into a normal
-- consumer. A coop_main left without members (it already behaves as a
-- normal consumer for the legacy functions, but never receives a batch from
-- them) is turned back into 'normal' here, keeping its cursor. Queues,
-- consumers, events, retries and dead letters are untouched.

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

update pgque.subscription set sub_role = 'normal', sub_active = now() where sub_role = 'coop_main';

drop function if exists pgque.receive_coop(text, text, text, integer, interval);
drop function if exists pgque.next_batch(text, text, text, interval);
drop function if exists pgque.next_batch_custom(text, text, text, interval, integer, interval, interval);
drop function if exists pgque.touch_subconsumer(text, text, text);
drop function if exists pgque.unsubscribe_subconsumer(text, text, text, integer);
drop function if exists pgque.unregister_subconsumer(text, text, text, integer);
drop function if exists pgque.subscribe_subconsumer(text, text, text, boolean);
drop function if exists pgque.register_subconsumer(text, text, text, boolean);
drop function if exists pgque._clear_member_cursor(integer, integer);
drop function if exists pgque._validate_coop_names(text, text, text);
