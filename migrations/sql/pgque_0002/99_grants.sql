-- sa_pgque engine, revision 0002: privileges of the cooperative functions.
--
-- Deny by default, as in revision 0001: PUBLIC loses EXECUTE on everything
-- (repeating this is harmless), pgque_reader gets the cooperative API and
-- pgque_admin reaches it through membership. The two internal helpers
-- (_validate_coop_names, _clear_member_cursor) stay owner-only.

revoke execute on all routines in schema pgque from public;

grant execute on function
    pgque.register_subconsumer(text, text, text, boolean),
    pgque.subscribe_subconsumer(text, text, text, boolean),
    pgque.unregister_subconsumer(text, text, text, integer),
    pgque.unsubscribe_subconsumer(text, text, text, integer),
    pgque.next_batch(text, text, text, interval),
    pgque.next_batch_custom(text, text, text, interval, integer, interval, interval),
    pgque.receive_coop(text, text, text, integer, interval),
    pgque.touch_subconsumer(text, text, text)
  to pgque_reader;
