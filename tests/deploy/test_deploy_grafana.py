"""The shipped Grafana dashboards: fresh from their generator, well formed, and every query valid PromQL."""

from __future__ import annotations

import importlib.util
import pathlib
import re
import subprocess
import sys

from tests.deploy.monitoring import DASHBOARDS_DIR, GRAFANA_DIR, dashboards, panel_queries, promtool, substitute


def test_dashboards_are_fresh(tmp_path: pathlib.Path) -> None:
    spec = importlib.util.spec_from_file_location("shoal_grafana_generate", GRAFANA_DIR / "generate.py")
    assert spec and spec.loader
    generate = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = generate
    try:
        spec.loader.exec_module(generate)
        generate.main(tmp_path)
    finally:
        del sys.modules[spec.name]
    fresh = sorted(p.name for p in tmp_path.iterdir())
    assert fresh == ["shoal-cluster.json", "shoal-node.json", "shoal-service.json"]
    for name in fresh:
        assert (DASHBOARDS_DIR / name).read_text() == (tmp_path / name).read_text(), (
            f"deploy/grafana/dashboards/{name} is stale: run `python deploy/grafana/generate.py` and commit the result"
        )


def test_dashboards_are_well_formed() -> None:
    uids = set()
    for name, board in dashboards().items():
        assert board["uid"] not in uids, name
        uids.add(board["uid"])
        variables = {v["name"] for v in board["templating"]["list"]}
        assert "datasource" in variables, name
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel IDs"
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, f"{name}: {panel['title']} is off the grid"
            assert panel["targets"], f"{name}: {panel['title']} has no query"
            assert panel["datasource"]["uid"] == "${datasource}", f"{name}: {panel['title']}"
            for target in panel["targets"]:
                used = set(re.findall(r"\$(\w+)", target["expr"])) - {"__rate_interval"}
                assert used <= variables, f"{name}: {panel['title']} uses undefined variables {used - variables}"


def test_every_query_parses(tmp_path: pathlib.Path) -> None:
    # promtool has no "parse this expression"; recording rules are checked by parsing their expressions.
    queries = list(panel_queries())
    assert len(queries) > 30
    lines = ["groups:", "  - name: dashboards", "    rules:"]
    for i, (_, _, expr) in enumerate(queries):
        lines.append(f"      - record: dashboard_query_{i}")
        lines.append(f"        expr: '{substitute(expr).replace(chr(39), chr(39) * 2)}'")
    rules = tmp_path / "queries.yml"
    rules.write_text("\n".join(lines) + "\n")
    result = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
