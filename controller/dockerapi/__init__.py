"""The Docker Engine API on the controller: what the `docker` CLI, `docker stack deploy` and the Docker SDKs talk.

A thin, stateless translation layer (DESIGN.md, "Data plane and the Docker
API"): an aiohttp app whose handlers turn Docker's REST calls into Control API
calls, made over gRPC as a client (shoal.control_client, following the leader
like swarmctl), and the answers back into Docker's JSON (mapping.py, the one
module that knows both object models). It keeps no state and never touches
etcd; whatever the Control API refuses it refuses, with Docker's status codes.
It imports only shoal.v1 and shoal's core, so controller/main.py starts it
with the controller's own certificate and nothing else of the controller.
"""
