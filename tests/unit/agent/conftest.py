"""Fixtures for the agent's unit tests: the throwaway cluster CA that fake controllers and the node share."""

from __future__ import annotations

import pytest
from agent_fakes import NODE_ID
from agent_tls import Cluster

from shoal import tls


@pytest.fixture
def cluster() -> Cluster:
    """The CA of the fake controllers and of this node's certificate."""
    return Cluster.new()


@pytest.fixture
def node_bundle(cluster: Cluster) -> tls.Bundle:
    """This node's certificate: CN = NODE_ID, the identity the controller knows it by."""
    return cluster.node(NODE_ID)
