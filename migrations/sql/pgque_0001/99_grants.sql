-- sa_pgque engine, revision 0001: privileges.
--
-- Deny by default: nobody but the owner may execute anything in schema pgque
-- unless granted below. pgque_reader consumes, pgque_writer produces,
-- pgque_admin (a member of both) operates. Re-applying this file restores the
-- matrix; it also refreshes the grants of every existing queue's tables.

-- Schema -------------------------------------------------------------------
grant usage on schema pgque to public;
grant usage on schema pgque to pgque_reader;
grant usage, create on schema pgque to pgque_admin;

-- Tables -------------------------------------------------------------------
grant select on pgque.queue, pgque.consumer, pgque.subscription, pgque.tick,
                pgque.retry_queue, pgque.event_template
   to public, pgque_reader;
revoke all on pgque.config, pgque.dead_letter from public;
grant select on pgque.config, pgque.dead_letter to pgque_reader;
grant all on pgque.queue, pgque.consumer, pgque.subscription, pgque.tick, pgque.retry_queue,
             pgque.event_template, pgque.config, pgque.dead_letter
   to pgque_admin;

-- Sequences ----------------------------------------------------------------
revoke all on sequence pgque.batch_id_seq, pgque.consumer_co_id_seq, pgque.queue_queue_id_seq,
                       pgque.subscription_sub_id_seq, pgque.dead_letter_dl_id_seq
  from public;
grant all on sequence pgque.batch_id_seq, pgque.consumer_co_id_seq, pgque.queue_queue_id_seq,
                      pgque.subscription_sub_id_seq, pgque.dead_letter_dl_id_seq
   to pgque_admin;

-- Per-queue tables and sequences ------------------------------------------
select pgque.grant_perms(queue_name) from pgque.queue;

-- Functions: nothing for PUBLIC --------------------------------------------
revoke execute on all routines in schema pgque from public;

-- Consumer side ------------------------------------------------------------
grant execute on function
    pgque.subscribe(text, text),
    pgque.unsubscribe(text, text),
    pgque.receive(text, text, integer),
    pgque.ack(bigint),
    pgque.nack(bigint, pgque.message, interval, text),
    pgque.register_consumer(text, text),
    pgque.register_consumer_at(text, text, bigint),
    pgque.unregister_consumer(text, text),
    pgque.next_batch(text, text),
    pgque.next_batch_info(text, text),
    pgque.next_batch_custom(text, text, interval, integer, interval),
    pgque.get_batch_events(bigint),
    pgque.finish_batch(bigint),
    pgque.event_retry(bigint, bigint, timestamptz),
    pgque.event_retry(bigint, bigint, integer),
    pgque.get_queue_info(),
    pgque.get_queue_info(text),
    pgque.get_consumer_info(),
    pgque.get_consumer_info(text),
    pgque.get_consumer_info(text, text),
    pgque.get_batch_info(bigint),
    pgque.version(),
    pgque.dlq_inspect(text, integer)
  to pgque_reader;

-- Producer side ------------------------------------------------------------
grant execute on function
    pgque.insert_event(text, text, text),
    pgque.insert_event(text, text, text, text, text, text, text),
    pgque.send(text, jsonb),
    pgque.send(text, text),
    pgque.send(text, text, jsonb),
    pgque.send(text, text, text),
    pgque.send_batch(text, jsonb[]),
    pgque.send_batch(text, text[]),
    pgque.send_batch(text, text, jsonb[]),
    pgque.send_batch(text, text, text[]),
    pgque.dlq_replay(bigint),
    pgque.dlq_replay_all(text),
    -- the capture triggers run with the rights of the role changing the table
    pgque._trig_capture(text, text, text, text, oid, text[], record, record)
  to pgque_writer;

-- Operators: the PgQ-derived primitives directly, plus everything else -----
grant execute on function
    pgque.insert_event(text, text, text),
    pgque.insert_event(text, text, text, text, text, text, text),
    pgque.register_consumer(text, text),
    pgque.register_consumer_at(text, text, bigint),
    pgque.unregister_consumer(text, text),
    pgque.next_batch(text, text),
    pgque.next_batch_info(text, text),
    pgque.next_batch_custom(text, text, interval, integer, interval),
    pgque.get_batch_events(bigint),
    pgque.finish_batch(bigint),
    pgque.event_retry(bigint, bigint, timestamptz),
    pgque.event_retry(bigint, bigint, integer),
    pgque.get_queue_info(),
    pgque.get_queue_info(text),
    pgque.get_consumer_info(),
    pgque.get_consumer_info(text),
    pgque.get_consumer_info(text, text),
    pgque.get_batch_info(bigint),
    pgque.version(),
    pgque.create_queue(text),
    pgque.drop_queue(text),
    pgque.drop_queue(text, boolean),
    pgque.set_queue_config(text, text, text),
    pgque.ticker(),
    pgque.ticker(text),
    pgque.ticker(text, bigint, timestamptz, bigint),
    pgque.force_tick(text),
    pgque.force_next_tick(text),
    pgque.set_tick_period_ms(integer),
    pgque.start(),
    pgque.stop(),
    pgque.start_timetable(integer),
    pgque.stop_timetable(),
    pgque.status(),
    pgque.maint(),
    pgque.maint_retry_events(),
    pgque.maint_rotate_tables_step1(text),
    pgque.maint_rotate_tables_step2(),
    pgque.maint_operations(),
    pgque.maint_tables_to_vacuum(),
    pgque.batch_retry(bigint, integer),
    pgque.event_dead(bigint, bigint, text, timestamptz, xid8, int4, text, text, text, text, text, text),
    pgque.dlq_purge(text, interval),
    pgque.get_batch_cursor(bigint, text, integer),
    pgque.get_batch_cursor(bigint, text, integer, text),
    pgque.event_retry_raw(text, text, timestamptz, bigint, timestamptz, integer, text, text,
                          text, text, text, text),
    pgque.insert_event_raw(text, bigint, timestamptz, integer, integer, text, text,
                           text, text, text, text),
    pgque.current_event_table(text),
    pgque.find_tick_helper(integer, bigint, timestamptz, bigint, bigint, interval),
    pgque.batch_event_sql(bigint),
    pgque.batch_event_tables(bigint),
    pgque.grant_perms(text),
    pgque._grant_perms_from(text, text, text, text),
    pgque.tune_storage(text),
    pgque.seq_getval(text),
    pgque.seq_setval(text, bigint),
    pgque.quote_fqname(text),
    pgque.upgrade_schema(),
    pgque.jsontriga(),
    pgque.logutriga(),
    pgque.sqltriga(),
    pgque._urlencode(text),
    -- internal helpers reached from the invoker-rights functions above
    pgque._batch_context(bigint),
    pgque._event_tables(text, integer, integer, bigint, bigint, bigint, bigint),
    pgque._rotation_due(pgque.queue)
  to pgque_admin;

grant execute on procedure pgque.ticker_loop() to pgque_admin;
