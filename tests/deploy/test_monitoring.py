"""deploy/monitoring (issue 17 §3): the scrape configuration reaches every service of the
registry, the alert rules are valid Prometheus rules (each PromQL expression parsed by
promql-parser, the Rust parser of GreptimeDB; `promtool check rules` too where it is
installed), and every metric a rule or a dashboard panel reads, with every label it matches
on, is one the platform exports.

Run as a script, it prints prometheusrule.yaml (alerts.yml for the Prometheus Operator):
    .venv/bin/python tests/deploy/test_monitoring.py > deploy/monitoring/prometheusrule.yaml
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from common import registry

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
GATEWAY_PORT = 8000
# Series Prometheus makes itself, not read off /metrics.
SYNTHETIC = {"up"}
# What issue 17 §3 asks an alert for: a rule's name for each.
REQUIRED_ALERTS = {
    "outbox backlog": "VoucherOutboxBacklog",
    "outbox oldest age": "VoucherOutboxStale",
    "DLQ depth": "VoucherDeadLetters",
    "dead timers": "VoucherDeadTimers",
    "consumer lag": "VoucherConsumerLag",
    "5xx rate": "VoucherHttp5xxRate",
    "p99 latency": "VoucherHttpLatencyP99",
    "readiness flaps": "VoucherReadinessFlapping",
    "voucher-invariants findings": "VoucherInvariantsBroken",
}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def load_yaml(name: str) -> Any:
    return yaml.safe_load((MONITORING / name).read_text(encoding="utf-8"))


def load_all(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MONITORING / name).read_text(encoding="utf-8")) if d]


def rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml("alerts.yml")["groups"] for rule in group["rules"]]


def scraped_services() -> set[str]:
    """Every process that serves /metrics: the registry's services and the gateway (the
    portal, web, has none)."""
    return {s.name for s in registry.SERVICES} | {"gateway"}


def prometheusrule() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "voucher", "labels": {"app.kubernetes.io/part-of": "voucher"}},
        "spec": {"groups": load_yaml("alerts.yml")["groups"]},
    }


# --- what the platform exports ----------------------------------------------------------------


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    """Series name -> its label names, as the services, the gateway and voucher-invariants'
    push register them (every app module imported, so any metric of their own is counted)."""
    from prometheus_client import REGISTRY, CollectorRegistry

    from invariants import export
    from invariants.checks import Report

    for service in (*registry.SERVICES, registry.Service("gateway", GATEWAY_PORT, "gateway.main:create_app")):
        importlib.import_module(service.app.split(":")[0])
    found: dict[str, set[str]] = {}

    def add(reg: CollectorRegistry) -> None:
        for name, collector in reg._names_to_collectors.items():
            found[name] = set(getattr(collector, "_labelnames", ()))

    add(REGISTRY)
    add(export.registry_for(None, 0.0))
    add(export.registry_for(Report(), 0.0))
    return found


def selectors(expr: str) -> Iterator[tuple[str, set[str]]]:
    """(metric name, label names matched) of each selector in a PromQL expression."""
    found: list[tuple[str, set[str]]] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            labels = {m.name for m in node.matchers.matchers}
            found.append((node.name, labels))

    promql_parser.walk(promql_parser.parse(expr), visit)
    yield from found


def assert_reads_exported(where: str, expr: str, exported: dict[str, set[str]]) -> None:
    for name, labels in selectors(expr):
        assert name, f"{where}: a selector without a metric name in {expr}"
        if name in SYNTHETIC:
            continue
        assert name in exported, f"{where}: {name} is not exported by the platform"
        unknown = labels - exported[name] - {"__name__", "job", "instance", "app"}
        assert not unknown, f"{where}: {name} has no label {sorted(unknown)}"


# --- the alert rules --------------------------------------------------------------------------


def test_the_alert_rules_are_valid_prometheus_rules() -> None:
    doc = load_yaml("alerts.yml")
    assert set(doc) == {"groups"}
    groups = doc["groups"]
    assert len({g["name"] for g in groups}) == len(groups)
    names: list[str] = []
    for group in groups:
        assert set(group) <= {"name", "interval", "rules", "limit"} and group["rules"], group["name"]
        for rule in group["rules"]:
            where = f"{group['name']}/{rule.get('alert')}"
            assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, where
            assert re.fullmatch(r"Voucher[A-Z][A-Za-z0-9]+", rule["alert"]), where
            names.append(rule["alert"])
            promql_parser.parse(rule["expr"])  # raises ValueError on an invalid expression
            if "for" in rule:
                promql_parser.parse_duration(rule["for"])
            assert rule["labels"]["severity"] in {"warning", "critical"}, where
            annotations = rule["annotations"]
            assert {"summary", "description", "runbook_url"} <= set(annotations), where
            for text in annotations.values():
                # Go templates: balanced, and reading only the alert's labels and value
                assert text.count("{{") == text.count("}}"), where
                for var in re.findall(r"\$[a-zA-Z_.]+", text):
                    assert var == "$value" or var.startswith("$labels."), f"{where}: {var}"
    assert len(set(names)) == len(names), "an alert name is used twice"


def test_every_alert_the_issue_asks_for_is_there() -> None:
    names = {rule["alert"] for rule in rules()}
    missing = {what: name for what, name in REQUIRED_ALERTS.items() if name not in names}
    assert not missing


def test_promtool_accepts_the_rules_where_it_is_installed(tmp_path: Path) -> None:
    """promtool is not on PyPI: where it is installed (a Prometheus release), it checks the
    files too; elsewhere the parser test above is the check."""
    promtool = shutil.which("promtool")
    if promtool is not None:
        done = subprocess.run(
            [promtool, "check", "rules", str(MONITORING / "alerts.yml")], capture_output=True
        )
        assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
        (tmp_path / "alerts.yml").write_text((MONITORING / "alerts.yml").read_text())
        shutil.copy(MONITORING / "prometheus.yml", tmp_path / "prometheus.yml")
        (tmp_path / "token").write_text("t")
        config = (
            (tmp_path / "prometheus.yml")
            .read_text()
            .replace("/run/secrets/metrics_token", str(tmp_path / "token"))
        )
        (tmp_path / "prometheus.yml").write_text(config)
        done = subprocess.run(
            [promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True
        )
        assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def test_every_metric_a_rule_reads_is_exported(exported: dict[str, set[str]]) -> None:
    for rule in rules():
        assert_reads_exported(rule["alert"], rule["expr"], exported)


def test_every_runbook_is_a_section_of_the_deploy_readme() -> None:
    readme = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    anchors = {github_anchor(h) for h in re.findall(r"^#{2,4} (.+)$", readme, flags=re.M)}
    for rule in rules():
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path == "deploy/README.md" and anchor in anchors, f"{rule['alert']}: {url}"


def github_anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def test_the_operators_copy_of_the_rules_is_the_same() -> None:
    assert load_all("prometheusrule.yaml") == [prometheusrule()], (
        "regenerate: .venv/bin/python tests/deploy/test_monitoring.py > deploy/monitoring/prometheusrule.yaml"
    )


# --- scraping ---------------------------------------------------------------------------------


def test_prometheus_scrapes_every_service_of_the_registry_and_the_gateway_with_the_token() -> None:
    config = load_yaml("prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    voucher = jobs["voucher"]
    targets = {t for sc in voucher["static_configs"] for t in sc["targets"]}
    expected = {f"{s.name}:{s.port}" for s in registry.SERVICES} | {f"gateway:{GATEWAY_PORT}"}
    assert targets == expected
    assert voucher.get("metrics_path", "/metrics") == "/metrics"
    assert voucher["authorization"]["type"] == "Bearer" and voucher["authorization"]["credentials_file"]
    assert jobs["pushgateway"]["honor_labels"] is True
    assert config["rule_files"] == ["alerts.yml"]


def test_the_service_monitor_selects_every_service_of_the_registry_with_the_token() -> None:
    monitors = {d["metadata"]["name"]: d for d in load_all("servicemonitor.yaml")}
    assert all(d["kind"] == "ServiceMonitor" for d in monitors.values())
    voucher = monitors["voucher"]["spec"]
    [expression] = voucher["selector"]["matchExpressions"]
    assert expression["key"] == "app" and expression["operator"] == "In"
    assert set(expression["values"]) == scraped_services()
    [endpoint] = voucher["endpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    credentials = endpoint["authorization"]["credentials"]
    assert endpoint["authorization"]["type"] == "Bearer"
    # the Secret every pod reads METRICS_TOKEN from (deploy/README.md: Kubernetes)
    assert credentials == {"name": "voucher-secrets", "key": "METRICS_TOKEN"}
    # the job label the alerts read (up{job="voucher"}), as in prometheus.yml
    assert voucher["jobLabel"] == "app.kubernetes.io/part-of"
    assert monitors["pushgateway"]["spec"]["endpoints"][0]["honorLabels"] is True


def test_each_scraped_service_is_a_kubernetes_service_with_an_http_port() -> None:
    for name in scraped_services():
        docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / f"{name}.yaml").read_text()) if d]
        [service] = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == name]
        assert service["metadata"]["labels"]["app"] == name
        assert service["metadata"]["labels"]["app.kubernetes.io/part-of"] == "voucher"
        assert "http" in {p["name"] for p in service["spec"]["ports"]}


# --- voucher-invariants' CronJob and the Pushgateway -------------------------------------------


def test_the_invariants_cronjob_pushes_to_the_shipped_pushgateway() -> None:
    [cronjob] = load_all("invariants-cronjob.yaml")
    assert cronjob["kind"] == "CronJob" and cronjob["apiVersion"] == "batch/v1"
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert len(spec["schedule"].split()) == 5
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    [container] = pod["containers"]
    assert container["command"][0] == "voucher-invariants"
    # the console script ships in the workspace member voucher-invariants (tools/invariants),
    # whose image deploy/Dockerfile builds with SERVICE=invariants
    pyproject = tomllib.loads((ROOT / "tools" / "invariants" / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "voucher-invariants"
    assert pyproject["project"]["scripts"]["voucher-invariants"] == "invariants.cli:main"
    assert container["image"] == "voucher-invariants"
    env = {e["name"]: e["value"] for e in container["env"]}
    pushgateway = {d["kind"]: d for d in load_all("pushgateway.yaml")}
    port = pushgateway["Service"]["spec"]["ports"][0]["port"]
    assert env["INVARIANTS_PUSHGATEWAY_URL"] == f"http://{pushgateway['Service']['metadata']['name']}:{port}"
    secrets = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
    # its read-only role's URLs alone (test_k8s_credentials.py checks what they hold)
    assert secrets == ["voucher-invariants-credentials"]
    # restricted pod security, as every workload of deploy/k8s
    for workload in (pod, pushgateway["Deployment"]["spec"]["template"]["spec"]):
        assert workload["securityContext"]["runAsNonRoot"] is True
        for c in workload["containers"]:
            ctx = c["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False and ctx["readOnlyRootFilesystem"] is True
            assert ctx["capabilities"]["drop"] == ["ALL"]
            assert {"requests", "limits"} <= set(c["resources"])


def test_kubectl_apply_k_deploy_monitoring_brings_every_workload_of_the_directory() -> None:
    kustomization = load_yaml("kustomization.yaml")
    workloads = sorted(
        path.name
        for path in MONITORING.glob("*.yaml")
        if path.name != "kustomization.yaml"
        and not any(d["apiVersion"].startswith("monitoring.coreos.com/") for d in load_all(path.name))
    )
    assert sorted(kustomization["resources"]) == workloads == ["invariants-cronjob.yaml", "pushgateway.yaml"]


# --- the dashboard ----------------------------------------------------------------------------


def dashboard_panels() -> list[dict[str, Any]]:
    dashboard = json.loads((MONITORING / "dashboard.json").read_text(encoding="utf-8"))
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_the_dashboard_is_grafana_json_for_the_saga() -> None:
    dashboard = json.loads((MONITORING / "dashboard.json").read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    titles = {p["title"] for p in dashboard_panels()}
    for wanted in (
        "Orders decided per second",
        "Outbox backlog",
        "Consumer lag",
        "Dead letters, dead timers, retries",
        "5xx ratio",
        "p99 latency per service",
    ):
        assert wanted in titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(set(ids)) == len(ids)


def test_every_metric_a_dashboard_panel_reads_is_exported(exported: dict[str, set[str]]) -> None:
    for panel in dashboard_panels():
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{panel['title']}: an unknown variable in {expr}"
            assert_reads_exported(panel["title"], expr, exported)


def test_the_saga_panel_reads_events_that_exist_from_the_consumers_that_apply_them() -> None:
    """The decided-orders panel names event types and consumers: they are the registry's."""
    consumes = {s.name: set(s.consumes) for s in registry.SERVICES}
    for panel in dashboard_panels():
        for target in panel["targets"]:
            for consumer in re.findall(r'consumer="([^"]+)"', target["expr"]):
                for alternation in re.findall(r'event_type=~?"([^"]+)"', target["expr"]):
                    for event_type in alternation.split("|"):
                        assert event_type in consumes[consumer], f"{panel['title']}: {consumer} {event_type}"


