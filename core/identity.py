"""How a caller's identity travels to the controller.

Until the cluster CA exists, an agent names itself with a metadata header; the
controller reads it in exactly one place (controller/identity.py), which TLS
certificates will replace without touching any handler.
"""

from __future__ import annotations

#: gRPC metadata key carrying the calling agent's node ID.
NODE_ID_METADATA_KEY = "shoal-node-id"
