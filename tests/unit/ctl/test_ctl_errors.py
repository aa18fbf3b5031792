"""Each swarmctl failure is one line on stderr and a non-zero exit; the client follows leaders, retries."""

from __future__ import annotations

import pytest
from ctl_fakes import FakeControl, Follower, Stalled, Unavailable

from shoal.ctl import main as ctl_main


def _one_line_error(result) -> str:
    assert result.code != 0
    assert result.err.count("\n") == 1, result.err
    assert result.err.startswith("swarmctl: ")
    assert "Traceback" not in result.err
    return result.err.strip()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["service", "create", "--bogus"], "no such option"),
        (["service", "create", "--name", "x"], "missing option '--image'"),
        (["service", "create", "--name", "x", "--image", "y", "--env", "NOEQUALS"], "is not KEY=VALUE"),
        (["service", "create", "--name", "x", "--image", "y", "--label", "=v"], "is not KEY=VALUE"),
        (
            ["service", "create", "--name", "x", "--image", "y", "--restart-delay", "5 parsecs"],
            "invalid duration",
        ),
        (["service", "create", "--name", "x", "--image", "y", "--reserve-memory", "lots"], "invalid size"),
        (["service", "create", "--name", "x", "--image", "y", "--limit-cpu", "many"], "invalid CPU count"),
        (["service", "scale", "web"], "is not SERVICE=REPLICAS"),
        (["service", "inspect"], "missing argument"),
        (["node", "update", "n", "--availability", "gone"], "invalid value for '--availability'"),
        (["--format", "yaml", "node", "ls"], "invalid value for '--format'"),
        (["bogus"], "no such command"),
    ],
)
def test_usage_errors_are_one_line_with_status_2(swarmctl, closed_addr, args, expected) -> None:
    result = swarmctl("-H", closed_addr, *args)

    line = _one_line_error(result)
    assert result.code == 2
    assert expected in line
    assert "--help'" in line


def test_usage_error_names_the_command(swarmctl) -> None:
    result = swarmctl("service", "create", "--bogus")

    assert result.err.startswith("swarmctl: no such option")
    assert result.err.rstrip().endswith("(see 'swarmctl service create --help')")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["service", "inspect", "nope"], 'swarmctl: service "nope" not found'),
        (["service", "create", "--name", "web", "--image", "x"], 'swarmctl: service "web" already exists'),
        (["service", "create", "--name", "-bad", "--image", "x"], 'swarmctl: service name "-bad" is invalid'),
        (["service", "inspect", "svc"], 'swarmctl: service prefix "svc" is ambiguous'),
        (
            ["service", "create", "--name", "x", "--image", "x", "--replicas", "-1"],
            'swarmctl: service "x": replicas must be >= 0',
        ),
        (["service", "update", "web", "--replicas", "-2"], 'swarmctl: service "web": replicas must be >= 0'),
        (
            ["service", "create", "--name", "x", "--image", "x", "--update-parallelism", "-1"],
            "swarmctl: update-parallelism must be >= 0",
        ),
        (["service", "ps", "nope"], 'swarmctl: service "nope" not found'),
        (["node", "inspect", "nope"], 'swarmctl: node "nope" not found'),
        (["task", "inspect", "nope"], 'swarmctl: task "nope" not found'),
        (["task", "ls", "--service", "nope"], 'swarmctl: service "nope" not found'),
    ],
)
def test_server_errors_are_one_line_with_status_1(ctl, fake: FakeControl, args, expected) -> None:
    fake.add_service("svc1", "web")
    fake.add_service("svc2", "api")

    result = ctl(*args)

    assert _one_line_error(result) == expected
    assert result.code == 1
    assert result.out == ""


def test_unreachable_controller(swarmctl, closed_addr) -> None:
    result = swarmctl("-H", closed_addr, "service", "ls")

    refused = f"swarmctl: cannot reach a controller at {closed_addr} (connection refused)"
    assert _one_line_error(result) == refused
    assert result.code == 1


def test_unreachable_controllers_are_all_named(swarmctl, closed_addr) -> None:
    result = swarmctl("-H", f"{closed_addr},127.0.0.1:1", "node", "ls")

    line = _one_line_error(result)
    assert line == f"swarmctl: cannot reach a controller at {closed_addr}, 127.0.0.1:1 (connection refused)"


def test_debug_prints_a_traceback(swarmctl, closed_addr) -> None:
    result = swarmctl("--debug", "-H", closed_addr, "service", "ls")

    assert result.code == 1
    assert "Traceback" in result.err
    assert result.err.splitlines()[-1].startswith("swarmctl: cannot reach a controller")


