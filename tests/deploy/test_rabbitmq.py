"""deploy/rabbitmq: the topology imported at boot must be exactly what the services declare
at start (RabbitMQ refuses a redeclaration whose arguments differ: PRECONDITION_FAILED),
and the boot-time user is rendered from the env file."""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from common import registry
from common.bus import topology
from common.bus.rabbitmq import RabbitTransport, dead_letter_queue, retry_queue
from common.settings import ServiceSettings
from common.testing import infra
from common.testing.rabbit import needs_rabbitmq_server

# What the brief of the deployment promised the app declares, spelled out once more: a
# change here is a change of the broker contract (and of every deployed broker).
RETRY_TTLS_MS = [1000, 5000, 30000, 120000, 600000]
QUORUM = {"x-queue-type": "quorum"}


def _defaults(method: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The arguments of an aio-pika call with aio-pika's own defaults filled in."""
    bound = inspect.signature(method).bind(None, *args, **kwargs)
    bound.apply_defaults()
    values = dict(bound.arguments)
    values.pop("self")
    return values


class FakeExchange:
    def __init__(self, name: str) -> None:
        self.name = name


class FakeQueue:
    def __init__(self, channel: FakeChannel, name: str) -> None:
        self.channel, self.name = channel, name

    async def bind(self, exchange: Any, routing_key: str | None = None, **kwargs: Any) -> None:
        source = exchange if isinstance(exchange, str) else exchange.name
        self.channel.bindings.append((source, self.name, self.name if routing_key is None else routing_key))

    async def delete(self, **kwargs: Any) -> None:
        self.channel.queues.pop(self.name, None)


class FakeChannel:
    """Records what RabbitTransport declares, as a broker would receive it."""

    def __init__(self) -> None:
        self.exchanges: dict[str, dict[str, Any]] = {}
        self.queues: dict[str, dict[str, Any]] = {}
        self.bindings: list[tuple[str, str, str]] = []
        self.is_closed = False

    async def declare_exchange(self, *args: Any, **kwargs: Any) -> FakeExchange:
        call = _defaults(aio_pika.Channel.declare_exchange, *args, **kwargs)
        kind = call["type"]
        self.exchanges[call["name"]] = {
            "type": kind.value if isinstance(kind, aio_pika.ExchangeType) else kind,
            "durable": call["durable"],
            "auto_delete": call["auto_delete"],
            "internal": call["internal"],
            "arguments": call["arguments"] or {},
        }
        return FakeExchange(call["name"])

    async def get_exchange(self, name: str, ensure: bool = True) -> FakeExchange:
        return FakeExchange(name)

    async def declare_queue(self, *args: Any, **kwargs: Any) -> FakeQueue:
        call = _defaults(aio_pika.Channel.declare_queue, *args, **kwargs)
        self.queues[call["name"]] = {
            "durable": call["durable"],
            "auto_delete": call["auto_delete"],
            "exclusive": call["exclusive"],
            "arguments": call["arguments"] or {},
        }
        return FakeQueue(self, call["name"])

    async def close(self) -> None:
        self.is_closed = True


class FakeConnection:
    def __init__(self, channel: FakeChannel) -> None:
        self.channel_, self.is_closed = channel, False

    async def channel(self, **kwargs: Any) -> FakeChannel:
        return self.channel_

    async def close(self) -> None:
        self.is_closed = True


def consumer_queues(definitions: dict[str, Any]) -> list[str]:
    names = {q["name"] for q in definitions["queues"]}
    return sorted(name for name in names if dead_letter_queue(name) in names)


async def declared_by_the_app(definitions: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> FakeChannel:
    """Start a RabbitTransport configured as production is (the settings' defaults and the
    registry's topology, which it declares whole at start) on a recording channel, and let
    it declare every consumer queue of the definitions."""
    channel = FakeChannel()

    async def connect_robust(*args: Any, **kwargs: Any) -> FakeConnection:
        return FakeConnection(channel)

    monkeypatch.setattr(aio_pika, "connect_robust", connect_robust)
    fields = ServiceSettings.model_fields
    transport = RabbitTransport(
        "amqp://voucher@rabbitmq:5672/",
        exchange=fields["bus_exchange"].default,
        queue_prefix=fields["bus_queue_prefix"].default,
        retry_delays=fields["bus_retry_delays"].default,
        topology=registry.topology(fields["bus_exchange"].default),
    )
    await transport.start()
    for name in consumer_queues(definitions):
        await transport.declare_consumer_queues(channel, name)
    return channel


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for item in items:
        assert item["name"] not in found, f"{item['name']} is defined twice"
        found[item["name"]] = item
    return found


async def test_exchanges_are_the_ones_the_app_declares(
    definitions: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await declared_by_the_app(definitions, monkeypatch)
    defined = by_name(definitions["exchanges"])
    assert defined.keys() == app.exchanges.keys()
    for name, declared in app.exchanges.items():
        spec = defined[name]
        assert spec["vhost"] == "/"
        got = {key: spec.get(key, {} if key == "arguments" else False) for key in declared}
        assert got == declared, f"exchange {name}"


async def test_queues_are_the_ones_the_app_declares_with_identical_arguments(
    definitions: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await declared_by_the_app(definitions, monkeypatch)
    defined = by_name(definitions["queues"])
    assert defined.keys() == app.queues.keys(), "every queue of the definitions is one the app declares"
    for name, declared in app.queues.items():
        spec = defined[name]
        assert spec["vhost"] == "/"
        assert not declared["exclusive"]
        assert (spec["durable"], spec.get("auto_delete", False)) == (
            declared["durable"],
            declared["auto_delete"],
        )
        assert spec["arguments"] == declared["arguments"], f"queue {name}: arguments differ from the app's"
        for key, value in spec["arguments"].items():
            assert type(value) is type(declared["arguments"][key]), f"queue {name}: {key} type"


async def test_the_unrouted_binding_is_the_apps(
    definitions: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await declared_by_the_app(definitions, monkeypatch)
    defined = {(b["source"], b["destination"], b["routing_key"]) for b in definitions["bindings"]}
    assert set(app.bindings) <= defined
    assert set(app.bindings) == defined, "every binding of the definitions is one the app declares"
    for binding in definitions["bindings"]:
        assert binding["vhost"] == "/" and binding["destination_type"] == "queue"
        assert binding.get("arguments", {}) == {}


def test_identity_queues_spelled_out(definitions: dict[str, Any]) -> None:
    queues = by_name(definitions["queues"])
    assert queues["identity"]["arguments"] == QUORUM
    assert queues["identity.dlq"]["arguments"] == QUORUM
    for index, ttl in enumerate(RETRY_TTLS_MS):
        # Quorum retry queues dead-letter back at least once (a classic TTL queue does it at
        # most once: a broker restart while a retry waits could drop the event).
        assert queues[retry_queue("identity", index)]["arguments"] == {
            "x-queue-type": "quorum",
            "x-message-ttl": ttl,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "identity",
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
    exchanges = by_name(definitions["exchanges"])
    assert exchanges["voucher.events"]["type"] == "topic"
    assert exchanges["voucher.events"]["arguments"] == {"alternate-exchange": "voucher.events.unrouted"}
    assert exchanges["voucher.events.unrouted"]["type"] == "fanout"
    # Bounded, dropping its oldest: a full queue must never refuse the relay's publish.
    assert queues["voucher.events.unrouted"]["arguments"] == {
        "x-max-length": 10000,
        "x-overflow": "drop-head",
    }
    # ...and the same bound as a policy, for a broker whose queue predates it (see below).
    assert definitions["policies"] == [
        {
            "vhost": "/",
            "name": "voucher-unrouted",
            "pattern": "^voucher\\.events\\.unrouted$",
            "apply-to": "queues",
            "definition": {"max-length": 10000, "overflow": "drop-head"},
            "priority": 10,
        }
    ]


def test_the_definitions_are_generated_from_the_registry(root: Path) -> None:
    """deploy/rabbitmq/definitions.json is ``python -m common.bus.topology``'s output: a
    service added to (or a consumed event changed in) the registry without regenerating it
    fails here."""
    committed = (root / "deploy/rabbitmq/definitions.json").read_text()
    assert committed == topology.render(), (
        "regenerate: uv run python -m common.bus.topology > deploy/rabbitmq/definitions.json"
    )
    consumers = set(consumer_queues(json.loads(committed)))
    assert consumers == set(registry.topology().bindings), "every consuming service of the registry"


def test_every_consumed_event_of_the_registry_is_bound(definitions: dict[str, Any]) -> None:
    bound = {
        (b["destination"], b["routing_key"])
        for b in definitions["bindings"]
        if b["source"] == "voucher.events"
    }
    wanted = {(svc.name, t) for svc in registry.SERVICES for t in svc.consumes}
    assert bound == wanted


def test_consumers_are_bound_to_the_events_they_consume(definitions: dict[str, Any]) -> None:
    consumers = consumer_queues(definitions)
    assert "identity" in consumers
    bound: dict[str, set[str]] = {name: set() for name in consumers}
    for binding in definitions["bindings"]:
        if binding["source"] == "voucher.events":
            assert binding["destination"] in bound, f"{binding['destination']} is no consumer queue"
            assert re.fullmatch(r"[a-z]+\.[a-z_]+", binding["routing_key"]), binding["routing_key"]
            bound[binding["destination"]].add(binding["routing_key"])
    # DESIGN.md's event catalogue: identity adds the provider role when catalog approves one.
    assert "catalog.provider_approved" in bound["identity"]


def test_definitions_hold_no_user_and_start_as_the_renderer_expects(
    root: Path, definitions: dict[str, Any]
) -> None:
    assert not {"users", "permissions"} & definitions.keys(), "users are rendered at start, never committed"
    assert definitions["vhosts"] == [{"name": "/"}]
    first_line = (root / "deploy/rabbitmq/definitions.json").read_text().splitlines()[0]
    assert first_line == "{", "deploy/rabbitmq/entrypoint.sh inserts the user after the first line"


def test_rabbitmq_conf_imports_the_rendered_file(root: Path) -> None:
    conf = (root / "deploy/rabbitmq/rabbitmq.conf").read_text()
    settings = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition("=") for line in conf.splitlines())
        if key.strip() and not key.lstrip().startswith("#")
    )
    script = (root / "deploy/rabbitmq/entrypoint.sh").read_text()
    default_out = re.search(r'out="\$\{VOUCHER_DEFINITIONS_OUT:-([^}]+)\}"', script)
    assert default_out and settings["load_definitions"] == default_out.group(1)
    assert 'template="${VOUCHER_DEFINITIONS_TEMPLATE:-$here/definitions.json}"' in script
    assert (
        subprocess.run(["sh", "-n", str(root / "deploy/rabbitmq/entrypoint.sh")], check=False).returncode == 0
    )


def _render(root: Path, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    erl = shutil.which("erl")
    if erl is None:
        if infra.in_ci():  # CI runs RabbitMQ, so it has Erlang: its absence is a broken machine
            pytest.fail("no Erlang on a CI machine that runs RabbitMQ", pytrace=False)
        pytest.skip("no Erlang here (the rabbitmq image has it)")
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    entry = fake / "docker-entrypoint.sh"
    entry.write_text('#!/bin/sh\necho "exec $*"\n')
    entry.chmod(0o755)
    return subprocess.run(
        ["sh", str(root / "deploy/rabbitmq/entrypoint.sh"), "rabbitmq-server"],
        env={
            "PATH": f"{fake}:{Path(erl).parent}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "VOUCHER_DEFINITIONS_OUT": str(tmp_path / "definitions.json"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_entrypoint_renders_the_users_into_the_definitions(
    root: Path, tmp_path: Path, definitions: dict[str, Any], locale: str
) -> None:
    password = "a-Pässword_1"
    services = sorted(registry.topology().bindings)
    env = {
        "RABBITMQ_DEFAULT_USER": "admin",
        "RABBITMQ_DEFAULT_PASS": password,
        **{f"{s.upper()}_AMQP_PASSWORD": f"{password}-{s}" for s in services},
        "LANG": locale,
        "LC_ALL": locale,
    }
    result = _render(root, tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "exec rabbitmq-server", "then the image's own entrypoint runs"
    out = tmp_path / "definitions.json"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    rendered = json.loads(out.read_text())
    users = {user["name"]: user for user in rendered.pop("users")}
    assert set(users) == {"admin", *services}
    for name, user in users.items():
        assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
        assert user["tags"] == (["administrator"] if name == "admin" else [])
        raw = base64.b64decode(user["password_hash"])
        salt, digest = raw[:4], raw[4:]
        expected = password if name == "admin" else f"{password}-{name}"
        assert digest == hashlib.sha256(salt + expected.encode()).digest(), "RabbitMQ's salted SHA-256"
    grants = rendered.pop("permissions")
    assert grants[0] == {"user": "admin", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
    assert [g["user"] for g in grants[1:]] == services, "each service's own (test_rabbitmq_users.py)"
    assert rendered == definitions
    assert password not in out.read_text()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RABBITMQ_DEFAULT_USER": "admin"}, "RABBITMQ_DEFAULT_PASS"),
        ({"RABBITMQ_DEFAULT_USER": 'ad"min', "RABBITMQ_DEFAULT_PASS": "x"}, "may hold only"),
    ],
)
def test_entrypoint_refuses_a_missing_password_or_a_strange_user(
    root: Path, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = _render(root, tmp_path, env)
    assert result.returncode != 0 and message in result.stderr
    assert "exec" not in result.stdout
    assert not (tmp_path / "definitions.json").exists()


# --- against a real broker -------------------------------------------------------------------


def _renamed(definitions: dict[str, Any], exchange: str, prefix: str) -> dict[str, Any]:
    """The definitions in a test's own namespace (its exchange, its queue prefix)."""

    def name(value: str) -> str:
        if value.startswith("voucher.events"):
            return exchange + value.removeprefix("voucher.events")
        return prefix + value

    def args(arguments: dict[str, Any]) -> dict[str, Any]:
        out = dict(arguments)
        if "alternate-exchange" in out:
            out["alternate-exchange"] = name(out["alternate-exchange"])
        if "x-dead-letter-routing-key" in out:
            out["x-dead-letter-routing-key"] = name(out["x-dead-letter-routing-key"])
        return out

    return {
        "exchanges": [
            {**e, "name": name(e["name"]), "arguments": args(e["arguments"])}
            for e in definitions["exchanges"]
        ],
        "queues": [
            {**q, "name": name(q["name"]), "arguments": args(q["arguments"])} for q in definitions["queues"]
        ],
        "bindings": [
            {**b, "source": name(b["source"]), "destination": name(b["destination"])}
            for b in definitions["bindings"]
        ],
    }


@pytest.mark.broker
async def test_a_broker_accepts_the_apps_declarations_over_the_definitions(
    rabbit: Any, definitions: dict[str, Any]
) -> None:
    """As after a boot-time import: the topology exists as defined, then a service starts
    and declares its own. RabbitMQ must accept every redeclaration."""
    ns = _renamed(definitions, rabbit.exchange, rabbit.prefix)
    connection = await aio_pika.connect(rabbit.url, timeout=10)
    transport = None
    try:
        channel = await connection.channel()
        exchanges = {}
        for e in ns["exchanges"]:
            exchanges[e["name"]] = await channel.declare_exchange(
                e["name"],
                e["type"],
                durable=e["durable"],
                auto_delete=e["auto_delete"],
                internal=e["internal"],
                arguments=e["arguments"],
            )
        queues = {}
        for q in ns["queues"]:
            queues[q["name"]] = await channel.declare_queue(
                q["name"], durable=q["durable"], auto_delete=q["auto_delete"], arguments=q["arguments"]
            )
        for b in ns["bindings"]:
            await queues[b["destination"]].bind(exchanges[b["source"]], routing_key=b["routing_key"])

        transport = rabbit.transport()
        await transport.start()
        app_channel = await transport.connection.channel()
        for name in consumer_queues(definitions):
            await transport.declare_consumer_queues(app_channel, rabbit.prefix + name)

        # The check has teeth: a queue argument that differs is refused.
        first_retry = by_name(ns["queues"])[rabbit.prefix + retry_queue("identity", 0)]
        other = await connection.channel()
        with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
            await other.declare_queue(
                first_retry["name"],
                durable=True,
                arguments={**first_retry["arguments"], "x-message-ttl": 2000},
            )
    finally:
        if transport is not None:
            await transport.stop()  # before the clean-up, or its robust channels redeclare
        cleanup = await connection.channel()
        for q in ns["queues"]:
            await cleanup.queue_delete(q["name"])
        for e in ns["exchanges"]:
            await cleanup.exchange_delete(e["name"])
        await connection.close()


@pytest.mark.broker
@needs_rabbitmq_server
async def test_a_broker_whose_unrouted_queue_predates_its_bound_is_bounded_by_the_definitions_at_boot(
    root: Path, tmp_path: Path
) -> None:
    """Upgrading a running deployment: its broker has an unbounded ``voucher.events.unrouted``
    (a queue's arguments never change; the boot-time import keeps an existing queue as it is),
    so the bound comes from the definitions' policy, applied at the next boot. On a node of
    the test's own (the shared broker is never touched)."""
    from common.testing.rabbit import PrivateRabbitNode

    defs = root / "deploy/rabbitmq/definitions.json"

    class Node(PrivateRabbitNode):
        import_definitions = False

        def env(self) -> dict[str, str]:
            env = super().env()
            if self.import_definitions:
                with open(self.base / "rabbitmq.conf", "a") as conf:
                    conf.write(f"load_definitions = {defs}\n")
            return env

    node = Node(tmp_path / "rabbit")
    await node.start()
    try:
        connection = await aio_pika.connect(node.url, timeout=10)
        channel = await connection.channel()
        await channel.declare_queue("voucher.events.unrouted", durable=True)  # as deployed before
        await connection.close()
        node.terminate()
        node.import_definitions = True
        await node.start()

        connection = await aio_pika.connect(node.url, timeout=10)
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange("voucher.events", ensure=True)
            for i in range(10_005):  # nobody is bound to this type: all go to the unrouted queue
                await exchange.publish(aio_pika.Message(b"{}", message_id=f"e{i}"), routing_key="x.nobody")
            queue = await channel.declare_queue("voucher.events.unrouted", passive=True)
            assert queue.declaration_result.message_count == 10_000
            first = await queue.get(no_ack=True, timeout=5)
            assert first is not None and first.message_id == "e5"  # the oldest five were dropped
        finally:
            await connection.close()
    finally:
        node.stop()
