"""swarmctl's Control API client: the shared one in `shoal.control_client`, under its old name."""

from __future__ import annotations

from shoal.control_client import MAX_REPLY, ControlClient, open_channel

__all__ = ["MAX_REPLY", "ControlClient", "open_channel"]
