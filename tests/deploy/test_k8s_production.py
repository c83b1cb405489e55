"""What an ops team checks in the rendered Kubernetes manifests before it signs off
production (issue 17): no single replica, no outage on a deploy or a node drain, a
default-deny network with only the paths the platform uses, TLS at the entry with the
client's address believed through exactly one proxy, and a migration Job per database."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from common import processes, registry
from common.http import client_ip

from .k8s_render import K8S, generated, kind_and_name, render

AUTOSCALED = {"gateway", "orders", registry.PORTAL.name}
PORTS = {
    **{s.name: s.port for s in registry.SERVICES},
    registry.PORTAL.name: registry.PORTAL.port,
    "gateway": 8000,
}


@pytest.fixture(scope="module")
def rendered(root: Path) -> list[dict[str, Any]]:
    return render(root / K8S) + render(root / K8S / "migrations")


def kind(objects: list[dict[str, Any]], name: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == name}


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels is understood here: {selector}"
    return selector.get("matchLabels", {}).items() <= labels.items()


# --- §6 no single replica, no outage on deploy ------------------------------------------------


def least_replicas(objects: list[dict[str, Any]], name: str) -> int:
    deployment = kind(objects, "Deployment")[name]
    autoscaler = next(
        (
            h
            for h in kind(objects, "HorizontalPodAutoscaler").values()
            if h["spec"]["scaleTargetRef"]["name"] == name
        ),
        None,
    )
    if autoscaler is not None:
        return int(autoscaler["spec"].get("minReplicas", 1))
    return int(deployment["spec"].get("replicas", 1))


def check_replicas_and_budgets(objects: list[dict[str, Any]]) -> None:
    """The platform's own processes (PORTS); SINGLE_REPLICA (below) says which other
    Deployment runs one replica on purpose and why."""
    deployments = kind(objects, "Deployment")
    budgets = kind(objects, "PodDisruptionBudget").values()
    for name, deployment in deployments.items():
        if name in SINGLE_REPLICA:
            continue
        assert least_replicas(objects, name) >= 2, f"{name}: one replica is an outage on every restart"
        covering = [b for b in budgets if selects(b["spec"]["selector"], pod_labels(deployment))]
        assert len(covering) == 1, f"{name}: one PodDisruptionBudget, found {len(covering)}"
        assert covering[0]["spec"].get("minAvailable") == 1, name


def test_every_deployment_runs_two_replicas_at_least_under_a_disruption_budget(
    rendered: list[dict[str, Any]],
) -> None:
    assert kind(rendered, "Deployment").keys() == PORTS.keys() | SINGLE_REPLICA.keys()
    check_replicas_and_budgets(rendered)


@pytest.mark.parametrize("change", ["one replica", "no budget", "autoscaled from one"])
def test_a_single_replica_or_a_missing_budget_is_caught(rendered: list[dict[str, Any]], change: str) -> None:
    broken = copy.deepcopy(rendered)
    if change == "one replica":
        kind(broken, "Deployment")["quota"]["spec"]["replicas"] = 1
    elif change == "no budget":
        broken = [o for o in broken if kind_and_name(o) != ("PodDisruptionBudget", "payments")]
    else:
        kind(broken, "HorizontalPodAutoscaler")["orders"]["spec"]["minReplicas"] = 1
    with pytest.raises(AssertionError):
        check_replicas_and_budgets(broken)


def test_the_gateway_orders_and_the_portal_scale_on_cpu(rendered: list[dict[str, Any]]) -> None:
    autoscalers = kind(rendered, "HorizontalPodAutoscaler")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in autoscalers.values()} == AUTOSCALED
    for h in autoscalers.values():
        assert h["apiVersion"] == "autoscaling/v2"
        assert h["spec"]["maxReplicas"] > h["spec"]["minReplicas"] >= 2
        (metric,) = h["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
        target = kind(rendered, "Deployment")[h["spec"]["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"], "an apply would reset what the autoscaler chose"
        (container,) = target["spec"]["template"]["spec"]["containers"]
        assert "cpu" in container["resources"]["requests"], "utilisation is of the CPU request"


def drain_seconds() -> int:
    """How long a process may take to stop after SIGTERM: uvicorn's graceful shutdown, then
    the relay, the timers and the revocation poll, stopped one after the other, each given
    10 s (common.worker.Worker.stop)."""
    source = (Path(__file__).resolve().parents[2] / "libs/common/common/worker.py").read_text()
    (worker_wait,) = {int(s) for s in re.findall(r"wait_for\(self\._task, timeout=(\d+)\)", source)}
    return processes.GRACEFUL_SHUTDOWN_SECONDS + 3 * worker_wait


def test_a_rolling_update_never_drops_a_request_or_an_event(
    root: Path, rendered: list[dict[str, Any]]
) -> None:
    entrypoint = (root / "deploy/entrypoint.sh").read_text()
    assert f"--timeout-graceful-shutdown {processes.GRACEFUL_SHUTDOWN_SECONDS}" in entrypoint
    for name, deployment in kind(rendered, "Deployment").items():
        if name in SINGLE_REPLICA:
            continue  # one pod, nothing served to users from it (SINGLE_REPLICA)
        strategy = deployment["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate", name
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0, name
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep", f"{name}: the image (python:3.11-slim, Debian) has sleep"
        pause = int(command[1])
        assert pause >= 5, name
        assert pod["terminationGracePeriodSeconds"] > pause + drain_seconds(), (
            f"{name}: killed before it has stopped its relay and consumers"
        )
        spread = pod["topologySpreadConstraints"]
        by_host = [c for c in spread if c["topologyKey"] == "kubernetes.io/hostname"]
        assert by_host and by_host[0]["whenUnsatisfiable"] == "ScheduleAnyway", name
        assert selects(by_host[0]["labelSelector"], pod_labels(deployment)), name


# --- §7 the network --------------------------------------------------------------------------


def policies_for(
    objects: list[dict[str, Any]], labels: dict[str, str], direction: str
) -> list[dict[str, Any]]:
    return [
        p
        for p in kind(objects, "NetworkPolicy").values()
        if direction in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)
    ]


def allowed(objects: list[dict[str, Any]], source: str, target: str, port: int) -> bool:
    """May a pod of Deployment ``source`` open a connection to ``target``'s pods on ``port``?
    Both ends must allow it: an egress rule of a policy selecting the source, an ingress
    rule of one selecting the target (pods of the same namespace: podSelector peers only)."""
    deployments = kind(objects, "Deployment")
    src, dst = pod_labels(deployments[source]), pod_labels(deployments[target])

    def permits(rules: list[dict[str, Any]], peer_key: str, peer_labels: dict[str, str]) -> bool:
        for rule in rules:
            peers = rule.get(peer_key)
            ports = rule.get("ports")
            port_ok = ports is None or any(p.get("port") in (port, "http") for p in ports)
            peer_ok = peers is None or any(
                "podSelector" in p and "namespaceSelector" not in p and selects(p["podSelector"], peer_labels)
                for p in peers
            )
            if port_ok and peer_ok:
                return True
        return False

    out = any(permits(p["spec"].get("egress", []), "to", dst) for p in policies_for(objects, src, "Egress"))
    into = any(
        permits(p["spec"].get("ingress", []), "from", src) for p in policies_for(objects, dst, "Ingress")
    )
    return out and into


def expected_paths() -> set[tuple[str, str]]:
    """Who calls whom: the gateway every service and the portal, the portal the gateway, and
    each service the services whose /internal/ it reads (its registry row's `calls`) and
    identity (the JWKS every token check reads)."""
    paths = {("gateway", name) for name in PORTS if name != "gateway"}
    paths.add((registry.PORTAL.name, "gateway"))
    for svc in registry.SERVICES:
        paths |= {(svc.name, other) for other in {*svc.calls, "identity"} - {svc.name}}
    return paths


def check_network(objects: list[dict[str, Any]]) -> None:
    everything = [p for p in kind(objects, "NetworkPolicy").values() if p["spec"]["podSelector"] == {}]
    deny = [p for p in everything if not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}, "a default-deny policy"
    for source in PORTS:
        for target in PORTS:
            if source == target:
                continue
            expected = (source, target) in expected_paths()
            assert allowed(objects, source, target, PORTS[target]) == expected, (
                f"{source} -> {target}: {'blocked' if expected else 'allowed'}, expected the opposite"
            )


def test_the_namespace_denies_by_default_and_allows_exactly_the_calls_the_registry_names(
    rendered: list[dict[str, Any]],
) -> None:
    check_network(rendered)


@pytest.mark.parametrize("change", ["default allow", "a call the registry does not name", "a call cut"])
def test_a_wider_or_narrower_network_is_caught(rendered: list[dict[str, Any]], change: str) -> None:
    broken = copy.deepcopy(rendered)
    policies = kind(broken, "NetworkPolicy")
    if change == "default allow":
        broken = [o for o in broken if kind_and_name(o) != ("NetworkPolicy", "default-deny")]
        for p in kind(broken, "NetworkPolicy").values():
            p["spec"]["policyTypes"] = [t for t in p["spec"]["policyTypes"] if t != "Ingress"] or ["Egress"]
    elif change == "a call the registry does not name":
        policies["payments"]["spec"]["egress"].append(
            {"to": [{"podSelector": {"matchLabels": {"app": "orders"}}}]}
        )
        policies["orders"]["spec"]["ingress"].append(
            {"from": [{"podSelector": {"matchLabels": {"app": "payments"}}}]}
        )
    else:
        policies["quota"]["spec"]["ingress"] = [
            {
                "from": [
                    p for p in r["from"] if p.get("podSelector", {}).get("matchLabels") != {"app": "catalog"}
                ],
                "ports": r["ports"],
            }
            for r in policies["quota"]["spec"]["ingress"]
        ]
    with pytest.raises(AssertionError):
        check_network(broken)


def test_every_pod_resolves_names_and_the_services_reach_their_database_and_broker(
    rendered: list[dict[str, Any]],
) -> None:
    dns = [
        p
        for p in kind(rendered, "NetworkPolicy").values()
        if p["spec"]["podSelector"] == {}
        and any(
            {"protocol": "UDP", "port": 53} in r.get("ports", [])
            and {"protocol": "TCP", "port": 53} in r.get("ports", [])
            for r in p["spec"].get("egress", [])
        )
    ]
    assert dns, "egress to kube-dns on 53 (UDP and TCP) for every pod"
    for name in (*registry.NAMES, "gateway"):
        labels = pod_labels(kind(rendered, "Deployment")[name])
        rules = [r for p in policies_for(rendered, labels, "Egress") for r in p["spec"].get("egress", [])]

        def reaches(app: str, port: int, rules: list[dict[str, Any]] = rules) -> bool:
            return any(
                any(
                    peer.get("podSelector", {}).get("matchLabels") == {"app": app} for peer in r.get("to", [])
                )
                and {"protocol": "TCP", "port": port} in r.get("ports", [])
                for r in rules
            )

        assert reaches("postgres", 5432), name
        assert reaches("rabbitmq", 5672) == (name != "gateway"), f"{name}: the broker only for the services"
        outside = [r for r in rules for peer in r.get("to", []) if "ipBlock" in peer]
        assert bool(outside) == (name == "identity"), (
            f"{name}: only identity talks to the outside (its vendors)"
        )
    portal = pod_labels(kind(rendered, "Deployment")[registry.PORTAL.name])
    portal_rules = [r for p in policies_for(rendered, portal, "Egress") for r in p["spec"].get("egress", [])]
    peers = [peer for r in portal_rules if r not in dns[0]["spec"]["egress"] for peer in r.get("to", [])]
    assert peers == [{"podSelector": {"matchLabels": {"app": "gateway"}}}], (
        "the portal reaches the gateway alone"
    )


# --- §2 TLS and the client's address ---------------------------------------------------------


def test_the_entry_is_https_with_hsts_and_the_gateway_trusts_exactly_that_one_proxy(
    rendered: list[dict[str, Any]],
) -> None:
    (ingress,) = kind(rendered, "Ingress").values()
    annotations = ingress["metadata"]["annotations"]
    assert annotations.get("cert-manager.io/cluster-issuer"), "a certificate from cert-manager"
    assert (
        annotations.get("nginx.org/hsts") == "true" and int(annotations["nginx.org/hsts-max-age"]) >= 15768000
    )
    (tls,) = ingress["spec"]["tls"]
    hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
    assert tls["secretName"] and set(tls["hosts"]) == hosts
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"gateway"}, "the gateway is the only way in"
    assert not [
        s for s in kind(rendered, "Service").values() if s["spec"].get("type") in ("LoadBalancer", "NodePort")
    ]
    config = generated(rendered, "ConfigMap", "voucher-config")["data"]
    assert config["GATEWAY_TRUSTED_PROXY_HOPS"] == "1", "one proxy: the ingress controller"
    # The controller appends the address it got the connection from; what the client wrote
    # before it (a forged address) is not taken.
    through_controller = {
        "client": ("10.42.0.15", 41000),  # the controller's pod
        "headers": [(b"x-forwarded-for", b"198.51.100.66, 203.0.113.9")],
    }
    assert client_ip(through_controller, int(config["GATEWAY_TRUSTED_PROXY_HOPS"])) == "203.0.113.9"
    gateway_policy = kind(rendered, "NetworkPolicy")["gateway"]
    sources = [peer for r in gateway_policy["spec"]["ingress"] for peer in r["from"]]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "nginx-ingress"}}} in sources


# --- §4 migrations ---------------------------------------------------------------------------


def test_one_migration_job_per_database_and_no_pod_migrates_at_start(rendered: list[dict[str, Any]]) -> None:
    databases = {*registry.NAMES, "gateway"}  # the gateway keeps its rate-limit counters in one
    jobs = kind(rendered, "Job")
    by_service = {}
    for job in jobs.values():
        (container,) = job["spec"]["template"]["spec"]["containers"]
        command = container["command"]
        assert command[1] == "migrate", f"{job['metadata']['name']}: the service's own migrate command"
        service = command[0].removeprefix("voucher-")
        (pods,) = kind(rendered, "Deployment")[service]["spec"]["template"]["spec"]["containers"]
        assert container["image"] == pods["image"], "the service's own image, of the release: its migrations"
        assert container["image"].startswith(f"voucher-{service}:")
        assert re.fullmatch(r"\d+(ms|s|min)", command[command.index("--lock-timeout") + 1])
        assert re.fullmatch(r"\d+(ms|s|min)", command[command.index("--statement-timeout") + 1])
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert job["spec"].get("activeDeadlineSeconds"), "a Job stuck behind a lock ends"
        by_service[service] = job
    assert by_service.keys() == databases
    for name in databases:
        (container,) = kind(rendered, "Deployment")[name]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env.get(f"{name.upper()}_RUN_MIGRATIONS") == "false", (
            f"{name}: an older release (rollout undo) must not run alembic against a newer schema"
        )


# --- §9 uploads spill to disk, not to the pod's memory ----------------------------------------


def quantity_bytes(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", quantity)
    assert match, quantity
    return int(match.group(1)) * {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[match.group(2)]


def test_temporary_files_are_on_disk_with_room_for_several_of_the_largest_uploads(
    rendered: list[dict[str, Any]],
) -> None:
    """An upload over 1 MiB is spooled to /tmp (Starlette's UploadFile): in a tmpfs it counts
    against the pod's memory limit, and two 10 MiB identity uploads in a 16 MiB one evicted
    identity. On disk, with room for four of the largest bodies any route accepts at once."""
    from gateway.config import Settings as GatewaySettings
    from identity.config import Settings as IdentitySettings
    from quota.config import Settings as QuotaSettings

    largest = max(
        QuotaSettings.model_fields["import_max_bytes"].default,
        GatewaySettings.model_fields["web_max_body_bytes"].default,
        IdentitySettings.model_fields["max_upload_bytes"].default,
    )
    for name, deployment in kind(rendered, "Deployment").items():
        if name in SINGLE_REPLICA:
            continue  # the Pushgateway takes no uploads and writes nothing (read-only root)
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        (tmp,) = [m["name"] for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == tmp]
        assert volume["emptyDir"].get("medium") != "Memory", f"{name}: /tmp in the pod's memory"
        assert quantity_bytes(volume["emptyDir"]["sizeLimit"]) >= 4 * largest, name


def test_the_certificate_can_be_issued_through_the_default_deny(rendered: list[dict[str, Any]]) -> None:
    """cert-manager's HTTP-01 solver pod runs in this namespace and the ingress controller
    must reach it, or the certificate is never issued (nor renewed) behind default-deny."""
    (ingress,) = kind(rendered, "Ingress").values()
    assert "cert-manager.io/cluster-issuer" in ingress["metadata"]["annotations"]
    solver = {"acme.cert-manager.io/http01-solver": "true"}
    rules = [r for p in policies_for(rendered, solver, "Ingress") for r in p["spec"].get("ingress", [])]
    controller = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "nginx-ingress"}}}
    assert any(controller in r["from"] and {"protocol": "TCP", "port": 8089} in r["ports"] for r in rules)


# --- the monitoring workloads: applied with the rest, and reachable on their paths alone ------

# The Deployments that run one replica on purpose, and why (check_replicas_and_budgets and the
# rolling-update checks cover the platform's own, PORTS).
SINGLE_REPLICA = {
    # A cache of voucher-invariants' last result: two replicas behind one Service would each
    # hold a different push (a push lands on one, Prometheus scrapes either) and the series
    # would flap; losing the pod loses at most one hour's result, which the next run pushes
    # again, and VoucherInvariantsNotChecked fires if none comes. Nothing serves users from it,
    # so a node drain may take it (no PodDisruptionBudget: minAvailable 1 would block the drain).
    "pushgateway": "voucher-invariants' last result, pushed again every hour",
}
# voucher-invariants' CronJob runs to completion: replicas, PDBs and rolling updates do not
# apply; a run a drain interrupts is the next hour's (concurrencyPolicy Forbid, and
# VoucherInvariantsNotChecked after 3 hours without one).
INVARIANTS = "voucher-invariants"


def test_deploy_k8s_applies_the_monitoring_workloads_too(rendered: list[dict[str, Any]]) -> None:
    """`kubectl apply -k deploy/k8s` brings the Pushgateway and voucher-invariants' CronJob
    (deploy/monitoring), so the alerts on the invariants have something to read."""
    assert kind(rendered, "Deployment").keys() == PORTS.keys() | SINGLE_REPLICA.keys()
    assert kind(rendered, "CronJob").keys() == {INVARIANTS, "voucher-backup"}
    for name in SINGLE_REPLICA:
        assert kind(rendered, "Deployment")[name]["spec"]["replicas"] == 1, name
        assert not [
            b
            for b in kind(rendered, "PodDisruptionBudget").values()
            if selects(b["spec"]["selector"], pod_labels(kind(rendered, "Deployment")[name]))
        ], f"{name}: a budget would block every node drain"


def cronjob_labels(objects: list[dict[str, Any]], name: str) -> dict[str, str]:
    return kind(objects, "CronJob")[name]["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]


def peers(
    objects: list[dict[str, Any]], labels: dict[str, str], direction: str, named_ports: set[str] = frozenset()
) -> list[tuple[dict[str, Any], list[Any]]]:
    """(peer, ports) of every rule of the policies selecting these pods, but the DNS one
    every pod has (allow-dns): a rule without peers is (`{}`, ports), to anything. An ingress
    rule whose ports are all names the pod does not declare (allow-prometheus's `http` on a
    pod without such a port) opens nothing on it, as Kubernetes resolves named ports per pod."""
    key = "egress" if direction == "Egress" else "ingress"
    side = "to" if direction == "Egress" else "from"
    found = []
    for policy in policies_for(objects, labels, direction):
        if policy["metadata"]["name"] == "allow-dns":
            continue
        for rule in policy["spec"].get(key, []):
            ports = rule.get("ports")
            if (
                direction == "Ingress"
                and ports
                and all(isinstance(p.get("port"), str) and p["port"] not in named_ports for p in ports)
            ):
                continue
            for peer in rule.get(side) or [{}]:
                found.append((peer, rule.get("ports")))
    return found


def pod_peer(app: str) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": {"app": app}}}


MONITORING_NAMESPACE = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


def check_monitoring_network(objects: list[dict[str, Any]]) -> None:
    pushgateway = pod_labels(kind(objects, "Deployment")["pushgateway"])
    invariants = cronjob_labels(objects, INVARIANTS)
    tcp = lambda port: [{"protocol": "TCP", "port": port}]  # noqa: E731
    # voucher-invariants reaches PostgreSQL and the Pushgateway, nothing else; nothing reaches it
    out = peers(objects, invariants, "Egress")
    expected = [(pod_peer("postgres"), tcp(5432)), (pod_peer("pushgateway"), tcp(9091))]
    assert len(out) == len(expected) and all(path in out for path in expected), (
        f"voucher-invariants: out to PostgreSQL and the Pushgateway alone, not {out}"
    )
    assert not peers(objects, invariants, "Ingress"), "nothing connects to voucher-invariants"
    named = {
        p["name"]
        for c in kind(objects, "Deployment")["pushgateway"]["spec"]["template"]["spec"]["containers"]
        for p in c.get("ports", [])
    }
    # the Pushgateway: pushed to by voucher-invariants, scraped by Prometheus; it reaches nothing
    into = peers(objects, pushgateway, "Ingress", named)
    assert any(p == pod_peer(INVARIANTS) and ports == tcp(9091) for p, ports in into), "the push"
    assert any(p == MONITORING_NAMESPACE and ports in (tcp(9091), tcp("http")) for p, ports in into), (
        "Prometheus (namespace monitoring) scrapes the Pushgateway on 9091"
    )
    for p, ports in into:
        assert p in (pod_peer(INVARIANTS), MONITORING_NAMESPACE), f"pushgateway: from {p}"
        assert ports in (tcp(9091), tcp("http")), f"pushgateway: on {ports}"
    assert not peers(objects, pushgateway, "Egress"), "the Pushgateway connects to nothing"


def test_the_monitoring_workloads_reach_exactly_what_they_use(rendered: list[dict[str, Any]]) -> None:
    check_monitoring_network(rendered)


@pytest.mark.parametrize("change", ["invariants out anywhere", "pushgateway open to all", "no push path"])
def test_a_wider_or_missing_monitoring_path_is_caught(rendered: list[dict[str, Any]], change: str) -> None:
    broken = copy.deepcopy(rendered)
    policies = kind(broken, "NetworkPolicy")
    if change == "invariants out anywhere":
        policies[INVARIANTS]["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})
    elif change == "pushgateway open to all":
        policies["pushgateway"]["spec"]["ingress"].append({"ports": [{"protocol": "TCP", "port": 9091}]})
    else:
        policies["pushgateway"]["spec"]["ingress"] = [
            r for r in policies["pushgateway"]["spec"]["ingress"] if pod_peer(INVARIANTS) not in r["from"]
        ]
    with pytest.raises(AssertionError):
        check_monitoring_network(broken)
