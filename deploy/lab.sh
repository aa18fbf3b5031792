#!/usr/bin/env bash
# The one set-up command: prepare this machine, bring up a 3-node lab cluster,
# run a demo service on it, and show how to use it.
set -euo pipefail

cd "$(dirname "$0")/.."
bash deploy/prepare.sh
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"

swarmd lab down >/dev/null 2>&1 || true
swarmd lab up --nodes "${NODES:-3}"
swarmctl service create --name demo --image 127.0.0.1:5000/shoal/busybox:1 --replicas 3 \
    -- sh -c 'while true; do echo "hello from $(hostname)"; sleep 5; done' >/dev/null
for _ in $(seq 1 60); do
    swarmctl service ls | grep -q ' 3/3 ' && break
    sleep 1
done
swarmctl service ls
cat <<EOT

The lab is up: a controller on 127.0.0.1:4240 (embedded etcd) and agents lab-1..lab-${NODES:-3}.
Use it with the CLI in $VENV/bin (export PATH="$PWD/$VENV/bin:\$PATH"):
  swarmctl node ls
  swarmctl service ps demo
  swarmctl service scale demo=6
  swarmctl service create --name web --image 127.0.0.1:5000/shoal/busybox:1 --replicas 2 -- httpd -f -p 8080
Metrics: curl http://127.0.0.1:9420/metrics   Tear down: swarmd lab down
EOT
