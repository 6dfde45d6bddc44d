"""The example app against a real database: publishing commits and rolls back with the request."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

import sa_pgque
from examples.fastapi_app.app import Base, create_app
from tests._pg import Database


def test_orders_and_their_events_commit_together(db: Database) -> None:
    app = create_app(db.url.render_as_string(hide_password=False))
    engine = app.state.engine
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        sa_pgque.create_queue(session, "orders")
        sa_pgque.subscribe(session, "orders", "shipping")

    with TestClient(app) as client:
        placed = client.post("/orders", json={"item": "book", "quantity": 2})
        assert placed.status_code == 201
        refused = client.post("/orders", json={"item": "unicorn"})
        assert refused.status_code == 422
        assert client.get(f"/orders/{placed.json()['id']}").json() == {
            "id": placed.json()["id"],
            "item": "book",
            "quantity": 2,
        }

    with Session(engine) as session, session.begin():
        sa_pgque.tick(session, "orders")
    with Session(engine) as session, session.begin():
        events = sa_pgque.receive(session, "orders", "shipping")
    assert [(m.type, m.payload) for m in events] == [
        ("order.created", {"order_id": placed.json()["id"], "item": "book"}),
    ]
    engine.dispose()
