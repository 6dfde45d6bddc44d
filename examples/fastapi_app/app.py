"""A FastAPI app that publishes events from request handlers, in the request's session.

Run it against a database with the engine installed (``sa-pgque upgrade``)::

    DATABASE_URL=postgresql+psycopg:///mydb uvicorn app:app

``POST /orders`` stores an order and publishes ``order.created`` in the same
transaction: a request that fails (here: an unknown item) stores nothing and
publishes nothing. ``GET /orders/{id}`` reads it back. (No ``from __future__
import annotations`` here: FastAPI reads the annotations at runtime.)
"""

import os
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

import sa_pgque


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    item: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int]


class NewOrder(BaseModel):
    item: str
    quantity: int = 1


CATALOGUE = {"book", "pen", "lamp"}


def create_app(database_url: str) -> FastAPI:
    engine = create_engine(database_url, pool_pre_ping=True)
    sessions = sessionmaker(engine)
    app = FastAPI(title="orders")

    def session() -> Iterator[Session]:
        """One transaction per request: committed when the handler returns, rolled back if it raises."""
        with sessions.begin() as db:
            yield db

    Db = Annotated[Session, Depends(session)]

    @app.post("/orders", status_code=201)
    def place_order(new: NewOrder, db: Db) -> dict[str, int]:
        order = Order(item=new.item, quantity=new.quantity)
        db.add(order)
        db.flush()  # the order id, for the event
        sa_pgque.publish(db, "orders", {"order_id": order.id, "item": order.item}, type="order.created")
        if new.item not in CATALOGUE:
            raise HTTPException(status_code=422, detail=f"unknown item {new.item!r}")  # rolls both back
        return {"id": order.id}

    @app.get("/orders/{order_id}")
    def get_order(order_id: int, db: Db) -> dict[str, object]:
        order = db.get(Order, order_id)
        if order is None:
            raise HTTPException(status_code=404, detail="no such order")
        return {"id": order.id, "item": order.item, "quantity": order.quantity}

    app.state.engine = engine
    return app


app = create_app(os.environ["DATABASE_URL"]) if "DATABASE_URL" in os.environ else None
