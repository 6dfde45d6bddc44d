-- sa_pgque engine, revision 0002 downgrade: remove the cooperative functions.
--
-- Policy: when the downgrade stops at revision 0001, the guard step
-- (pgque_0002_down_guard) has already refused if any cooperative member is
-- registered, so only member-less groups can be left here. A coop_main
-- without members (it already behaves as a normal consumer for the legacy
-- functions, but never receives a batch from them) is turned back into
-- 'normal', keeping its cursor. Queues, consumers, events, retries and dead
-- letters are untouched. A full uninstall skips the guard: revision 0001's
-- downgrade drops the whole schema right after this.

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
