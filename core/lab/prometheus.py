"""The lab's Prometheus (`swarmd lab up --prometheus`): the shipped configuration, run against the lab.

The files are the ones under deploy/prometheus in the repository, installed
with the package as `shoal.deploy` data, so what the lab runs is what
operators get. They are copied into `<lab dir>/prometheus/` with the
discovery URL pointed at the lab's controller; `lab down` removes them with
the rest of the lab directory.
"""

from __future__ import annotations

import importlib.resources
import pathlib

#: Where the lab's Prometheus serves its UI and API (Prometheus's usual port).
ADDR = "127.0.0.1:9090"
#: The discovery URL written in the shipped prometheus.yml.
SHIPPED_SD_URL = "http://127.0.0.1:9420/sd/prometheus"


def shipped(name: str) -> str:
    """The text of a shipped file of deploy/prometheus."""
    return (importlib.resources.files("shoal.deploy") / "prometheus" / name).read_text()


def prepare(root: pathlib.Path, binary: str, controller_metrics: str) -> list[str]:
    """Write the configuration under `root`/prometheus; the command line that runs Prometheus on it."""
    conf = root / "prometheus"
    conf.mkdir(parents=True, exist_ok=True)
    config = shipped("prometheus.yml").replace(SHIPPED_SD_URL, f"http://{controller_metrics}/sd/prometheus")
    (conf / "prometheus.yml").write_text(config)
    (conf / "rules.yml").write_text(shipped("rules.yml"))
    return [
        binary,
        f"--config.file={conf / 'prometheus.yml'}",
        f"--storage.tsdb.path={conf / 'data'}",
        f"--web.listen-address={ADDR}",
        "--log.level=warn",
    ]
