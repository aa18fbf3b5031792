"""The control API (swarmctl's side): validation, reference resolution, CRUD over the store.

Handlers validate, read the leader's cache and write through the fenced
writer; they never call the control loops, which react to the store.
"""
