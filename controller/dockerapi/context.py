"""What every group of Docker API handlers shares: the Control API client and who this controller is."""

from __future__ import annotations

import dataclasses

from shoal import control_client


@dataclasses.dataclass(frozen=True)
class Context:
    """Passed to each module's `add_routes`."""

    #: Calls the Control API on whichever controller leads (this one or another).
    control: control_client.ControlClient
    #: This controller's ID and gRPC address, shown in /info.
    controller_id: str
    controller_addr: str
