"""A consumer process for the crash tests: ``python -m tests.consumer._worker URL [options]``.

For every message it inserts one ``processed`` row (and, with ``--forward``,
publishes a follow-up event to that queue) in the batch's transaction, then
runs until SIGTERM/SIGINT and exits 0. ``--hang-on PAYLOAD`` makes the handler
block on that payload after doing its writes, so a test can kill the process
with a transaction open.

For the reliability suite (``tests/reliability``): ``--dead-interval`` sets a
cooperative member's takeover delay, ``--retry-base`` the first retry delay,
and ``--fail-from-payload`` makes the handler raise (after its writes, so they
must be rolled back) while a JSON payload's ``"fail"`` count exceeds the
message's ``retry_count``, and always for ``"poison": true``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import timedelta

from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

import sa_pgque as pgque
from sa_pgque import AsyncConsumer, Consumer, Message, RetryPolicy
from tests.consumer.conftest import Processed


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--queue", default="jobs")
    parser.add_argument("--name", default="worker")
    parser.add_argument("--subconsumer")
    parser.add_argument("--forward")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds per message")
    parser.add_argument("--hang-on")
    parser.add_argument("--asyncio", action="store_true")
    parser.add_argument("--dead-interval", type=float)
    parser.add_argument("--retry-base", type=float)
    parser.add_argument("--fail-from-payload", action="store_true")
    return parser.parse_args()


class InjectedFailure(Exception):
    """Raised by the handler on purpose (``--fail-from-payload``)."""


def maybe_fail(args: argparse.Namespace, message: Message) -> None:
    """With ``--fail-from-payload``: fail poison messages always, ``"fail": n`` ones n times."""
    if not args.fail_from_payload or not (message.payload_text or "").startswith("{"):
        return
    payload = json.loads(message.payload_text or "{}")
    if payload.get("poison") or int(payload.get("fail", 0)) > (message.retry_count or 0):
        raise InjectedFailure(f"injected failure of message {message.msg_id}")


def main() -> None:
    args = parse()
    options = {
        "queue": args.queue,
        "name": args.name,
        "subconsumer": args.subconsumer,
        "poll_interval": 0.2,
        "reconnect_delay": (0.1, 1.0),
    }
    if args.dead_interval is not None:
        options["dead_interval"] = args.dead_interval
    if args.retry_base is not None:
        options["retry"] = RetryPolicy(base=timedelta(seconds=args.retry_base))
    if args.asyncio:
        asyncio.run(run_async(args, options))
        return
    consumer = Consumer(sessionmaker(create_engine(args.url, pool_pre_ping=True)), **options)

    @consumer.default_handler
    def handle(message: Message, session: Session) -> None:
        session.add(Processed(consumer=args.name, msg_id=message.msg_id, payload=message.payload_text))
        if args.forward:
            pgque.publish(session, args.forward, {"from": message.msg_id}, type="forwarded")
        if args.hang_on is not None and message.payload_text == args.hang_on:
            session.flush()
            time.sleep(3600)
        maybe_fail(args, message)
        time.sleep(args.sleep)

    consumer.run_forever()


async def run_async(args: argparse.Namespace, options: dict[str, object]) -> None:
    engine = create_async_engine(args.url, pool_pre_ping=True)
    consumer = AsyncConsumer(engine, **options)  # type: ignore[arg-type]

    @consumer.default_handler
    async def handle(message: Message, session: AsyncSession) -> None:
        session.add(Processed(consumer=args.name, msg_id=message.msg_id, payload=message.payload_text))
        if args.forward:
            await pgque.publish_async(session, args.forward, {"from": message.msg_id}, type="forwarded")
        maybe_fail(args, message)
        await asyncio.sleep(args.sleep)

    await consumer.run_forever()
    await engine.dispose()


if __name__ == "__main__":
    main()
