"""The lean pipeline issue 16 measures the order saga against: the same three steps written by
hand, on the same machine, with nothing but raw asyncpg and aio-pika (no ORM, no framework).

    ingress  (HTTP in)      POST /orders -> transaction 1: INSERT the order (pending)
                            -> confirmed message ``lean.submitted`` -> 201
    reserver (process 2)    ``lean.submitted`` -> transaction 2: UPDATE the voucher's balance
                            (conditional) + INSERT the reservation -> confirmed ``lean.reserved`` -> ack
    decider  (process 3)    ``lean.reserved`` -> transaction 3: UPDATE the order (decided, its
                            time) -> confirmed ``lean.decided`` -> ack

Three PostgreSQL transactions in three processes and three confirmed RabbitMQ messages per
order, as the issue describes it. What it leaves out is what the platform adds: idempotency
keys, authentication and authorisation, the product read, the outbox and its relay, the
inbox, the ordering guard, journals and audit. ``bench/saga.py`` starts it beside the platform
(``LeanPipeline``) and loads it exactly as it loads ``POST /orders``.

Each role is a process of its own: ``python bench/lean_pipeline.py ingress|reserver|decider``
(the ingress under uvicorn, as the services are served: uvloop and httptools).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from typing import Any

import aio_pika
import asyncpg

SCHEMA = """
CREATE TABLE IF NOT EXISTS lean_orders (
    id uuid PRIMARY KEY, enterprise_id text NOT NULL, amount_fen bigint NOT NULL,
    status text NOT NULL, created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    decided_at timestamptz);
CREATE TABLE IF NOT EXISTS lean_vouchers (
    enterprise_id text PRIMARY KEY, remaining_fen bigint NOT NULL, reserved_fen bigint NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS lean_reservations (
    order_id uuid PRIMARY KEY, enterprise_id text NOT NULL, amount_fen bigint NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp());
"""


def settings() -> tuple[str, str, str]:
    return os.environ["LEAN_DATABASE_URL"], os.environ["LEAN_AMQP_URL"], os.environ["LEAN_EXCHANGE"]


async def broker(amqp_url: str, exchange_name: str) -> tuple[Any, Any, Any]:
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, auto_delete=True)
    return connection, channel, exchange


async def publish(exchange: Any, key: str, body: dict[str, Any]) -> None:
    message = aio_pika.Message(json.dumps(body).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
    await exchange.publish(message, routing_key=key)  # returns once the broker confirmed it


# --- ingress: an ASGI app served by uvicorn -------------------------------------------------------


class Ingress:
    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.exchange: Any = None
        self.connection: Any = None

    async def startup(self) -> None:
        db, amqp, exchange = settings()
        self.pool = await asyncpg.create_pool(db, min_size=2, max_size=8)
        self.connection, _, self.exchange = await broker(amqp, exchange)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.startup()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.connection.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/readyz":
            await respond(send, 200, b'{"status":"ready"}')
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body)
        order_id = str(uuid.uuid4())
        assert self.pool is not None
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO lean_orders (id, enterprise_id, amount_fen, status) VALUES ($1, $2, $3, 'pending')",
                order_id,
                request["enterprise_id"],
                int(request["amount_fen"]),
            )
        await publish(
            self.exchange,
            "lean.submitted",
            {
                "order_id": order_id,
                "enterprise_id": request["enterprise_id"],
                "amount_fen": request["amount_fen"],
            },
        )
        await respond(send, 201, json.dumps({"id": order_id, "status": "pending"}).encode())


async def respond(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app() -> Ingress:
    return Ingress()


# --- the two workers ----------------------------------------------------------------------------


RESERVE = """
WITH taken AS (
    UPDATE lean_vouchers SET remaining_fen = remaining_fen - $2, reserved_fen = reserved_fen + $2
    WHERE enterprise_id = $1 AND remaining_fen >= $2 RETURNING enterprise_id)
INSERT INTO lean_reservations (order_id, enterprise_id, amount_fen)
SELECT $3, enterprise_id, $2 FROM taken
ON CONFLICT (order_id) DO NOTHING RETURNING order_id
"""


async def worker(role: str) -> None:
    db, amqp, exchange_name = settings()
    pool = await asyncpg.create_pool(db, min_size=2, max_size=8)
    connection, channel, exchange = await broker(amqp, exchange_name)
    await channel.set_qos(prefetch_count=64)
    source = "lean.submitted" if role == "reserver" else "lean.reserved"
    queue = await channel.declare_queue(f"{exchange_name}.{role}", durable=False, auto_delete=True)
    await queue.bind(exchange, source)

    async def reserve(body: dict[str, Any]) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.fetchval(RESERVE, body["enterprise_id"], int(body["amount_fen"]), body["order_id"])
        await publish(exchange, "lean.reserved", body)

    async def decide(body: dict[str, Any]) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE lean_orders SET status = 'awaiting_acceptance', decided_at = clock_timestamp() "
                "WHERE id = $1 AND status = 'pending'",
                body["order_id"],
            )
        await publish(exchange, "lean.decided", body)

    step = reserve if role == "reserver" else decide

    async def handle(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await step(json.loads(message.body))
        await message.ack()

    await queue.consume(handle)
    print("ready", flush=True)
    try:
        await asyncio.Future()
    finally:
        await connection.close()
        await pool.close()


async def prepare(db_url: str, enterprises: list[str], balance_fen: int) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(SCHEMA)
        await conn.executemany(
            "INSERT INTO lean_vouchers (enterprise_id, remaining_fen) VALUES ($1, $2)",
            [(e, balance_fen) for e in enterprises],
        )
    finally:
        await conn.close()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(worker(sys.argv[1]))
