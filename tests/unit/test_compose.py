"""The docker-compose stack can only be checked statically here (no Docker engine): it parses,
every image is pinned to a version, and every SLUICE_* variable exists in the configuration."""

from pathlib import Path
from typing import Any

import yaml

from sluice import config

COMPOSE = Path(__file__).resolve().parents[2] / "compose"


def _stack() -> dict[str, Any]:
    doc = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    assert isinstance(doc, dict)
    return doc


def test_every_image_is_pinned() -> None:
    images = [svc["image"] for svc in _stack()["services"].values() if "image" in svc]
    assert images
    for image in images:
        _name, _, tag = image.partition(":")
        assert tag and tag != "latest" and any(c.isdigit() for c in tag), image
    base = (COMPOSE / "Dockerfile").read_text().split("FROM ", 1)[1].split()[0]
    assert ":" in base and "latest" not in base


def test_every_sluice_variable_exists_in_the_configuration() -> None:
    known = set(config.env_names())
    for name, svc in _stack()["services"].items():
        for var in svc.get("environment", {}):
            if var.startswith("SLUICE_"):
                assert var in known, f"{name}: {var} is not a Sluice setting"


def test_services_run_the_sluice_commands() -> None:
    services = _stack()["services"]
    commands = {svc["command"][0] for svc in services.values() if "command" in svc}
    assert commands == {"migrate", "writer", "ingest", "api", "front"}
