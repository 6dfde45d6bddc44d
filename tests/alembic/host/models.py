"""The sample host application's models, and the queue it publishes order events to."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sa_pgque import Queue


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer: Mapped[str] = mapped_column(String(100))


metadata = Base.metadata

Queue("orders", metadata, max_retries=10, ticker_max_lag=timedelta(milliseconds=100), consumers=["billing"])
