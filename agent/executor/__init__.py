"""Executors: how the agent drives a container engine.

`base` declares the interface (`Executor`, `Controller`, the `TemporaryError` /
`PermanentError` sentinels); `docker` implements it on the Docker Engine API.
The task runner (`shoal.agent.runner`) is the only caller.
"""
