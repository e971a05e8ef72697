"""The docker-compose stack and the image can only be checked statically here (no Docker engine),
so this checks each point that makes them start: health checks on every long-running service
(Sluice's on /health/ready), the balancer is HAProxy with the generated configuration, migrate
waits for healthy dependencies and retries, the image runs as a non-root user that owns what it
writes, every Sluice service's environment passes the real configuration parser and its command
the real CLI parser, Prometheus and Grafana are provisioned from deploy/monitoring/, the UI
bundle is in the image, and every image is pinned."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice import cli, config
from sluice.commands import balancer, healthcheck

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose"
SLUICE_SERVICES = ("migrate", "writer", "ingest", "api")
LONG_RUNNING = ("writer", "ingest", "api")
# Where each third-party image keeps its data, owned by the user it runs as.
DATA_PATHS = {
    "postgres": "/var/lib/postgresql/data",
    "apache/kafka": "/var/lib/kafka/data",
    "minio/minio": "/data",
    "prom/prometheus": "/prometheus",
    "grafana/grafana": "/var/lib/grafana",
}


def _stack() -> dict[str, Any]:
    doc = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    assert isinstance(doc, dict)
    return doc


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _stack()["services"]
    return services


def _dockerfile() -> str:
    return (COMPOSE / "Dockerfile").read_text()


def _final_stage() -> str:
    return _dockerfile().rsplit("\nFROM ", 1)[1]


def _image_env() -> dict[str, str]:
    """The ENV of the final stage (one ENV instruction, KEY=VALUE pairs)."""
    block = re.search(r"^ENV (.+?)(?=^\S)", _final_stage(), re.M | re.S)
    assert block
    pairs = shlex.split(block.group(1).replace("\\\n", " "))
    return dict(pair.split("=", 1) for pair in pairs)


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = [str(v).split(":") for v in service.get("volumes", [])]
    return [(pair[0], pair[1]) for pair in pairs]


def test_every_image_is_pinned() -> None:
    images = [svc["image"] for svc in _services().values() if "image" in svc]
    assert len(images) >= 9
    for image in images:
        _name, _, tag = image.partition(":")
        assert tag and tag != "latest" and any(c.isdigit() for c in tag), image
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", _dockerfile(), re.M)
    assert base and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base.group(1))
    assert all(
        line.split()[1] in {"${PYTHON_IMAGE}"}
        for line in re.findall(r"^FROM .*", _dockerfile(), re.M)
    )


def test_every_long_running_service_has_a_health_check() -> None:
    services = _services()
    for name in ("postgres", "kafka", "minio", *LONG_RUNNING):
        assert services[name].get("healthcheck", {}).get("test"), name
    # Kafka: the broker answers API requests, not merely "the container started".
    assert "kafka-broker-api-versions.sh" in " ".join(services["kafka"]["healthcheck"]["test"])
    for name in LONG_RUNNING:
        assert services[name]["healthcheck"]["test"] == ["CMD", "sluice", "healthcheck"], name
    assert re.search(r'HEALTHCHECK .*\n\s+CMD \["sluice", "healthcheck"\]', _final_stage())


@pytest.mark.parametrize("role", LONG_RUNNING)
def test_sluice_health_checks_ask_readiness_on_the_services_own_port(role: str) -> None:
    settings = config.load(_service_env(role))
    url = healthcheck.ready_url(role, settings)
    assert url is not None and url.endswith("/health/ready")
    ports = {"ingest": settings.ingest.port, "api": settings.api.port}
    assert url.endswith(f":{ports.get(role, settings.writer.metrics_port)}/health/ready")


def test_the_balancer_is_haproxy_with_the_generated_configuration() -> None:
    services = _services()
    assert "front" not in services  # the dev proxy is not the entry point
    proxy = services["haproxy"]
    assert proxy["image"].startswith("haproxy:")
    assert ("../deploy/haproxy/haproxy.cfg", "/usr/local/etc/haproxy/haproxy.cfg") in _mounts(proxy)
    assert (REPO / "deploy/haproxy/haproxy.cfg").read_text() == balancer.render()
    assert proxy["ports"] == ["5000:5000"]
    # Its servers are the services, at the ports their own settings listen on.
    env = proxy["environment"]
    ingest, api = config.load(_service_env("ingest")), config.load(_service_env("api"))
    assert env["BALANCER_INGEST"] == f"ingest:{ingest.ingest.port}"
    assert env["BALANCER_API"] == f"api:{api.api.port}"
    assert set(env) == set(balancer.DEFAULTS)
    assert {d: c["condition"] for d, c in proxy["depends_on"].items()} == {
        "ingest": "service_healthy",
        "api": "service_healthy",
    }


def test_migrate_waits_for_healthy_dependencies_and_retries() -> None:
    services = _services()
    migrate = services["migrate"]
    assert {d: c["condition"] for d, c in migrate["depends_on"].items()} == {
        "postgres": "service_healthy",
        "kafka": "service_healthy",
    }
    args = cli.build_parser().parse_args(migrate["command"])
    assert args.command == "migrate" and args.wait_s >= 60
    assert migrate["restart"].startswith("on-failure")
    for name in LONG_RUNNING:
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_the_image_runs_as_a_non_root_user_that_owns_its_data_folder() -> None:
    final = _final_stage()
    user = re.search(r"^USER (\d+):(\d+)$", final, re.M)
    assert user and user.group(1) != "0" and user.group(2) != "0"
    uid = user.group(1)
    assert re.search(rf"useradd .*--uid {uid} ", final)
    owned = re.search(rf"install -d -o {uid} -g {uid} -m \d+ (.+)$", final, re.M)
    assert owned
    owned_dirs = owned.group(1).split()
    # The default artifact root is inside the folder the user owns.
    assert any(_image_env()["SLUICE_API_ARTIFACT_ROOT"].startswith(d) for d in owned_dirs)
    for name in SLUICE_SERVICES:
        service = _services()[name]
        assert service["user"] == f"{uid}:{user.group(2)}", name
        assert service["read_only"] is True and "/tmp" in service["tmpfs"], name
        for _source, target in _mounts(service):  # anything it writes is a folder it owns
            assert any(target.startswith(d) for d in owned_dirs), (name, target)


def test_third_party_volumes_are_where_each_image_keeps_its_data() -> None:
    declared = set(_stack()["volumes"])
    used = set()
    for name, service in _services().items():
        image = service.get("image", "").split(":")[0]
        for source, target in _mounts(service):
            if source.startswith("."):
                assert (COMPOSE / source).resolve().is_file(), (name, source)
                continue
            used.add(source)
            assert DATA_PATHS.get(image) == target, (name, source, target)
    assert used == declared


def _service_env(name: str) -> dict[str, str]:
    """What the service's process sees: the image's ENV, then the compose environment."""
    env = _image_env()
    env.update({k: str(v) for k, v in _services()[name].get("environment", {}).items()})
    return env


@pytest.mark.parametrize("name", SLUICE_SERVICES)
def test_every_sluice_service_environment_passes_the_config_parser(name: str) -> None:
    env = _service_env(name)
    settings = config.load(env)  # raises on an unknown or malformed SLUICE_* variable
    assert settings.kafka.bootstrap == "kafka:9092"
    assert settings.pg.dsn.startswith("postgresql://sluice:")
    assert settings.api.artifact_root == "s3://sluice-artifacts/"
    args = cli.build_parser().parse_args(_services()[name]["command"])
    assert args.command == name


def test_services_listen_on_all_interfaces_inside_their_container() -> None:
    settings = config.load(_image_env())
    assert {settings.ingest.host, settings.api.host, settings.writer.host} == {"0.0.0.0"}


def test_artifacts_go_to_minio_whose_bucket_exists_before_the_api_starts() -> None:
    services = _services()
    env = _service_env("api")
    assert env["SLUICE_API_ARTIFACT_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert services["minio"]["image"].startswith("minio/minio:RELEASE.")
    assert env["AWS_ACCESS_KEY_ID"] == services["minio"]["environment"]["MINIO_ROOT_USER"]
    assert "mb --ignore-existing local/sluice-artifacts" in " ".join(
        services["minio-init"]["command"]
    )
    assert services["api"]["depends_on"]["minio-init"] == {
        "condition": "service_completed_successfully"
    }


def test_prometheus_and_grafana_are_provisioned_from_deploy_monitoring() -> None:
    services = _services()
    prom_mounts = dict(_mounts(services["prometheus"]))
    assert prom_mounts["../deploy/monitoring/prometheus/alerts.yml"] == "/etc/prometheus/alerts.yml"
    prom = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    assert prom_mounts["./prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert prom["rule_files"] == ["/etc/prometheus/alerts.yml"]
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    # The job names the alert rules and the dashboard select on.
    alerts = (REPO / "deploy/monitoring/prometheus/alerts.yml").read_text()
    for role, port in (("ingest", 5001), ("api", 5002), ("writer", 5003)):
        assert f"sluice-{role}" in alerts or "sluice-(ingest" in alerts
        assert jobs[f"sluice-{role}"]["dns_sd_configs"] == [
            {"names": [role], "type": "A", "port": port}
        ]
    grafana_mounts = dict(_mounts(services["grafana"]))
    dashboard = grafana_mounts["../deploy/monitoring/grafana/sluice.json"]
    provider = yaml.safe_load((COMPOSE / "grafana/dashboards.yml").read_text())
    assert dashboard.startswith(provider["providers"][0]["options"]["path"] + "/")
    assert grafana_mounts["./grafana/dashboards.yml"].startswith(
        "/etc/grafana/provisioning/dashboards/"
    )
    assert grafana_mounts["./grafana/datasources.yml"].startswith(
        "/etc/grafana/provisioning/datasources/"
    )
    source = yaml.safe_load((COMPOSE / "grafana/datasources.yml").read_text())["datasources"][0]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")


def test_the_image_carries_the_pinned_mlflow_ui_bundle_and_not_mlflow() -> None:
    text = _dockerfile()
    assert re.search(r"^ARG MLFLOW_VERSION=3\.17\.2$", text, re.M)
    assert re.search(r"^ARG MLFLOW_WHEEL_SHA256=[0-9a-f]{64}$", text, re.M)
    assert "sha256sum -c" in text and "--no-deps" in text
    assert "mv /tmp/unpacked/mlflow/server/js/build /ui" in text
    # Copied where the api looks by default (its UI folder, relative to WORKDIR /app).
    ui_dir = getattr(config.ApiConfig(), "ui_dir", "./.state/ui/mlflow-3.17.2")
    final = _final_stage()
    assert "WORKDIR /app" in final
    assert f"COPY --from=ui /ui /app/{ui_dir.removeprefix('./')}" in final
    assert "pip install" not in final  # built in the build stage, copied whole
    assert len(re.findall(r"^FROM ", text, re.M)) == 3
