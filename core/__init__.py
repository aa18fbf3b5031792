"""Shoal: a multi-host container orchestrator.

This package's modules are shoal core, the shared lower layer: errors, IDs,
durations, logging, backoff, TLS and the metrics HTTP server, used by the
controller (`shoal.controller`), the agent (`shoal.agent`) and the CLI
(`shoal.ctl`). Core imports nothing from them, only the generated API
(`shoal.v1`). The lab (`shoal.lab`) and the `swarmd` command sit on top of
everything. The "Shoal's layers" contract in pyproject.toml checks this.
"""
