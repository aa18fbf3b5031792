"""Node networking: the overlay networks of this node's tasks, built from the assignment set.

The controller sends each node one item per network it is on (subnet, VNI,
the node's own address, its VXLAN peers, and the services with their virtual
IPs and running tasks). `builder.NetworkBuilder` reconciles the node to the
items it holds: for each network a Linux bridge with a VXLAN device and a
forwarding entry per peer (`links`), a Docker network of the bridge driver
bound to that bridge (`engine`), a DNS server on the node's address
(`dns`), and NAT for virtual IPs and the routing mesh (`nat`, one nftables
table rendered whole from `desired`). Whatever it finds that is not wanted
is removed, so a restart converges like any change. The executor only asks
it for a task's attachments (`NetworkBuilder.attachments`).
"""
