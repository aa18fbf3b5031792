"""The allocator: addresses for overlay networks, a leader loop like the scheduler.

`view` keeps which addresses are used (with `shoal.controller.ipam`, the
pure part: subnets from pools, VNIs, the addresses of one subnet, which the
API uses too when it creates a network); `allocator` is the loop that gives each service a virtual IP per
network, each task its addresses (before the scheduler sees it: such a task
is born NEW and the allocator makes it PENDING), and each node that runs a
task of a network an address of its own there. Its view of what is used is
rebuilt from the store whenever it starts, so a failover hands out nothing
twice.
"""
