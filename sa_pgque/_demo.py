"""``sa-pgque demo``: a tiny shop running on sa_pgque, start to finish, in seconds.

An ``orders`` table and an ``orders`` queue. Each order is inserted with the
ORM and its ``order.created`` event published in the same Session, so the
event exists exactly when the order does (one transaction is rolled back to
show it). A :class:`~sa_pgque.Ticker` thread ticks the queue; consumers read
it in threads: ``billing`` and ``shipping`` each see every event (fan-out),
``emails`` is one cooperative consumer whose members ``w1`` and ``w2`` share
the events. Each handler writes a row in the batch's Session, so its effect
commits with the ack: the tables count what was processed, exactly once.
Billing fails for one order; that message is retried and then dead-lettered
while the rest of its batch commits.

Everything is bounded by deadlines, so the demo reports and exits instead of
hanging when something is wrong.
"""

from __future__ import annotations

import logging
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TextIO

from sqlalchemy import URL, Engine, ForeignKey, String, create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from sa_pgque import _upgrade, api
from sa_pgque._progress import Progress
from sa_pgque._tables import clip, table
from sa_pgque.consumer import Consumer
from sa_pgque.handlers import RetryPolicy
from sa_pgque.publish import publish
from sa_pgque.results import Message
from sa_pgque.ticker import Ticker

QUEUE = "orders"
EVENT_TYPE = "order.created"
DEFAULT_ORDERS = 200
MAX_RETRIES = 2
"""The queue's retry budget: the failing message is delivered 1 + 2 times, then dead-lettered."""
TICKER_MAX_LAG = timedelta(milliseconds=100)
PROCESSING_DEADLINE = 40.0
"""Seconds the consumers get to process everything before the demo gives up."""
DECLINED_ITEM = "gift card (card declined)"


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    item: Mapped[str] = mapped_column(String(100))
    amount_cents: Mapped[int]


class Invoice(Base):
    """Written by ``billing``."""

    __tablename__ = "invoices"
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    amount_cents: Mapped[int]


class Shipment(Base):
    """Written by ``shipping``."""

    __tablename__ = "shipments"
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)


class Email(Base):
    """Written by a member of the cooperative ``emails`` consumer."""

    __tablename__ = "emails"
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    sent_by: Mapped[str] = mapped_column(String(20))
    batch_id: Mapped[int]


class PaymentDeclined(Exception):
    pass


ITEMS = ("coffee beans", "teapot", "mug", "grinder", "filter papers", "kettle")


@dataclass
class Observations:
    """What the application saw, collected across threads."""

    commit_times: dict[int, float] = field(default_factory=dict)
    """Event id → when its transaction committed (perf_counter)."""
    first_seen: dict[tuple[str, int], float] = field(default_factory=dict)
    """(consumer, event id) → when a handler first started on its first delivery."""
    declined_deliveries: set[int | None] = field(default_factory=set)
    """retry_count of each delivery of the declined order's message to billing."""
    seen_ids: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler_started(self, consumer: str, message: Message) -> None:
        now = time.perf_counter()
        with self.lock:
            self.seen_ids.add(message.msg_id)
            if message.retry_count is None:
                self.first_seen.setdefault((consumer, message.msg_id), now)

    def latencies_ms(self) -> list[float]:
        with self.lock:
            return sorted(
                (started - self.commit_times[ev_id]) * 1000
                for (_, ev_id), started in self.first_seen.items()
                if ev_id in self.commit_times
            )


@dataclass
class Published:
    transactions: int = 0
    committed: int = 0
    rolled_back_event: int | None = None
    declined_event: int | None = None


def build_consumers(sessions: sessionmaker[Session], seen: Observations) -> list[Consumer]:
    """billing and shipping (fan-out), and the cooperative emails pair w1 / w2."""
    quick_retry = RetryPolicy(base=timedelta(0), factor=1.0, maximum=timedelta(0))
    options: dict[str, Any] = {"queue": QUEUE, "poll_interval": 0.5, "retry": quick_retry}
    billing = Consumer(sessions, name="billing", **options)
    shipping = Consumer(sessions, name="shipping", **options)
    emails = [Consumer(sessions, name="emails", subconsumer=member, **options) for member in ("w1", "w2")]

    @billing.handler(EVENT_TYPE)
    def bill(message: Message, session: Session) -> None:
        seen.handler_started("billing", message)
        order = message.payload
        if order["item"] == DECLINED_ITEM:
            with seen.lock:
                seen.declined_deliveries.add(message.retry_count)
            raise PaymentDeclined(f"card declined for order {order['order_id']}")
        session.add(Invoice(order_id=order["order_id"], amount_cents=order["amount_cents"]))

    @shipping.handler(EVENT_TYPE)
    def ship(message: Message, session: Session) -> None:
        seen.handler_started("shipping", message)
        session.add(Shipment(order_id=message.payload["order_id"]))

    def email_handler(member: str) -> Callable[[Message, Session], None]:
        def send_email(message: Message, session: Session) -> None:
            seen.handler_started("emails", message)
            session.add(Email(order_id=message.payload["order_id"], sent_by=member, batch_id=message.batch_id))

        return send_email

    for consumer in emails:
        assert consumer.subconsumer is not None
        consumer.handler(EVENT_TYPE)(email_handler(consumer.subconsumer))
    return [billing, shipping, *emails]


