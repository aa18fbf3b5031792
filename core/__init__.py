"""Shoal: a multi-host container orchestrator.

This package is the shared lower layer: errors, IDs, durations, logging,
backoff and the metrics HTTP server, used by the controller
(`shoal.controller`), the agent (`shoal.agent`) and the CLI (`shoal.ctl`).
It imports nothing from them. The generated API lives in `shoal.v1`.
"""
