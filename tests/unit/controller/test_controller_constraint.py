"""Placement constraints: parsing expressions and matching nodes."""

from __future__ import annotations

import pytest
from controller_fakes import make_node

from shoal import errors
from shoal.controller import constraint
from shoal.v1 import objects_pb2


def node() -> objects_pb2.Node:
    n = make_node("NodeID1", hostname="Lab-1", labels={"zone": "EU-West", "disk": "ssd"})
    n.description.platform.os = "linux"
    n.description.platform.architecture = "x86_64"
    return n


@pytest.mark.parametrize(
    ("expr", "key", "op", "value"),
    [
        ("node.labels.zone==a", "node.labels.zone", "==", "a"),
        ("node.hostname!=lab-1", "node.hostname", "!=", "lab-1"),
        ("  node.id == abc  ", "node.id", "==", "abc"),
        ("node.labels.team.name==red team", "node.labels.team.name", "==", "red team"),
        ("node.platform.os==linux", "node.platform.os", "==", "linux"),
        ("node.platform.arch!=arm64", "node.platform.arch", "!=", "arm64"),
        ("node.name==lab-2", "node.name", "==", "lab-2"),
    ],
)
def test_good_expressions_parse(expr: str, key: str, op: str, value: str) -> None:
    c = constraint.parse(expr)
    assert (c.key, c.op, c.value) == (key, op, value)


def test_a_constraint_prints_as_written_without_spaces() -> None:
    assert str(constraint.parse("node.labels.zone == a")) == "node.labels.zone==a"


@pytest.mark.parametrize(
    "expr",
    ["", "node.hostname", "node.hostname=lab-1", "node.hostname==", "==a", "node.hostname<>a", "node labels==a"],
)
def test_malformed_expressions_are_invalid_arguments(expr: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="expected KEY==VALUE"):
        constraint.parse(expr)


@pytest.mark.parametrize("expr", ["zone==a", "node.labels.==a", "node.zone==a", "engine.labels.x==y", "node.ip==1"])
def test_unknown_keys_are_invalid_arguments(expr: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="unknown key"):
        constraint.parse(expr)


def test_parse_all_stops_at_the_first_bad_expression() -> None:
    assert len(constraint.parse_all(["node.labels.a==1", "node.id!=x"])) == 2
    with pytest.raises(errors.InvalidArgument, match="bogus"):
        constraint.parse_all(["node.labels.a==1", "bogus==1"])


@pytest.mark.parametrize(
    ("expr", "matches"),
    [
        ("node.hostname==lab-1", True),
        ("node.hostname==LAB-1", True),
        ("node.hostname!=lab-1", False),
        ("node.hostname==lab-2", False),
        ("node.name==lab-1", True),
        ("node.id==NodeID1", True),
        ("node.id==nodeid1", False),
        ("node.id!=nodeid1", True),
        ("node.labels.zone==eu-west", True),
        ("node.labels.zone!=EU-WEST", False),
        ("node.labels.disk==hdd", False),
        ("node.labels.disk!=hdd", True),
        ("node.platform.os==Linux", True),
        ("node.platform.arch==x86_64", True),
    ],
)
def test_matching(expr: str, matches: bool) -> None:
    assert constraint.parse(expr).matches(node()) is matches


def test_a_missing_label_equals_nothing() -> None:
    assert not constraint.parse("node.labels.gpu==true").matches(node())
    assert constraint.parse("node.labels.gpu!=true").matches(node())


def test_hostname_falls_back_to_the_node_name() -> None:
    n = objects_pb2.Node(id="x", name="Named")
    assert constraint.parse("node.hostname==named").matches(n)
