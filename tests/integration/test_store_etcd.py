"""The etcd adapter against a real etcd: paged listings read ahead, at one revision."""

from __future__ import annotations

import uuid

from shoal.controller.store.etcd import Etcd, EtcdTLS, put_op
from tests.integration import harness


def _connect(url: str) -> Etcd:
    ca, cert, key = harness.ETCD_TLS[url]
    return Etcd([url], tls=EtcdTLS.from_files(str(ca), str(cert), str(key)))


async def _seed(etcd: Etcd, prefix: bytes, n: int) -> int:
    resp = await etcd.txn([], [put_op(prefix + b"%03d" % i, b"v%d" % i) for i in range(n)])
    return resp.header.revision


async def test_pages_hold_every_key_in_order_as_of_the_first_page(etcd_url: str) -> None:
    prefix = f"/test-pages-{uuid.uuid4().hex}/".encode()
    async with _connect(etcd_url) as etcd:
        seeded = await _seed(etcd, prefix, 10)
        pages, revisions = [], set()
        async for revision, kvs in etcd.range_pages(prefix, page=3):
            pages.append([kv.key for kv in kvs])
            revisions.add(revision)
            if len(pages) == 1:
                # Written after the first page: a listing is one revision, so neither shows up.
                await etcd.txn([], [put_op(prefix + b"999", b"late"), put_op(prefix + b"005", b"changed")])
        assert [len(p) for p in pages] == [3, 3, 3, 1]
        assert [k for p in pages for k in p] == [prefix + b"%03d" % i for i in range(10)]
        assert len(revisions) == 1 and revisions.pop() >= seeded
        revision, kvs = await etcd.range_prefix(prefix, page=4)
        assert len(kvs) == 11 and revision > seeded
        assert {kv.key: kv.value for kv in kvs}[prefix + b"005"] == b"changed"


async def test_a_listing_left_early_leaves_no_read_in_flight(etcd_url: str) -> None:
    prefix = f"/test-pages-{uuid.uuid4().hex}/".encode()
    async with _connect(etcd_url) as etcd:
        await _seed(etcd, prefix, 10)
        pages = etcd.range_pages(prefix, page=2)
        _, first = await anext(pages)
        await pages.aclose()
        assert len(first) == 2
        # The channel is still usable, and an empty prefix is one empty page.
        assert [list(kvs) async for _, kvs in etcd.range_pages(prefix + b"none/")] == [[]]
