"""A throwaway cluster CA for swarmctl's unit tests: the controller's and the admin's TLS bundles.

Certificates are issued exactly as the controller's CA issues them (core/pki.py):
CN = ID, OU = role, O = cluster ID, and the fixed server name
`pki.CONTROLLER_NAME` for controllers, so that swarmctl verifies the fake
controllers as it verifies real ones.
"""

from __future__ import annotations

import dataclasses
import datetime

from shoal import pki, tls

VALIDITY = datetime.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Cluster:
    """A root CA and the cluster ID its certificates name."""

    cluster_id: str
    ca_pem: bytes
    ca_key_pem: bytes

    @classmethod
    def new(cls, cluster_id: str = "cluster0000000000000000001") -> Cluster:
        ca_pem, ca_key_pem = pki.new_ca(f"shoal-ca-{cluster_id}", cluster_id)
        return cls(cluster_id, ca_pem, ca_key_pem)

    def bundle(self, common_name: str, role: str, *, dns_names: tuple[str, ...] = ()) -> tls.Bundle:
        """A fresh key and a certificate from this CA."""
        key = pki.new_key()
        cert = pki.issue(
            self.ca_pem,
            self.ca_key_pem,
            pki.csr_pem(key),
            common_name=common_name,
            role=role,
            organization=self.cluster_id,
            validity=VALIDITY,
            dns_names=dns_names,
        )
        return tls.Bundle(self.ca_pem, cert, pki.key_pem(key))

    def controller(self, controller_id: str = "controller00000000000000001") -> tls.Bundle:
        """What a controller serves with."""
        return self.bundle(controller_id, "controller", dns_names=(pki.CONTROLLER_NAME,))

    def admin(self, user_id: str = "admin") -> tls.Bundle:
        """What swarmctl connects with."""
        return self.bundle(user_id, "admin")
