"""A real Prometheus for integration tests, running the shipped configuration and alert rules.

The shipped deploy/prometheus files are copied with only what a test must
change: the discovery URL (the test cluster's controller), 1 s scrape,
discovery and evaluation intervals, and every alert's `for:` cut to 1 s, so
that a test sees in seconds what production sees in minutes. Queries go
through Prometheus's HTTP API.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import re
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

from tests.deploy.monitoring import PROMETHEUS_DIR
from tests.integration.harness import Process, free_port, require, wait_until

SHIPPED_SD_URL = "http://127.0.0.1:9420/sd/prometheus"


def config_for_test(sd_url: str) -> str:
    """The shipped prometheus.yml, pointed at `sd_url`, with 1 s intervals."""
    text = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    replacements = {
        SHIPPED_SD_URL: sd_url,
        "scrape_interval: 15s": "scrape_interval: 1s",
        "evaluation_interval: 15s": "evaluation_interval: 1s",
        "refresh_interval: 15s": "refresh_interval: 1s",
    }
    for old, new in replacements.items():
        assert old in text, f"deploy/prometheus/prometheus.yml no longer contains {old!r}: update this test"
        text = text.replace(old, new)
    return text


def rules_for_test() -> str:
    """The shipped rules.yml with every `for:` cut to 1 s."""
    text, count = re.subn(r"(?m)^(\s+for: )\S+$", r"\g<1>1s", (PROMETHEUS_DIR / "rules.yml").read_text())
    assert count > 0, "no `for:` found in deploy/prometheus/rules.yml"
    return text


class Prometheus:
    """A Prometheus process and its HTTP API."""

    def __init__(self, tmp: pathlib.Path, sd_url: str) -> None:
        require("prometheus", "prometheus")
        conf = tmp / "prometheus"
        conf.mkdir()
        (conf / "prometheus.yml").write_text(config_for_test(sd_url))
        (conf / "rules.yml").write_text(rules_for_test())
        self.addr = f"127.0.0.1:{free_port()}"
        self.process = Process(
            "prometheus",
            [
                shutil.which("prometheus") or "prometheus",
                f"--config.file={conf / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'prometheus-data'}",
                f"--web.listen-address={self.addr}",
                "--log.level=warn",
            ],
            tmp / "prometheus.log",
        )

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the `data` of a successful answer."""
        url = f"http://{self.addr}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback only
            doc = json.loads(resp.read())
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector: [{"metric": {...}, "value": [ts, "v"]}, ...]."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return data["result"]

    def values(self, expr: str, label: str) -> dict[str, float]:
        """{value of `label`: sample value} of an instant query."""
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(expr)}

    def targets(self) -> list[dict[str, Any]]:
        return self.api("targets", state="active")["activeTargets"]

    def firing(self, alertname: str) -> list[dict[str, str]]:
        """The labels of each firing alert of that name."""
        return [
            a["labels"]
            for a in self.api("alerts")["alerts"]
            if a["labels"]["alertname"] == alertname and a["state"] == "firing"
        ]

    def names(self) -> set[str]:
        """Every metric name Prometheus holds."""
        return set(self.api("label/__name__/values"))

    def log(self) -> str:
        return self.process.log()


@contextlib.contextmanager
def running(tmp: pathlib.Path, sd_url: str) -> Iterator[Prometheus]:
    """A ready Prometheus; stopped (and its data dir left to tmp_path) on exit."""
    prom = Prometheus(tmp, sd_url)
    try:
        wait_until(lambda: _ready(prom.addr), 60, "Prometheus to be ready")
        yield prom
    finally:
        prom.process.stop()


def _ready(addr: str) -> bool:
    with urllib.request.urlopen(f"http://{addr}/-/ready", timeout=1) as resp:  # noqa: S310 - loopback only
        return resp.status == 200
