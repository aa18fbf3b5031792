"""The store: etcd is the only durable state.

`etcd` adapts the etcd v3 API (aetcd's generated stubs over our own channel),
`cache` keeps every object in memory with indexes (list at R, watch from R+1),
`writer` makes fenced, optimistic, size-bounded transactions, and `events` are
the typed changes the cache hands to the control loops.
"""
