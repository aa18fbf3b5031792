"""The Shoal agent: one daemon per node that runs the tasks the controller assigns.

Layers, each importing only the ones below it (the "Agent layers" contract in
pyproject.toml):

    hollow > main > agent > server | session | worker | stats | reporter
           > runner | credentials > executor : files > network > metrics | settings | reports

- `agent`    owns the session lifecycle: reconnects with jittered backoff,
             follows the leader, runs the agent's gRPC and metrics servers.
- `session`  one registration round with the controller's dispatcher:
             Session stream, heartbeats, the assignment stream.
- `worker`   reconciles assignment sets (COMPLETE, then INCREMENTAL) into
             one runner per task; adopts and removes containers.
- `runner`   one asyncio task per task that advances its observed state one
             step at a time toward the desired state (SwarmKit's `exec.Do`).
- `executor` the container-engine interface (`executor.base`) and its Docker
             implementation (`executor.docker`).
- `reporter` keeps the latest status per task and sends batches through the
             current session, re-sending everything after a reconnect.

Runners push statuses into the reporter; the session pulls assignments into
the worker. Nothing below `agent` knows about reconnects.
"""
