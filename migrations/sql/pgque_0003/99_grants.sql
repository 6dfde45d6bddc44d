-- sa_pgque engine, revision 0003: privileges of idempotent send, delayed
-- delivery and the queue shortcuts.
--
-- Deny by default, as in revision 0001: PUBLIC loses EXECUTE on everything
-- (repeating this is harmless). Producers (pgque_writer) get send_idem and
-- send_at; operators (pgque_admin) the maintenance functions and the queue
-- shortcuts. pgque.idem is the owner's alone (spec 5.2): only the
-- security-definer functions touch it. pgque.delay_queue is readable by
-- consumers and operators, like the dead letters.

revoke execute on all routines in schema pgque from public;

revoke all on pgque.idem, pgque.delay_queue from public;
grant select on pgque.delay_queue to pgque_reader;
grant all on pgque.delay_queue to pgque_admin;

grant execute on function
    pgque.send_idem(text, text, text, text, interval, text),
    pgque.send_idem(text, text, jsonb, text, interval, text),
    pgque.send_at(text, text, text, timestamptz),
    pgque.send_at(text, text, jsonb, timestamptz)
  to pgque_writer;

grant execute on function
    pgque.maint_idem(text),
    pgque.maint_idem(),
    pgque.maint_deliver_delayed(integer),
    pgque.pause_queue(text),
    pgque.resume_queue(text),
    pgque.create_queue(text, jsonb)
  to pgque_admin;
