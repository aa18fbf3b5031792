"""`swarmd lab up --prometheus` writes the shipped configuration, pointed at the lab, and it is valid."""

from __future__ import annotations

import pathlib
import subprocess

from shoal.lab import prometheus as lab_prometheus
from tests.deploy.monitoring import PROMETHEUS_DIR, promtool


def test_the_lab_runs_the_shipped_files_against_its_controller(tmp_path: pathlib.Path) -> None:
    # The installed package carries the same files as deploy/prometheus.
    for name in ("prometheus.yml", "rules.yml"):
        assert lab_prometheus.shipped(name) == (PROMETHEUS_DIR / name).read_text()
    argv = lab_prometheus.prepare(tmp_path, "/usr/bin/prometheus", "127.0.0.1:19420")
    config = (tmp_path / "prometheus" / "prometheus.yml").read_text()
    assert "url: http://127.0.0.1:19420/sd/prometheus" in config
    assert f"--web.listen-address={lab_prometheus.ADDR}" in argv
    result = subprocess.run(
        [promtool(), "check", "config", str(tmp_path / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