def test_main_exits_with_the_status(closed_addr, tls_dir, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        ctl_main.main(["--tls-dir", str(tls_dir), "-H", closed_addr, "node", "ls"])

    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"swarmctl: cannot reach a controller at {closed_addr}")


def test_help_exits_zero(swarmctl) -> None:
    result = swarmctl("service", "create", "--help")

    assert result.code == 0
    assert "--reserve-memory" in result.out and result.err == ""


def test_next_host_is_tried_when_one_is_down(swarmctl, fake_addr, closed_addr, fake: FakeControl) -> None:
    fake.add_service("svc1", "web")

    result = swarmctl("-H", closed_addr, "-H", fake_addr, "service", "ls", "-q")

    assert (result.code, result.out, result.err) == (0, "svc1\n", "")


def test_hosts_come_from_the_environment(swarmctl, fake_addr, closed_addr, fake, monkeypatch) -> None:
    fake.add_service("svc1", "web")
    monkeypatch.setenv("SWARMCTL_HOST", f"{closed_addr},{fake_addr}")

    result = swarmctl("service", "ls", "-q")

    assert (result.code, result.out) == (0, "svc1\n")


def test_follower_redirects_to_the_leader(swarmctl, serve, fake_addr, fake: FakeControl) -> None:
    fake.add_service("svc1", "web")
    follower = Follower(leader=fake_addr)
    follower_addr = serve(follower).addr

    result = swarmctl("-H", follower_addr, "service", "ls", "-q")

    assert (result.code, result.out, result.err) == (0, "svc1\n", "")
    assert follower.calls == 1
    assert len(fake.calls("ListServices")) == 1


def test_follower_naming_an_unreachable_leader(swarmctl, serve, closed_addr) -> None:
    follower_addr = serve(Follower(leader=closed_addr)).addr

    result = swarmctl("-H", follower_addr, "service", "ls")

    refused = f"swarmctl: cannot reach a controller at {closed_addr} (connection refused)"
    assert _one_line_error(result) == refused


def test_server_side_unavailable_is_reported_in_its_words(swarmctl, serve) -> None:
    addr = serve(Unavailable()).addr

    result = swarmctl("-H", addr, "service", "create", "--detach", "--name", "web", "--image", "x")

    assert _one_line_error(result) == f"swarmctl: {addr}: etcd is unreachable"


def test_create_is_retried_with_the_same_request_id_on_unavailable(swarmctl, serve, fake_addr, fake) -> None:
    first = Unavailable()
    first_addr = serve(first).addr

    result = swarmctl(
        "-H", first_addr, "-H", fake_addr, "service", "create", "--detach", "--name", "web", "--image", "x"
    )  # fmt: skip

    assert result.code == 0, result.err
    (retried,) = fake.calls("CreateService")
    assert [r.request_id for r in first.requests] == [retried.request_id]
    assert result.out.strip() == next(iter(fake.services))


def test_create_is_retried_with_the_same_request_id_after_timeout(swarmctl, serve, fake_addr, fake) -> None:
    stalled = Stalled()
    stalled_addr = serve(stalled).addr

    hosts = f"{stalled_addr},{fake_addr}"
    result = swarmctl("--timeout", "0.5", "-H", hosts, "service", "create", "--detach", "--name", "web", "--image", "x")

    assert result.code == 0, result.err
    (retried,) = fake.calls("CreateService")
    assert [r.request_id for r in stalled.requests] == [retried.request_id]


def test_create_on_a_single_stalled_controller_is_asked_twice(swarmctl, serve) -> None:
    stalled = Stalled()
    addr = serve(stalled).addr

    result = swarmctl("--timeout", "0.3", "-H", addr, "service", "create", "--detach", "--name", "web", "--image", "x")

    assert _one_line_error(result) == f"swarmctl: no answer from {addr} within 0.3s"
    first, second = stalled.requests
    assert first.request_id == second.request_id


def test_a_deadline_on_a_remove_is_not_retried(swarmctl, serve, fake_addr, fake) -> None:
    stalled = Stalled()
    addr = serve(stalled).addr

    result = swarmctl("--timeout", "0.3", "-H", f"{addr},{fake_addr}", "service", "rm", "web")

    assert _one_line_error(result) == f"swarmctl: no answer from {addr} within 0.3s"
    assert len(stalled.requests) == 1
    assert not fake.calls("RemoveService")


def test_a_bare_noun_prints_its_help(swarmctl) -> None:
    result = swarmctl("service")

    assert result.code == 0
    assert "create" in result.out and "scale" in result.out