def prepare(engine: Engine) -> None:
    """Install the engine, create the app's tables, the queue and its subscriptions."""
    _upgrade.upgrade(engine, label="installing the engine")
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        api.create_queue(
            session,
            QUEUE,
            ticker_max_lag=TICKER_MAX_LAG,
            ticker_idle_period=timedelta(seconds=1),
            max_retries=MAX_RETRIES,
        )
        # subscribe before publishing: a subscription starts at the latest tick
        api.subscribe(session, QUEUE, "billing")
        api.subscribe(session, QUEUE, "shipping")
        for member in ("w1", "w2"):
            api.subscribe_subconsumer(session, QUEUE, "emails", member)


def place_orders(sessions: sessionmaker[Session], count: int, seen: Observations) -> Published:
    """Insert ``count`` orders, publishing one event each in the ORM transaction; roll one back."""
    rng = random.Random(42)
    published = Published()
    progress = Progress("placing orders", count)
    declined_at = count // 3
    rollback_at = count // 2
    placed = 0
    while placed < count:
        size = min(rng.randint(1, 4), count - placed)
        with sessions() as session:
            ids = []
            for index in range(placed, placed + size):
                item = DECLINED_ITEM if index == declined_at else rng.choice(ITEMS)
                order = Order(item=item, amount_cents=rng.randint(300, 9000))
                session.add(order)
                session.flush()
                payload = {"order_id": order.id, "item": order.item, "amount_cents": order.amount_cents}
                event_id = publish(session, QUEUE, payload, type=EVENT_TYPE)
                if item == DECLINED_ITEM:
                    published.declined_event = event_id
                ids.append(event_id)
            session.commit()
            committed_at = time.perf_counter()
        with seen.lock:
            seen.commit_times.update(dict.fromkeys(ids, committed_at))
        published.transactions += 1
        published.committed += size
        placed += size
        progress.advance(size)
        if published.rolled_back_event is None and placed >= rollback_at:
            published.rolled_back_event = abandoned_order(sessions)
        time.sleep(0.01)
    progress.done(f"placed {count} orders in {published.transactions} transactions")
    return published


def abandoned_order(sessions: sessionmaker[Session]) -> int:
    """An order and its event in a transaction that rolls back; the event id it had."""
    with sessions() as session:
        order = Order(item="abandoned cart", amount_cents=100)
        session.add(order)
        session.flush()
        event_id = publish(session, QUEUE, {"order_id": order.id, "item": order.item}, type=EVENT_TYPE)
        session.rollback()
    return event_id


@dataclass
class Outcome:
    invoices: int
    shipments: int
    emails_by_member: dict[str, tuple[int, int]]
    """member → (emails, batches)."""
    dead_letters: list[tuple[Any, ...]]
    finished: bool
    orders_stored: int


