"""Each benchmark of bench/ end to end at a small size: the harness cannot rot unnoticed."""

from __future__ import annotations

import json
import pathlib

from bench import api, coldstart, dockerapi, heartbeat, nodeloss, placement, scheduler


def _result(path: pathlib.Path) -> dict:
    data = json.loads(path.read_text())
    assert data["benchmark"] == path.stem
    return data


def test_placement(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "placement.json"
    placement.run(placement.parser().parse_args(
        ["--nodes", "12", "--services", "3", "--tasks", "20", "--timeout", "120", "--out", str(out)]
    ))
    r = _result(out)
    assert r["tasks"] == 60 and r["constrained_services"] == 1
    assert "placements_per_s" in r and r["submit_to_running_s"]["p99"] >= 0
    assert {"controller", "etcd", "hollow gold", "hollow std"} <= set(r["processes"])


def test_scheduler_alone(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "scheduler.json"
    scheduler.run(scheduler.parser().parse_args(
        ["--tasks", "200,1000", "--nodes", "50", "--selectivity", "100,33,1", "--out", str(out)]
    ))
    rows = _result(out)["rows"]
    assert len(rows) == 6
    assert all(r["decisions"] == r["tasks"] for r in rows)


def test_heartbeat(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "heartbeat.json"
    heartbeat.run(heartbeat.parser().parse_args(
        ["--nodes", "15", "--duration", "4", "--settle", "1", "--heartbeat", "1s", "--out", str(out)]
    ))
    (row,) = _result(out)["rows"]
    assert row["nodes"] == 15 and row["heartbeats"] > 0
    assert row["false_down"] == 0 and row["not_ready_at_end"] == 0


def test_node_loss(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "nodeloss.json"
    nodeloss.run(nodeloss.parser().parse_args(
        ["--nodes", "20", "--tasks-per-node", "3", "--heartbeat", "1s", "--settle", "1", "--timeout", "120",
         "--out", str(out)]
    ))
    r = _result(out)
    assert r["one_node"]["nodes_lost"] == 1 and r["tenth_of_nodes"]["nodes_lost"] == 2
    assert r["one_node"]["replacements"] >= r["one_node"]["tasks_lost"]


def test_api_latency(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "api.json"
    api.run(api.parser().parse_args(
        ["--nodes", "10", "--services", "2", "--tasks", "10", "--churn", "5", "--samples", "5", "--list-samples", "2",
         "--cli-samples", "1", "--timeout", "120", "--out", str(out)]
    ))
    r = _result(out)
    assert set(r["grpc"]) == {
        "get_service", "get_task", "create_service", "list_service_tasks", "list_all_tasks", "update_service"
    }
    assert r["swarmctl"]["task_ls_all"]["n"] >= 1


def test_cold_start(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "coldstart.json"
    coldstart.run(coldstart.parser().parse_args(
        ["--nodes", "10", "--services", "2", "--tasks", "20", "--settle", "1", "--timeout", "120", "--out", str(out)]
    ))
    r = _result(out)
    assert r["restart_to_first_placement_s"] >= r["restart_to_leading_s"] > 0
    assert r["controller_rss_mib"]["with_tasks"] > 0


def test_docker_api_against_grpc(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "dockerapi.json"
    dockerapi.run(dockerapi.parser().parse_args(
        ["--nodes", "5", "--tasks", "20", "--services", "2", "--samples", "5", "--list-samples", "2",
         "--converge-rounds", "0", "--timeout", "120", "--out", str(out)]
    ))
    r = _result(out)
    assert set(r["latency"]) == {"service_inspect", "task_list_1000", "service_update"}
    assert all(pair["rest"]["n"] == pair["grpc"]["n"] > 0 for pair in r["latency"].values())
