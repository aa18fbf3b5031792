#!/usr/bin/env bash
# The one set-up command: prepare this machine, bring up a lab of real hosts
# (network namespaces, a dockerd per node), run a demo service on it, and show
# how to use it. NODES, CONTROLLERS and ETCD_MEMBERS change its shape.
set -euo pipefail

cd "$(dirname "$0")/.."
bash deploy/prepare.sh
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"

swarmd lab down >/dev/null 2>&1 || true
swarmd lab up --nodes "${NODES:-3}" --controllers "${CONTROLLERS:-1}" --etcd-members "${ETCD_MEMBERS:-1}"
swarmctl service create --name demo --image 10.77.0.1:5000/shoal/busybox:1 --replicas 3 --publish 8080:8080 \
    -- httpd -f -p 8080 -h /bin >/dev/null
for _ in $(seq 1 60); do
    swarmctl service ls | grep -q ' 3/3 ' && break
    sleep 1
done
swarmctl service ls
cat <<EOT

The lab is up: hosts are network namespaces on the bridge shoal0 (10.77.0.0/24), each with its own
processes; nodes lab-1..lab-${NODES:-3} are 10.77.0.101.. and run their own dockerd.
Use it with the CLI in $VENV/bin (export PATH="$PWD/$VENV/bin:\$PATH"; swarmctl finds the lab by itself):
  swarmctl node ls
  swarmctl service ps demo
  curl http://10.77.0.101:8080/busybox -o /dev/null -w '%{http_code}\n'   # the demo publishes port 8080
  swarmctl service scale demo=2     # published ports are per host: at most one demo task per node
  swarmd lab status
Metrics: curl http://10.77.0.21:9420/metrics   Tear down: swarmd lab down
EOT