def count_rows(session: Session, model: type[Base]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def observe(sessions: sessionmaker[Session], finished: bool = False) -> Outcome:
    with sessions() as session:
        members = session.execute(
            select(Email.sent_by, func.count(), func.count(Email.batch_id.distinct())).group_by(Email.sent_by)
        )
        dead = [
            (d.dl_id, d.ev_id, d.ev_retry, clip(d.dl_reason, 50), clip(d.ev_data, 40))
            for d in api.dlq_inspect(session, QUEUE)
        ]
        return Outcome(
            invoices=count_rows(session, Invoice),
            shipments=count_rows(session, Shipment),
            emails_by_member={member: (emails, batches) for member, emails, batches in members},
            dead_letters=dead,
            finished=finished,
            orders_stored=count_rows(session, Order),
        )


def wait_for_processing(sessions: sessionmaker[Session], published: Published, deadline: float) -> Outcome:
    """Poll the app's tables until every effect is there (or the deadline passes)."""
    expected = {"invoices": published.committed - 1, "shipments": published.committed, "emails": published.committed}
    progress = Progress("processing events", sum(expected.values()) + 1)
    while True:
        outcome = observe(sessions)
        emails = sum(count for count, _ in outcome.emails_by_member.values())
        done = outcome.invoices + outcome.shipments + emails + len(outcome.dead_letters)
        progress.advance(done - progress.count)
        complete = (
            outcome.invoices >= expected["invoices"]
            and outcome.shipments >= expected["shipments"]
            and emails >= expected["emails"]
            and outcome.dead_letters
        )
        if complete or time.monotonic() > deadline:
            progress.done(f"processed {done} of {progress.total} expected effects")
            outcome.finished = bool(complete)
            return outcome
        time.sleep(0.05)


@contextmanager
def running(ticker: Ticker, consumers: list[Consumer]) -> Iterator[None]:
    """The ticker and consumers, each in a thread, stopped and joined on exit."""
    threads = [threading.Thread(target=c.run_forever, name=f"demo-{c.name}", daemon=True) for c in consumers]
    ticker.start()
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for consumer in consumers:
            consumer.stop()
        for thread in threads:
            thread.join(10)
        ticker.stop()


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def report(out: TextIO, where: str, published: Published, outcome: Outcome, seen: Observations, elapsed: float) -> None:
    committed = published.committed
    rolled_back = published.rolled_back_event
    leaked = rolled_back in seen.seen_ids
    print(f"sa-pgque demo on {where}", file=out)
    print(
        f"\npublished  {committed + 1} order events in {published.transactions + 1} ORM transactions:"
        f" {committed} committed, 1 rolled back",
        file=out,
    )
    print(
        f"           rolled-back event {rolled_back}: {'DELIVERED (bug!)' if leaked else 'never delivered'};"
        f" orders stored: {outcome.orders_stored}",
        file=out,
    )
    members = outcome.emails_by_member
    split = ", ".join(f"{m} {n} events in {b} batches" for m, (n, b) in sorted(members.items()))
    rows = [
        (
            "billing",
            "fan-out",
            outcome.invoices,
            f"invoices; 1 order declined: {len(outcome.dead_letters)} dead letter",
        ),
        ("shipping", "fan-out", outcome.shipments, "shipments"),
        ("emails", "cooperative", sum(n for n, _ in members.values()), f"emails: {split}"),
    ]
    print("\nconsumers (each row written in the batch's transaction, with its ack)", file=out)
    print(table(["consumer", "kind", "processed", "effect"], rows), file=out)
    retries = len(seen.declined_deliveries - {None})
    print(
        f"\nretries    the declined order (event {published.declined_event}) reached billing"
        f" {len(seen.declined_deliveries)} times (first delivery + {retries} retries, max_retries={MAX_RETRIES}),\n"
        "           then went to the dead-letter queue; the rest of its batches committed",
        file=out,
    )
    print("dead letters", file=out)
    print(table(["dl_id", "ev_id", "retries", "reason", "payload"], outcome.dead_letters), file=out)
    latencies = seen.latencies_ms()
    if latencies:
        print(
            f"\nlatency    send commit -> handler start, {len(latencies)} deliveries:"
            f" median {statistics.median(latencies):.0f} ms, p95 {percentile(latencies, 0.95):.0f} ms"
            f" (ticker_max_lag {TICKER_MAX_LAG.total_seconds() * 1000:.0f} ms)",
            file=out,
        )
    print(f"total      {elapsed:.1f} s (server start and engine install included)", file=out)


def run(
    url: URL,
    where: str,
    out: TextIO,
    *,
    orders: int = DEFAULT_ORDERS,
    verbose: bool = False,
    started: float | None = None,
) -> bool:
    """Run the demo against the (empty) database at ``url``; True when everything checked out.

    ``started`` is the ``perf_counter()`` time the reported total counts from (default: now).
    """
    started = time.perf_counter() if started is None else started
    consumer_log = logging.getLogger("sa_pgque.consumer")
    saved_level = consumer_log.level
    if not verbose:
        consumer_log.setLevel(logging.CRITICAL)  # the declined order's failures are expected
    engine = create_engine(url, pool_size=10, max_overflow=10)
    try:
        prepare(engine)
        sessions = sessionmaker(engine)
        seen = Observations()
        ticker = Ticker(engine, tick_period=timedelta(milliseconds=20), retry_period=timedelta(milliseconds=100))
        with running(ticker, build_consumers(sessions, seen)):
            published = place_orders(sessions, orders, seen)
            outcome = wait_for_processing(sessions, published, time.monotonic() + PROCESSING_DEADLINE)
        report(out, where, published, outcome, seen, time.perf_counter() - started)
        return (
            outcome.finished
            and outcome.orders_stored == published.committed
            and published.rolled_back_event not in seen.seen_ids
        )
    finally:
        consumer_log.setLevel(saved_level)
        engine.dispose()
