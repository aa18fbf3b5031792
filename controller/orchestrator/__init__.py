"""Orchestrators: keep each service's tasks matching its spec.

`replicated` keeps N slots per replicated service, and is built from pure
planning steps: `restart` (replace tasks that ended, after the restart delay,
or at once when their node is lost), `update` (rolling replacement of
out-of-date slots), `slots` (grouping and scale-down choice) and `tasks`
(new tasks and desired-state changes). The loop turns plans into fenced
writes; it never calls the scheduler, which sees new PENDING tasks in the store.
"""
