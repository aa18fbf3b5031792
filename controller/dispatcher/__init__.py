"""The dispatcher: agent sessions, heartbeats, assignment streams, status ingestion.

It runs on the leader only. Node liveness is decided here from heartbeats;
assignments are what the cache's task index says belongs to a node; task
status reports are coalesced by task and written in batches. It never calls
the orchestrator or scheduler: they see its writes in the store.
"""
