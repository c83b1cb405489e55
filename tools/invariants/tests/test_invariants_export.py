"""``voucher-invariants --pushgateway URL``: the CronJob's result where Prometheus reads it
(deploy/monitoring: the alerts VoucherInvariantsBroken and VoucherInvariantsNotChecked)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

from invariants import export
from invariants.checks import Report, Violation
from invariants.cli import run


@dataclass
class Pushgateway:
    url: str
    pushes: list[tuple[str, str, dict[str, float]]] = field(default_factory=list)  # method, path, samples


@pytest.fixture
def pushgateway() -> Iterator[Pushgateway]:
    gateway = Pushgateway("")

    class Handler(BaseHTTPRequestHandler):
        def _take(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            values: dict[str, float] = {}
            for family in text_string_to_metric_families(body):
                for s in family.samples:
                    labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                    values[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
            gateway.pushes.append((self.command, self.path, values))
            self.send_response(200)
            self.end_headers()

        do_PUT = do_POST = _take

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    gateway.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gateway
    finally:
        server.shutdown()
        server.server_close()


def test_a_run_that_read_the_databases_replaces_the_whole_result(pushgateway: Pushgateway) -> None:
    report = Report(
        violations=[
            Violation("voucher_vs_live_orders", "a", {"voucher": "v-1"}),
            Violation("voucher_vs_live_orders", "b", {"voucher": "v-2"}),
            Violation("order_reservation_missing", "c", {"order": "o-1"}),
        ],
        ran=["x", "y"],
        skipped=[("z", ("payments",))],
    )
    before = time.time()
    export.push(pushgateway.url, report)
    [(method, path, values)] = pushgateway.pushes
    assert (method, path) == ("PUT", "/metrics/job/voucher-invariants")  # a code fixed since disappears
    assert values["voucher_invariants_broken"] == 3
    assert values['voucher_invariants_violations{code="voucher_vs_live_orders"}'] == 2
    assert values['voucher_invariants_violations{code="order_reservation_missing"}'] == 1
    assert values["voucher_invariants_checks_run"] == 2
    assert values["voucher_invariants_checks_skipped"] == 1
    assert values["voucher_invariants_up"] == 1
    assert before <= values["voucher_invariants_last_success_timestamp_seconds"] <= time.time()
    assert (
        values["voucher_invariants_last_run_timestamp_seconds"]
        == (values["voucher_invariants_last_success_timestamp_seconds"])
    )


async def test_the_command_pushes_what_it_found_and_an_unreachable_server_keeps_the_last_result(
    pushgateway: Pushgateway, postgres_server: str
) -> None:
    missing = postgres_server.rstrip("/") + "/no_such_database_for_invariants"
    flags = [a for s in ("quota", "orders", "contracts", "payments") for a in (f"--{s}-url", missing)]
    assert await run([*flags, "--pushgateway", pushgateway.url], env={}) == 0
    method, _, values = pushgateway.pushes[-1]
    assert (
        method == "PUT" and values["voucher_invariants_broken"] == 0 and values["voucher_invariants_up"] == 1
    )

    # from the environment, as the CronJob passes it
    env = {"INVARIANTS_PUSHGATEWAY_URL": pushgateway.url}
    assert await run(["--postgres-url", "postgresql://postgres@127.0.0.1:1"], env=env) == 2
    method, path, values = pushgateway.pushes[-1]
    # POST: only these series change; the last findings and last success stay as they were
    assert (method, path) == ("POST", "/metrics/job/voucher-invariants")
    assert values["voucher_invariants_up"] == 0
    assert "voucher_invariants_last_run_timestamp_seconds" in values
    assert "voucher_invariants_broken" not in values
    assert "voucher_invariants_last_success_timestamp_seconds" not in values
