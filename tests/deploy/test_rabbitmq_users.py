"""deploy/rabbitmq: one broker user per consuming service, limited to its own queues and the
exchange, and an administrator the services never get (issue 17, §7). The permissions are
computed from the registry's topology (deploy/rabbitmq/permissions.py), checked name by name
against every queue and exchange of the definitions, and tried on a broker node of the
test's own: a service's user starts the service's transport, and is refused another's
queue."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import aio_pika
import aiormq
import pytest

from common import registry
from common.bus.rabbitmq import RabbitTransport, dead_letter_queue, retry_queue, unrouted_queue
from common.settings import ServiceSettings
from common.testing.rabbit import needs_rabbitmq_server

ROOT = Path(__file__).resolve().parents[2]
EXCHANGE = registry.topology().exchange
UNROUTED = unrouted_queue(EXCHANGE)
DELAYS = ServiceSettings.model_fields["bus_retry_delays"].default
CONSUMERS = sorted(registry.topology().bindings)


def load_permissions() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "deploy_permissions", ROOT / "deploy/rabbitmq/permissions.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def own_queues(service: str) -> set[str]:
    """Computed with the bus code: the queue, its DLQ and its retry queues."""
    return {service, dead_letter_queue(service), *(retry_queue(service, i) for i in range(len(DELAYS)))}


def committed() -> list[dict[str, Any]]:
    return json.loads((ROOT / "deploy/rabbitmq/permissions.json").read_text())


def matches(pattern: str, name: str) -> bool:
    # RabbitMQ's regexes are unanchored searches; ours anchor themselves.
    return re.search(pattern, name) is not None


def test_the_permissions_are_generated_from_the_registry() -> None:
    text = (ROOT / "deploy/rabbitmq/permissions.json").read_text()
    assert text == load_permissions().render(), (
        "regenerate: uv run --frozen python deploy/rabbitmq/permissions.py > deploy/rabbitmq/permissions.json"
    )
    assert [row["user"] for row in committed()] == CONSUMERS, "one user per consuming service of the registry"
    assert set(CONSUMERS) == set(registry.NAMES), (
        "every registry service consumes (the access facts at least)"
    )


@pytest.mark.parametrize("service", CONSUMERS)
def test_each_user_reaches_exactly_its_own_queues_and_the_exchange(
    service: str, definitions: dict[str, Any]
) -> None:
    (row,) = [r for r in committed() if r["user"] == service]
    assert row["vhost"] == "/"
    queues = {q["name"] for q in definitions["queues"]}
    exchanges = {e["name"] for e in definitions["exchanges"]}
    own = own_queues(service)
    assert own <= queues
    # Names to try: every queue and exchange of the deployment, the default exchange, and
    # a few that belong to nobody.
    names = queues | exchanges | {"amq.default", "amq.topic", "other", f"{service}.other", f"x{service}"}
    for name in sorted(names):
        # read: consume, get, purge. Its own queues, and the exchanges it binds from.
        assert matches(row["read"], name) == (name in own | {EXCHANGE, UNROUTED}), (service, "read", name)
        # configure: declare (and delete). Never another service's queue: the broker holds
        # the others' (imported at boot), declare_topology declares them only where it may.
        configure = own | {EXCHANGE, UNROUTED}
        assert matches(row["configure"], name) == (name in configure), (service, "configure", name)
        # write: bind to, publish to; the default exchange for its retries and DLQ.
        assert matches(row["write"], name) == (name in configure | {"amq.default"}), (service, "write", name)
    probe = "voucher.quorum-probe.0123456789ab"
    assert matches(row["configure"], probe) and not matches(row["read"], probe)
    assert not matches(row["configure"], "voucher.quorum-probe.x")


# --- the entrypoint that renders the users ------------------------------------------------------


def passwords(**extra: str) -> dict[str, str]:
    return {f"{s.upper()}_AMQP_PASSWORD": f"pw-{s}" for s in CONSUMERS} | extra


def render(
    tmp_path: Path, env: dict[str, str], secrets_file: Path | None = None
) -> subprocess.CompletedProcess[str]:
    erl = shutil.which("erl")
    if erl is None:
        pytest.fail("no Erlang here (the rabbitmq image has it)", pytrace=False)
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    entry = fake / "docker-entrypoint.sh"
    entry.write_text('#!/bin/sh\necho "exec $*"\nenv | grep _AMQP_PASSWORD= || true\n')
    entry.chmod(0o755)
    return subprocess.run(
        ["sh", str(ROOT / "deploy/rabbitmq/entrypoint.sh"), "rabbitmq-server"],
        env={
            "PATH": f"{fake}:{Path(erl).parent}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "LANG": "C.UTF-8",
            "VOUCHER_DEFINITIONS_OUT": str(tmp_path / "definitions.json"),
            "VOUCHER_SECRETS_FILE": str(secrets_file or tmp_path / "none"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_entrypoint_renders_the_admin_and_one_untagged_user_per_service(
    tmp_path: Path, definitions: dict[str, Any]
) -> None:
    secrets = tmp_path / "rabbitmq.secrets.env"
    secrets.write_text(
        "RABBITMQ_DEFAULT_PASS=admin-pw\n" + "".join(f"{k}={v}\n" for k, v in passwords().items())
    )
    result = render(tmp_path, {"RABBITMQ_DEFAULT_USER": "admin"}, secrets)
    assert result.returncode == 0, result.stderr
    # The broker gets the hashes, not the services' passwords.
    assert result.stdout.strip() == "exec rabbitmq-server"
    rendered = json.loads((tmp_path / "definitions.json").read_text())
    users = {u["name"]: u for u in rendered.pop("users")}
    assert set(users) == {"admin", *CONSUMERS}
    assert users["admin"]["tags"] == ["administrator"]
    assert all(users[s]["tags"] == [] for s in CONSUMERS), "no management or admin tag for a service"
    grants = rendered.pop("permissions")
    assert grants[0] == {"user": "admin", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
    assert grants[1:] == committed()
    assert rendered == definitions
    text = (tmp_path / "definitions.json").read_text()
    assert "admin-pw" not in text and "pw-quota" not in text


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            passwords(RABBITMQ_DEFAULT_USER="admin", RABBITMQ_DEFAULT_PASS="x", QUOTA_AMQP_PASSWORD=""),
            "QUOTA_AMQP_PASSWORD",
        ),
        (passwords(RABBITMQ_DEFAULT_USER="quota", RABBITMQ_DEFAULT_PASS="x"), "the administrator may not"),
    ],
)
def test_the_entrypoint_refuses_a_missing_service_password_or_an_admin_named_like_a_service(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = render(tmp_path, env)
    assert result.returncode != 0 and message in result.stderr
    assert not (tmp_path / "definitions.json").exists()


# --- on a broker node of the test's own ----------------------------------------------------------


@pytest.mark.broker
@needs_rabbitmq_server
async def test_a_service_user_runs_its_service_and_is_refused_anothers_queue(tmp_path: Path) -> None:
    from common.testing.rabbit import PrivateRabbitNode

    result = render(tmp_path, passwords(RABBITMQ_DEFAULT_USER="admin", RABBITMQ_DEFAULT_PASS="admin-pw"))
    assert result.returncode == 0, result.stderr
    rendered = tmp_path / "definitions.json"

    class Node(PrivateRabbitNode):
        @property
        def url(self) -> str:
            return f"amqp://admin:admin-pw@127.0.0.1:{self.port}/"

        def env(self) -> dict[str, str]:
            env = super().env()
            with open(self.base / "rabbitmq.conf", "a") as conf:
                conf.write(f"load_definitions = {rendered}\n")
            return env

        def as_user(self, user: str, password: str) -> str:
            return f"amqp://{user}:{password}@127.0.0.1:{self.port}/"

    node = Node(tmp_path / "rabbit")
    await node.start()
    try:
        # quota starts as the service does (the whole topology declared where it may: the
        # others' queues are the broker's, imported at boot), subscribes and publishes.
        transport = RabbitTransport(
            node.as_user("quota", "pw-quota"), topology=registry.topology(), connect_timeout=10
        )
        await transport.start()
        try:
            channel = await transport.connection.channel()
            await transport.declare_consumer_queues(channel, "quota")
            await transport.publish(
                {"event_id": "e1", "event_type": "quota.nothing", "payload": {}, "aggregate_id": "a"}
            )
        finally:
            await transport.stop()

        connection = await aio_pika.connect(node.as_user("quota", "pw-quota"), timeout=10)
        try:
            for queue in ("identity", dead_letter_queue("identity"), retry_queue("orders", 0)):
                channel = await connection.channel()
                with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                    q = await channel.declare_queue(queue, passive=True)
                    await q.get(no_ack=False, fail=False)
            # Nor may it delete, purge or bind another service's queue.
            for act in ("delete", "purge", "bind"):
                channel = await connection.channel()
                other = await channel.declare_queue("orders", passive=True)
                with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                    if act == "bind":
                        await other.bind("voucher.events", routing_key="quota.nothing")
                    else:
                        await getattr(other, act)()
            channel = await connection.channel()
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await channel.declare_queue("anything.else", durable=True)
            # Its own DLQ it may read (voucher-dlq list).
            channel = await connection.channel()
            own = await channel.declare_queue(dead_letter_queue("quota"), passive=True)
            await own.get(no_ack=False, fail=False)
        finally:
            await connection.close()

        # A wrong password, and the administrator's name with a service's password, are refused.
        with pytest.raises(aiormq.exceptions.ProbableAuthenticationError):
            await aio_pika.connect(node.as_user("admin", "pw-quota"), timeout=10)
    finally:
        node.stop()
