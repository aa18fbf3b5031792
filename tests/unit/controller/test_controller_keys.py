"""The etcd key layout: one key per object, name reservations, prefix ranges."""

from __future__ import annotations

import pytest

from shoal.controller.store import keys
from shoal.controller.store.keys import Kind
from shoal.v1 import objects_pb2

K = keys.Keys("/t")


def test_object_keys_live_under_the_versioned_root() -> None:
    assert K.root == b"/t/v1/"
    assert K.object(Kind.TASK, "abc") == b"/t/v1/tasks/abc"
    assert K.object(Kind.NODE, "n1") == b"/t/v1/nodes/n1"
    assert keys.Keys("/t/").root == K.root
    assert keys.Keys().root == b"/shoal/v1/"


def test_leader_and_name_keys() -> None:
    assert K.leader == b"/t/v1/leader"
    assert K.name(Kind.SERVICE, "web") == b"/t/v1/names/services/web"


def test_of_takes_the_kind_from_the_message_type() -> None:
    assert K.of(objects_pb2.Service(id="s1")) == b"/t/v1/services/s1"
    assert K.of(objects_pb2.Cluster(id="c")) == b"/t/v1/cluster/c"
    assert keys.kind_of(objects_pb2.Task()) is Kind.TASK


@pytest.mark.parametrize("kind", list(Kind))
def test_parse_inverts_object(kind: Kind) -> None:
    assert K.parse(K.object(kind, "id-1")) == (kind, "id-1")


@pytest.mark.parametrize(
    "key",
    [
        b"/t/v1/leader",
        b"/t/v1/names/services/web",
        b"/t/v1/tasks/",
        b"/t/v1/tasks",
        b"/t/v1/widgets/x",
        b"/other/v1/tasks/x",
        b"/t/v2/tasks/x",
        b"/tt/v1/tasks/x",
    ],
)
def test_parse_ignores_every_other_key(key: bytes) -> None:
    assert K.parse(key) is None


def test_clusters_with_prefixes_sharing_a_start_do_not_overlap() -> None:
    a, ab = keys.Keys("/a"), keys.Keys("/ab")
    assert a.parse(ab.object(Kind.TASK, "x")) is None
    assert not ab.root.startswith(a.root)


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        (b"/t/v1/", b"/t/v10"),
        (b"abc", b"abd"),
        (b"a\xff", b"b"),
        (b"a\xff\xff", b"b"),
        (b"\xff\xff", b"\0"),
        (b"", b"\0"),
    ],
)
def test_prefix_end(prefix: bytes, end: bytes) -> None:
    assert keys.prefix_end(prefix) == end


def test_every_key_under_a_prefix_sorts_before_its_end() -> None:
    prefix = b"/t/v1/"
    end = keys.prefix_end(prefix)
    for key in (K.object(Kind.TASK, "\U0010ffff"), K.root + b"\xff\xff", K.leader):
        assert prefix <= key < end
    assert not (prefix <= b"/t/v2/" < end)
