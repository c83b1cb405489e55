"""The result of ``voucher-invariants`` for Prometheus, pushed to a Pushgateway (the Kubernetes
CronJob in deploy/monitoring/invariants-cronjob.yaml passes ``--pushgateway``).

A run that read the databases replaces the job's whole group (PUT), so an invariant fixed since
the last run disappears; a run that could not reach PostgreSQL only adds ``up 0`` and its time
(POST), keeping the last findings and the last success for the alerts:

- ``voucher_invariants_broken``: violations found by the last run that read the databases;
- ``voucher_invariants_violations{code}``: the same per invariant (``Violation.code``);
- ``voucher_invariants_checks_run`` / ``voucher_invariants_checks_skipped``;
- ``voucher_invariants_up``: 1 when the last run reached PostgreSQL;
- ``voucher_invariants_last_run_timestamp_seconds`` /
  ``voucher_invariants_last_success_timestamp_seconds`` (the latter: databases read).
"""

from __future__ import annotations

import time
from collections import Counter

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, pushadd_to_gateway

from invariants.checks import Report

JOB = "voucher-invariants"
PUSH_TIMEOUT = 10.0


def registry_for(report: Report | None, now: float | None = None) -> CollectorRegistry:
    """The metrics of one run; ``report`` None: PostgreSQL could not be reached."""
    now = time.time() if now is None else now
    registry = CollectorRegistry()
    Gauge("voucher_invariants_up", "1 when the last run reached PostgreSQL", registry=registry).set(
        0 if report is None else 1
    )
    Gauge(
        "voucher_invariants_last_run_timestamp_seconds", "When voucher-invariants last ran", registry=registry
    ).set(now)
    if report is None:
        return registry
    Gauge(
        "voucher_invariants_last_success_timestamp_seconds",
        "When voucher-invariants last read the databases",
        registry=registry,
    ).set(now)
    Gauge("voucher_invariants_broken", "Invariant violations found by the last run", registry=registry).set(
        len(report.violations)
    )
    per_code = Gauge(
        "voucher_invariants_violations",
        "Violations of one invariant found by the last run",
        ["code"],
        registry=registry,
    )
    for code, count in Counter(v.code for v in report.violations).items():
        per_code.labels(code).set(count)
    Gauge("voucher_invariants_checks_run", "Checks the last run made", registry=registry).set(len(report.ran))
    Gauge(
        "voucher_invariants_checks_skipped",
        "Checks the last run could not make (a database missing)",
        registry=registry,
    ).set(len(report.skipped))
    return registry


def push(url: str, report: Report | None) -> None:
    registry = registry_for(report)
    if report is None:  # keep the last findings: only up and the run's time change
        pushadd_to_gateway(url, job=JOB, registry=registry, timeout=PUSH_TIMEOUT)
    else:
        push_to_gateway(url, job=JOB, registry=registry, timeout=PUSH_TIMEOUT)


def metric_names() -> set[str]:
    """Every series name a push can carry (the monitoring tests check the alerts against it)."""
    return {sample.name for family in registry_for(Report(), 0.0).collect() for sample in family.samples} | {
        "voucher_invariants_violations"
    }
