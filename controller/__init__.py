"""The Shoal controller: the Control and Dispatcher APIs over an etcd-backed store.

Layers, top to bottom (a module imports only from layers below it):

    main, server            process wiring, gRPC servers, metrics endpoint
    leader                  election; runs the control loops while this controller leads
    api, dispatcher,        independent of each other; they talk only through
    orchestrator,           the store (the cache's events in, the writer's
    scheduler, reaper       transactions out), never by calling each other
    store                   etcd adapter, cache with indexes, fenced batched writer
"""