if __name__ == "__main__":
    sys.stdout.write(
        "# alerts.yml for the Prometheus Operator (its ruleSelector must select this object;\n"
        "# kube-prometheus-stack: the label release=<its release name>). Generated from alerts.yml:\n"
        "#   .venv/bin/python tests/deploy/test_monitoring.py > deploy/monitoring/prometheusrule.yaml\n"
        "# tests/deploy/test_monitoring.py fails when the two differ.\n"
    )
    sys.stdout.write(yaml.safe_dump(prometheusrule(), sort_keys=False, allow_unicode=True, width=100))


# --- METRICS_TOKEN: the same value in every scraped process and in Prometheus ------------------

TOKEN_FILE_COMMAND = re.compile(
    r"^#\s+(umask 077; sed -n 's/\^METRICS_TOKEN=//p' (\S+) > (\S+))$", re.MULTILINE
)


def test_every_scraped_process_and_prometheus_get_the_same_metrics_token(tmp_path: Path) -> None:
    """/metrics stays closed until METRICS_TOKEN is set (issue 17, §3): secrets.env sets it;
    compose gives that file to every process prometheus.yml scrapes; in Kubernetes the
    ServiceMonitor reads it from the Secret each scraped Deployment reads, made from the same
    file; and prometheus.yml's token file is written from it by the command it documents."""
    from .conftest import parse_env_file
    from .test_registry import env_names, settings_class

    example = parse_env_file(ROOT / "deploy/env/secrets.env.example")
    assert "METRICS_TOKEN" in example, "deploy/env/secrets.env.example: METRICS_TOKEN"
    for name in scraped_services():
        assert "METRICS_TOKEN" in env_names(settings_class(name)), f"{name} reads no METRICS_TOKEN"

    # docker-compose: each target of the voucher job is a compose service given secrets.env
    # (a secret file, which its entrypoint reads)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    config = load_yaml("prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "voucher"]
    shared = [name for name, spec in compose["secrets"].items() if spec["file"] == "deploy/env/secrets.env"]
    assert shared == ["secrets.env"], "docker-compose.yml: the secret file secrets.env"
    for target in (t for sc in job["static_configs"] for t in sc["targets"]):
        service = compose["services"][target.split(":")[0]]
        assert "secrets.env" in service.get("secrets", []), f"{target}: no METRICS_TOKEN in compose"

    # Kubernetes: the ServiceMonitor's Secret is the one each scraped Deployment reads whole,
    # made from secrets.env (deploy/README.md)
    monitor = next(d for d in load_all("servicemonitor.yaml") if d["metadata"]["name"] == "voucher")
    secret = monitor["spec"]["endpoints"][0]["authorization"]["credentials"]["name"]
    for name in scraped_services():
        docs = [d for d in yaml.safe_load_all((ROOT / "deploy/k8s" / f"{name}.yaml").read_text()) if d]
        (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert {"secretRef": {"name": secret}} in container["envFrom"], f"{name}: METRICS_TOKEN from {secret}"
    readme = (ROOT / "deploy/README.md").read_text()
    assert f"kubectl create secret generic {secret} --from-env-file=deploy/env/secrets.env" in readme

    # Prometheus (prometheus.yml): the token file, written from secrets.env as it documents
    commands = TOKEN_FILE_COMMAND.findall((MONITORING / "prometheus.yml").read_text())
    assert commands, "prometheus.yml: the command that writes its token file from secrets.env"
    ((command, source, written),) = commands
    assert source == "deploy/env/secrets.env"
    (tmp_path / "deploy/env").mkdir(parents=True)
    (tmp_path / source).write_text("SERVICE_TOKEN_SECRET=a\nMETRICS_TOKEN=the-token-value\n")
    subprocess.run(["sh", "-c", command], cwd=tmp_path, check=True, timeout=30)
    assert (tmp_path / written).read_text().strip() == "the-token-value"
    assert oct((tmp_path / written).stat().st_mode & 0o777) == oct(0o600), "readable by its owner alone"
    mounted = job["authorization"]["credentials_file"]
    assert f"{written}:{mounted}" in (MONITORING / "prometheus.yml").read_text() or (
        f"file: {written}" in (MONITORING / "prometheus.yml").read_text()
        and mounted.startswith("/run/secrets/")
    ), f"prometheus.yml: how {written} becomes {mounted}"
    ignored = (ROOT / "deploy/env/.gitignore").read_text().split()
    assert Path(written).name in ignored or Path(written).name.endswith(".env"), (
        f"{written} is never committed"
    )
