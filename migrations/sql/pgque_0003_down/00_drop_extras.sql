-- sa_pgque engine, revision 0003 downgrade: remove idempotent send, delayed
-- delivery and the queue shortcuts.
--
-- Policy: when the downgrade stops at revision 0002, the guard step
-- (pgque_0003_down_guard) has already refused if any delayed event is still
-- parked, so pgque.delay_queue is empty here (a full uninstall skips the
-- guard: revision 0001's downgrade drops the whole schema right after).
-- Dedup claims are dropped with pgque.idem (revision 0002 has no send_idem
-- to honour them), and pgque.maint_idem is taken out of every queue's
-- queue_extra_maint so that maint() does not warn about a missing hook.
-- Queues, consumers, events, retries and dead letters are untouched. The
-- revision then restores revision 0001's maint_retry_events (without the
-- delayed-event mover).

update pgque.queue
   set queue_extra_maint = nullif(array_remove(queue_extra_maint, 'pgque.maint_idem'), '{}')
 where 'pgque.maint_idem' = any(queue_extra_maint);

drop function if exists pgque.create_queue(text, jsonb);
drop function if exists pgque.resume_queue(text);
drop function if exists pgque.pause_queue(text);
drop function if exists pgque.maint_deliver_delayed(integer);
drop function if exists pgque.send_at(text, text, jsonb, timestamptz);
drop function if exists pgque.send_at(text, text, text, timestamptz);
drop function if exists pgque.maint_idem();
drop function if exists pgque.maint_idem(text);
drop function if exists pgque.send_idem(text, text, jsonb, text, interval, text);
drop function if exists pgque.send_idem(text, text, text, text, interval, text);
drop table if exists pgque.delay_queue;
drop table if exists pgque.idem;
