"""What a controller needs before it can serve: the cluster's identity, its CA, its own certificate.

The first controller of a new cluster creates the cluster object and the root
CA (ECDSA P-256) with its two join tokens, in etcd, each with a transaction
that only succeeds if none exists yet, so controllers starting together agree
on one. Every controller then issues itself a certificate from that CA (it is
trusted with etcd, so with the CA key) and writes an admin client bundle for
swarmctl into its state directory.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import pathlib

from shoal import errors, ids, pki, tls, units
from shoal.controller.store import etcd as etcd_
from shoal.controller.store.keys import Keys, Kind
from shoal.v1 import objects_pb2

log = logging.getLogger(__name__)

#: Node certificates last 90 days unless the cluster says otherwise (SwarmKit's default).
DEFAULT_CERT_VALIDITY = datetime.timedelta(days=90)
#: The admin bundle lasts a year: swarmctl does not renew it.
ADMIN_VALIDITY = datetime.timedelta(days=365)
ADMIN_DIR = "admin-tls"


@dataclasses.dataclass(frozen=True)
class Authority:
    """The cluster's CA as a controller holds it."""

    cluster_id: str
    ca_pem: bytes
    key_pem: bytes

    def issue(self, csr_pem: bytes, *, common_name: str, role: str, validity: datetime.timedelta) -> bytes:
        """A certificate for a CSR, naming the subject the CA chooses."""
        names: tuple[str, ...] = ()
        if role == "controller":
            names = (pki.CONTROLLER_NAME,)
        elif role == "worker":
            names = (pki.NODE_NAME, pki.node_server_name(common_name))
        return pki.issue(
            self.ca_pem,
            self.key_pem,
            csr_pem,
            common_name=common_name,
            role=role,
            organization=self.cluster_id,
            validity=validity,
            dns_names=names,
        )

    def bundle(self, *, common_name: str, role: str, validity: datetime.timedelta) -> tls.Bundle:
        """A fresh key and a certificate for it."""
        key = pki.new_key()
        cert = self.issue(pki.csr_pem(key), common_name=common_name, role=role, validity=validity)
        return tls.Bundle(self.ca_pem, cert, pki.key_pem(key))


def cert_validity(cluster: objects_pb2.Cluster | None) -> datetime.timedelta:
    """How long node certificates issued now last."""
    if cluster is not None and cluster.HasField("node_cert_validity"):
        seconds = units.from_duration(cluster.node_cert_validity)
        if seconds > 0:
            return datetime.timedelta(seconds=seconds)
    return DEFAULT_CERT_VALIDITY


async def _create_once(
    etcd: etcd_.Etcd, keys: Keys, kind: Kind, obj: objects_pb2.Cluster | objects_pb2.CertificateAuthority
) -> bytes:
    """Create the cluster's one object of `kind` unless one exists; return the stored bytes."""
    claim = keys.name(kind, "singleton")
    key = keys.object(kind, obj.id)
    resp = await etcd.txn(
        [etcd_.create_revision_is(claim, 0)],
        [etcd_.put_op(claim, obj.id.encode()), etcd_.put_op(key, obj.SerializeToString())],
        [etcd_.get_op(claim)],
    )
    if resp.succeeded:
        log.info("created the cluster's %s %s", kind.value, obj.id)
        return obj.SerializeToString()
    existing_id = resp.responses[0].response_range.kvs[0].value.decode()
    kv = await etcd.get(keys.object(kind, existing_id))
    if kv is None:
        raise errors.Unavailable(f"the cluster's {kind.value} {existing_id} is claimed but missing")
    value: bytes = kv.value
    return value


async def ensure_cluster(
    etcd: etcd_.Etcd, keys: Keys, history_limit: int, cert_validity: float
) -> tuple[objects_pb2.Cluster, Authority]:
    """The cluster object and its CA, created by the first controller that gets here."""
    fresh_cluster = objects_pb2.Cluster(
        id=ids.new_id(), task_history_limit=history_limit, node_cert_validity=units.to_duration(cert_validity)
    )
    cluster = objects_pb2.Cluster.FromString(await _create_once(etcd, keys, Kind.CLUSTER, fresh_cluster))
    ca_cert, ca_key = pki.new_ca("shoal root CA", cluster.id)
    fresh = objects_pb2.CertificateAuthority(id="root", root_cert_pem=ca_cert, root_key_pem=ca_key)
    fresh.worker_token = pki.new_token(ca_cert)
    fresh.controller_token = pki.new_token(ca_cert)
    ca = objects_pb2.CertificateAuthority.FromString(await _create_once(etcd, keys, Kind.CA, fresh))
    return cluster, Authority(cluster.id, ca.root_cert_pem, ca.root_key_pem)


def write_admin_bundle(authority: Authority, state_dir: str) -> pathlib.Path:
    """An admin client bundle for swarmctl, written unless one for this CA is already there."""
    directory = pathlib.Path(state_dir) / ADMIN_DIR
    if tls.Bundle.exists(directory) and tls.Bundle.load(directory).ca_pem == authority.ca_pem:
        return directory
    bundle = authority.bundle(common_name=f"admin-{ids.new_id()[:8]}", role="admin", validity=ADMIN_VALIDITY)
    bundle.save(directory)
    log.info("wrote an admin client bundle for swarmctl to %s", directory)
    return directory
