"""The shipped Prometheus configuration and alerts pass promtool: config, rules and the rules' unit tests."""

from __future__ import annotations

import subprocess

from tests.deploy.monitoring import PROMETHEUS_DIR, promtool


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120)


def test_config_is_valid() -> None:
    result = run("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_are_valid() -> None:
    result = run("check", "rules", "rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_passing_unit_test() -> None:
    result = run("test", "rules", "rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = {
        line.split(":", 1)[1].strip()
        for line in (PROMETHEUS_DIR / "rules.yml").read_text().splitlines()
        if line.strip().startswith("- alert:")
    }
    tested = {
        line.split(":", 1)[1].strip()
        for line in (PROMETHEUS_DIR / "rules_test.yml").read_text().splitlines()
        if line.strip().startswith("alertname:")
    }
    assert alerts, "no alert found in rules.yml"
    assert alerts <= tested, f"alerts without a unit test: {sorted(alerts - tested)}"
