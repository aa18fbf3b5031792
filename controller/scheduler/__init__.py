"""The scheduler: PENDING tasks to nodes.

`nodeinfo` keeps what each node has committed (tasks per service, reserved
resources), `filters` is the pipeline that says which nodes can take a task
and, when none can, why; `scheduler` is the loop that decides in batches and
writes ASSIGNED tasks. It talks to the rest only through the store.
"""
