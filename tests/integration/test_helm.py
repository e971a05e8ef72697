"""The Helm chart (deploy/helm/sluice/), checked by the real `helm` (built by scripts/helm.sh from
the Go module helm.sh/helm/v4, cached under .state/tools): lint and template for each CI values
file, every rendered manifest validated against the Kubernetes JSON schemas (the offline copy in
the kubernetes-validate package, strict: no unknown fields), and the points the chart exists
for: probes on the services' own ports, disruption budgets, CPU autoscaling for ingest and api,
writers bounded by the partitions, the balancer's path split as an Ingress (generated from the
route table), scraping under the job names the alert rules expect, and a non-root user."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from schemas.routes import ROUTES
from sluice import cli, config
from sluice.commands import balancer
from tests.stack import REPO, SCRIPTS

CHART = REPO / "deploy" / "helm" / "sluice"
VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
KUBERNETES_VERSION = "1.33.0"  # the oldest minor still supported upstream when this was written
ROLES = {"ingest": 5001, "api": 5002, "writer": 5003}


@cache
def helm_binary() -> str:
    result = subprocess.run(
        [str(SCRIPTS / "helm.sh")], check=True, capture_output=True, text=True, timeout=1800
    )
    return result.stdout.strip().splitlines()[-1]


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@cache
def rendered(values: Path) -> tuple[dict[str, Any], ...]:
    out = helm("template", "rel", str(CHART), "-f", str(values), "--include-crds").stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def _of_kind(values: Path, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in rendered(values) if d["kind"] == kind}


def _role(doc: dict[str, Any]) -> str:
    return str(doc["metadata"]["labels"]["app.kubernetes.io/component"])


@pytest.mark.parametrize("values", VALUES, ids=lambda v: v.stem)
def test_helm_lint_passes_strictly(values: Path) -> None:
    result = helm("lint", "--strict", str(CHART), "-f", str(values))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", VALUES, ids=lambda v: v.stem)
def test_rendered_manifests_validate_against_the_kubernetes_schemas(values: Path) -> None:
    kinds = set()
    for doc in rendered(values):
        kinds.add(doc["kind"])
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            # A CRD: not in the Kubernetes schemas; its fields are checked below.
            assert set(doc["spec"]) == {"jobLabel", "selector", "endpoints"}
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert kinds == {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Job",
        "ServiceMonitor",
    }


def test_schema_validation_rejects_a_wrong_manifest() -> None:
    deployment = next(iter(_of_kind(VALUES[0], "Deployment").values()))
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return dict(container)


@pytest.mark.parametrize("values", VALUES, ids=lambda v: v.stem)
def test_every_service_is_probed_on_its_own_port(values: Path) -> None:
    deployments = _of_kind(values, "Deployment")
    assert sorted(_role(d) for d in deployments.values()) == sorted(ROLES)
    for doc in deployments.values():
        role, container = _role(doc), _container(doc)
        assert container["args"] == [role]
        assert container["ports"] == [
            {"name": "http", "containerPort": ROLES[role], "protocol": "TCP"}
        ]
        for probe, path in (
            ("readinessProbe", "/health/ready"),
            ("startupProbe", "/health/ready"),
            ("livenessProbe", "/health/live"),
        ):
            assert container[probe]["httpGet"] == {"path": path, "port": "http"}, (role, probe)
        # The port the probes use is the one the service listens on by its settings.
        settings = config.load(_env_with_files(container, values))
        listening = {
            "ingest": settings.ingest.port,
            "api": settings.api.port,
            "writer": settings.writer.metrics_port,
        }[role]
        assert listening == ROLES[role]


def _env_with_files(
    container: dict[str, Any], values: Path, tmp: Path | None = None
) -> dict[str, str]:
    """The container's literal environment; *_FILE settings must point into a mounted secret,
    and are replaced by a file holding a plausible value so the real parser reads it."""
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    env: dict[str, str] = {}
    for item in container["env"]:
        if "value" not in item:
            assert "secretKeyRef" in item["valueFrom"], item
            continue
        name, value = item["name"], item["value"]
        if name.endswith("_FILE"):
            assert any(value.startswith(m + "/") for m in mounts), (name, value)
            stand_in = (tmp or Path("/tmp")) / f"sluice-helm-{values.stem}-{name}"
            stand_in.write_text("postgresql://u:p@h/db\n" if "DSN" in name else "secret\n")
            value = str(stand_in)
        env[name] = value
    return env


@pytest.mark.parametrize("values", VALUES, ids=lambda v: v.stem)
def test_every_container_environment_passes_the_config_parser_and_cli(
    values: Path, tmp_path: Path
) -> None:
    containers = [_container(d) for d in _of_kind(values, "Deployment").values()]
    job = next(iter(_of_kind(values, "Job").values()))
    containers.append(_container(job))
    for container in containers:
        settings = config.load(_env_with_files(container, values, tmp_path))
        assert settings.ingest.host == settings.api.host == settings.writer.host == "0.0.0.0"
        args = cli.build_parser().parse_args(container["args"])
        assert args.command == container["args"][0]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert cli.build_parser().parse_args(_container(job)["args"]).wait_s > 0


def test_secrets_are_files_from_the_existing_secret_never_values() -> None:
    values = CHART / "ci" / "managed-values.yaml"
    for doc in _of_kind(values, "Deployment").values():
        container = _container(doc)
        names = {item["name"] for item in container["env"]}
        files = {"SLUICE_PG_DSN_FILE", "SLUICE_KAFKA_SASL_PASSWORD_FILE"}
        assert files | {"SLUICE_WEBHOOKS_SECRET_KEYS_FILE"} <= names
        plain = {"SLUICE_PG_DSN", "SLUICE_KAFKA_SASL_PASSWORD", "SLUICE_WEBHOOKS_SECRET_KEYS"}
        assert not plain & names
        volumes = {v["name"]: v for v in doc["spec"]["template"]["spec"]["volumes"]}
        assert volumes["secrets"]["secret"]["secretName"] == "sluice-secrets"


@pytest.mark.parametrize("values", VALUES, ids=lambda v: v.stem)
def test_budgets_and_autoscaling(values: Path) -> None:
    budgets = _of_kind(values, "PodDisruptionBudget")
    assert sorted(
        b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        for b in budgets.values()
    ) == sorted(ROLES)
    scalers = _of_kind(values, "HorizontalPodAutoscaler")
    targets = {s["spec"]["scaleTargetRef"]["name"].rsplit("-", 1)[1]: s for s in scalers.values()}
    assert set(targets) == {"ingest", "api"}  # writers scale with partitions, not CPU
    for scaler in targets.values():
        (metric,) = scaler["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
    deployments = {_role(d): d for d in _of_kind(values, "Deployment").values()}
    assert "replicas" not in deployments["ingest"]["spec"]  # the autoscaler owns it
    assert deployments["ingest"]["spec"]["template"]["spec"]["containers"][0]["resources"][
        "requests"
    ]["cpu"]
    writer_env = {e["name"]: e.get("value") for e in _container(deployments["writer"])["env"]}
    assert deployments["writer"]["spec"]["replicas"] <= int(writer_env["SLUICE_KAFKA_PARTITIONS"])


def test_more_writers_than_partitions_is_refused() -> None:
    result = helm(
        "template", "rel", str(CHART), "-f", str(VALUES[0]),
        "--set", "writer.replicas=9", "--set", "kafka.partitions=8", check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "writer.replicas (9) exceeds kafka.partitions (8)" in result.stderr


@pytest.mark.parametrize("values", VALUES, ids=lambda v: v.stem)
def test_the_ingress_is_the_balancers_path_split(values: Path) -> None:
    (ingress,) = _of_kind(values, "Ingress").values()
    (rule,) = ingress["spec"]["rules"]
    routes = [
        (p["path"], p["pathType"], p["backend"]["service"]["name"].rsplit("-", 1)[1])
        for p in rule["http"]["paths"]
    ]
    ingest_urls = sorted(u for r in ROUTES if r.service == "ingest" for u in r.urls())
    assert sorted(p for p, kind, svc in routes if svc == "ingest") == ingest_urls
    assert all(kind == "Exact" for _, kind, svc in routes if svc == "ingest")
    assert [(p, kind) for p, kind, svc in routes if svc == "api"] == [("/", "Prefix")]


def test_the_committed_ingress_paths_are_generated_from_the_route_table() -> None:
    assert (CHART / "files" / "ingest-paths.txt").read_text() == balancer.ingress_paths(), (
        "run `sluice balancer ingress-paths > deploy/helm/sluice/files/ingest-paths.txt`"
    )


@pytest.mark.parametrize("values", VALUES, ids=lambda v: v.stem)
def test_scraped_under_the_job_names_the_alerts_expect(values: Path) -> None:
    (monitor,) = _of_kind(values, "ServiceMonitor").values()
    label = monitor["spec"]["jobLabel"]
    jobs = {_role(s): s["metadata"]["labels"][label] for s in _of_kind(values, "Service").values()}
    assert jobs == {role: f"sluice-{role}" for role in ROLES}
    alerts = (REPO / "deploy/monitoring/prometheus/alerts.yml").read_text()
    assert "sluice-ingest" in alerts or "sluice-(ingest" in alerts
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]


@pytest.mark.parametrize("values", VALUES, ids=lambda v: v.stem)
def test_pods_run_as_the_images_non_root_user(values: Path) -> None:
    dockerfile = (REPO / "compose" / "Dockerfile").read_text()
    for doc in [*_of_kind(values, "Deployment").values(), *_of_kind(values, "Job").values()]:
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        uid = pod["securityContext"]["runAsUser"]
        assert f"USER {uid}:{pod['securityContext']['runAsGroup']}" in dockerfile
        container = _container(doc)
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
