"""
The transactional outbox with Flask and PostgreSQL: an order and its webhook commit together.

A shop writes an order and, in the SAME database transaction, the webhook deliveries
announcing it (``Dispatcher.enqueue(event, connection=conn)``). If anything fails
before the commit, both roll back: no webhook ever announces an order that does not
exist, and no committed order goes unannounced. A worker process sends what was
committed (``Dispatcher.run_worker``); here the demo drains in-process.

Needs Flask and the ``postgres`` extra (``pip install 'pendo-webhooks[postgres]' flask``)
and a PostgreSQL server. Run the self-contained demo (a local receiver, two orders,
one of which fails after its webhook was enqueued):

    python examples/transactional_outbox.py [--dsn postgresql://postgres@127.0.0.1/postgres]

or serve the app (``POST /orders`` with ``{"visitor": "...", "total": 12.5}``) with a
worker alongside it:

    python examples/transactional_outbox.py --serve          # the Flask app
    python examples/transactional_outbox.py --worker         # a worker process
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from typing import Any

import psycopg
from flask import Flask, Response, jsonify, request
from psycopg import sql
from psycopg_pool import ConnectionPool

from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.storage import PostgresStorage
from pendo_webhooks.testing import LocalReceiver, sample_event


DEFAULT_DSN = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN = Actor("admin-1", is_admin=True)


def order_placed(order_id: int, visitor: str, total: float) -> Any:
    """
    The Pendo ``trackEventReceived`` event announcing an order.
    """
    return sample_event(
        "trackEventReceived",
        unique_id=f"order-{order_id}-placed",
        visitor_id=visitor,
        name="Order Placed",
        event_properties={"orderId": order_id, "total": total},
    )


def make_app(pool: ConnectionPool[Any], dispatcher: Dispatcher, shop_schema: str) -> Flask:
    """
    The shop: ``POST /orders`` stores an order and its webhooks in one transaction.
    """
    app = Flask(__name__)
    orders = sql.Identifier(shop_schema, "orders")

    @app.post("/orders")
    def place_order() -> tuple[Response, int]:
        data = request.get_json(force=True)
        # pool.connection() commits when the block ends normally and rolls back on an error.
        with pool.connection() as conn:
            row = conn.execute(
                sql.SQL("INSERT INTO {} (visitor, total) VALUES (%s, %s) RETURNING id").format(
                    orders
                ),
                (data["visitor"], data["total"]),
            ).fetchone()
            assert row is not None
            order_id = int(row[0])
            result = dispatcher.enqueue(
                order_placed(order_id, data["visitor"], data["total"]), connection=conn
            )
            if data.get("fail_after_enqueue"):  # e.g. the payment provider says no
                raise PaymentDeclined(order_id)
        return jsonify(order=order_id, webhooks=len(result.outcomes)), 201

    @app.errorhandler(PaymentDeclined)
    def declined(exc: PaymentDeclined) -> tuple[Response, int]:
        return jsonify(error=str(exc)), 402

    return app


class PaymentDeclined(Exception):
    """
    The shop's business failure, raised after the webhook was enqueued.
    """

    def __init__(self, order_id: int) -> None:
        super().__init__(f"payment for order {order_id} declined; nothing was kept")


def create_shop_schema(dsn: str, shop_schema: str) -> None:
    """
    The host application's own table (not the library's).
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(shop_schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} "
                "(id serial PRIMARY KEY, visitor text NOT NULL, total numeric NOT NULL)"
            ).format(sql.Identifier(shop_schema, "orders"))
        )


def demo(dsn: str) -> int:
    """
    Two orders through the Flask app, one of which fails; show what the receiver gets.
    """
    suffix = secrets.token_hex(3)
    shop_schema, hooks_schema = f"shop_demo_{suffix}", f"hooks_demo_{suffix}"
    create_shop_schema(dsn, shop_schema)
    storage = PostgresStorage(dsn, schema=hooks_schema)
    try:
        with (
            LocalReceiver(secrets=["whsec-demo-secret"]) as receiver,
            ConnectionPool(dsn, min_size=1, max_size=4) as pool,
        ):
            registry = WebhookRegistry(storage, destinations=DestinationPolicy.local_testing())
            hook = registry.create(
                ADMIN,
                name="Orders to the CRM",
                url=receiver.url,
                secret="whsec-demo-secret",
                categories={"trackEventReceived"},
            )
            registry.enable(ADMIN, hook.id)
            with Dispatcher(registry) as dispatcher:
                client = make_app(pool, dispatcher, shop_schema).test_client()
                good = client.post("/orders", json={"visitor": "v-1", "total": 12.5})
                print(f"order 1: HTTP {good.status_code} {good.get_json()}")
                bad = client.post(
                    "/orders", json={"visitor": "v-2", "total": 99, "fail_after_enqueue": True}
                )
                print(f"order 2: HTTP {bad.status_code} {bad.get_json()}")
                with pool.connection() as conn:
                    count = conn.execute(
                        sql.SQL("SELECT count(*) FROM {}").format(
                            sql.Identifier(shop_schema, "orders")
                        )
                    ).fetchone()
                print(f"orders stored: {count[0] if count else 0}")
                print(f"deliveries stored: {len(storage.list_deliveries())}")
                summary = dispatcher.drain(timeout=30)
                print(f"drained: {summary.delivered} delivered, {summary.pending} pending")
            for received in receiver.requests:
                props = json.dumps(getattr(received.event, "event_properties", None))
                print(
                    f"receiver got: webhook-id {received.header('webhook-id')} {props}, "
                    f"signature verified: {received.verified}"
                )
    finally:
        storage.drop_schema()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(shop_schema)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """
    Run the demo, the app, or a worker.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="PostgreSQL URL (or DATABASE_URL)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--serve", action="store_true", help="serve the app on :8000")
    mode.add_argument("--worker", action="store_true", help="send what is committed")
    args = parser.parse_args(argv)
    if not (args.serve or args.worker):
        return demo(args.dsn)
    storage = PostgresStorage(args.dsn, schema="pendo_webhooks")
    registry = WebhookRegistry(storage)
    with Dispatcher(registry) as dispatcher:
        if args.worker:
            dispatcher.run_worker(concurrency=8)
            return 0
        create_shop_schema(args.dsn, "shop")
        with ConnectionPool(args.dsn, min_size=1, max_size=10) as pool:
            make_app(pool, dispatcher, "shop").run(port=8000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
