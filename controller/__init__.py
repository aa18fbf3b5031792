"""The Shoal controller: the Control and Dispatcher APIs over an etcd-backed store.

Layers, top to bottom (a module imports only from layers below it; checked by
the "Controller layers" contract in pyproject.toml):

    main                    process wiring, gRPC servers, metrics endpoint
    term                    one leadership term: runs the control loops while this controller leads
    api, dispatcher,        independent of each other; they talk only through
    orchestrator,           the store (the cache's events in, the writer's
    scheduler, reaper,      transactions out), never by calling each other;
    allocator, dockerapi    dockerapi is a client of the Control API (shoal.v1 and core only)
    what the loops share    leader, context, loops, rollout, validation, secrets, ...
    store                   etcd adapter, cache with indexes, fenced batched writer
    metrics, settings
"""
