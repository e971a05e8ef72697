"""The shipped alert rules: `promtool check rules` passes, and for every alert its promtool unit
tests (deploy/monitoring/prometheus/alerts_test.yml) include a case where it fires and one where
it stays quiet, and pass when run on their own. Every alert's runbook anchor exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "monitoring" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
TESTS = PROMETHEUS / "alerts_test.yml"


def _alerts() -> list[str]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule["alert"] for group in doc["groups"] for rule in group["rules"]]


def _cases(alert: str) -> list[dict[str, Any]]:
    tests = yaml.safe_load(TESTS.read_text())["tests"]
    return [
        case
        for case in tests
        if any(check["alertname"] == alert for check in case.get("alert_rule_test", []))
    ]


@pytest.fixture(scope="module")
def promtool() -> str:
    subprocess.run([str(REPO / "scripts" / "promtool.sh"), "ensure"], check=True)
    return "promtool"


def test_rules_pass_promtool_check(promtool: str) -> None:
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in done.stdout


@pytest.mark.parametrize("alert", _alerts())
def test_alert_fires_and_stays_quiet(promtool: str, alert: str, tmp_path: Path) -> None:
    cases = _cases(alert)
    outcomes = [
        bool(check["exp_alerts"])
        for case in cases
        for check in case["alert_rule_test"]
        if check["alertname"] == alert
    ]
    assert True in outcomes, f"{alert}: no case where it fires"
    assert False in outcomes, f"{alert}: no case where it stays quiet"
    only = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": cases}
    path = tmp_path / f"{alert}_test.yml"
    path.write_text(yaml.safe_dump(only))
    done = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_runbook_section() -> None:
    operations = (REPO / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", operations, re.M)
    }
    for alert in _alerts():
        assert alert.lower() in anchors, f"docs/operations.md has no section for {alert}"
