"""swarmctl: the command-line client of the Control API (`shoal.ctl.main:main`)."""

import os

# gRPC's C core logs TLS handshake failures to stderr by itself; swarmctl
# reports every error in one line of its own. This package is imported before
# any of its modules import grpc.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")
