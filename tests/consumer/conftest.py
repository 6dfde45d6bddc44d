"""Fixtures for consumer tests: an app schema (ORM rows per handled message) and queues."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, Integer, String, UniqueConstraint, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

import sa_pgque as pgque
from tests._pg import Database


class Base(DeclarativeBase):
    pass


class Processed(Base):
    """One row per message a handler processed (what exactly-once is measured on)."""

    __tablename__ = "processed"
    id: Mapped[int] = mapped_column(primary_key=True)
    consumer: Mapped[str] = mapped_column(String(100))
    msg_id: Mapped[int] = mapped_column(Integer)
    payload: Mapped[str | None] = mapped_column(String(200))


class Marker(Base):
    """Rows that must be unique; a handler inserting a duplicate fails at flush."""

    __tablename__ = "markers"
    __table_args__ = (UniqueConstraint("name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


@pytest.fixture
def engine(db: Database) -> Iterator[Engine]:
    engine = db.engine()
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine)


@pytest.fixture
def queue(sessions: sessionmaker[Session]) -> str:
    with sessions.begin() as session:
        pgque.create_queue(session, "jobs")
    return "jobs"


def send(sessions: sessionmaker[Session], queue: str, *payloads: object, type: str = "job") -> list[int]:
    """Send payloads in one transaction, then tick in another: they are ready to consume."""
    with sessions.begin() as session:
        ids = pgque.send_batch(session, queue, [str(p) for p in payloads], type=type)
    with sessions.begin() as session:
        pgque.tick(session, queue)
    return ids


def processed(sessions: sessionmaker[Session], consumer: str | None = None) -> list[tuple[str, int]]:
    """(consumer, msg_id) of every Processed row, by id."""
    with sessions() as session:
        query = select(Processed.consumer, Processed.msg_id).order_by(Processed.id)
        if consumer is not None:
            query = query.where(Processed.consumer == consumer)
        return [(c, m) for c, m in session.execute(query)]


def count_rows(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Processed)) or 0)
