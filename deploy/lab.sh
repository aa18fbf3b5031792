#!/usr/bin/env bash
# The one set-up command: prepare this machine, bring up a lab of real hosts
# (network namespaces, a dockerd per node), run a two-tier demo on it, and show
# how to use it. NODES, CONTROLLERS and ETCD_MEMBERS change its shape.
set -euo pipefail

cd "$(dirname "$0")/.."
bash deploy/prepare.sh
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
IMAGE=10.77.0.1:5000/shoal/busybox:1

swarmd lab down >/dev/null 2>&1 || true
swarmd lab up --nodes "${NODES:-3}" --controllers "${CONTROLLERS:-1}" --etcd-members "${ETCD_MEMBERS:-1}"

# The demo: a back end (api) and a front end (web) on an overlay network; web fetches from api by its
# service name and is published through the routing mesh, so every node's address answers on 8080.
swarmctl network create demo >/dev/null
printf 'hello from the api tier\n' | swarmctl config create demo-api -f - >/dev/null
cat <<'CGI' | swarmctl config create demo-web -f - >/dev/null
#!/bin/sh
echo "Content-Type: text/plain"
echo
echo "web $(hostname) -> api: $(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 api 80 | tail -n 1)"
CGI
swarmctl service create --detach --name api --image "$IMAGE" --replicas 2 --network demo \
    --config demo-api,target=/www/index.html -- httpd -f -p 80 -h /www >/dev/null
swarmctl service create --detach --name web --image "$IMAGE" --replicas 2 --network demo --publish 8080:80 \
    --config demo-web,target=/www/cgi-bin/app,mode=0555 -- httpd -f -p 80 -h /www >/dev/null
for _ in $(seq 1 90); do
    [ "$(swarmctl service ls | grep -c ' 2/2 ')" = 2 ] && break
    sleep 1
done
swarmctl service ls
cat <<EOT

The lab is up: hosts are network namespaces on the bridge shoal0 (10.77.0.0/24), each with its own
processes; nodes lab-1..lab-${NODES:-3} are 10.77.0.101.. and run their own dockerd.
Use it with the CLI in $VENV/bin (export PATH="$PWD/$VENV/bin:\$PATH"; swarmctl finds the lab by itself):
  swarmctl node ls
  swarmctl service ps web
  curl http://10.77.0.103:8080/cgi-bin/app   # any node answers (the routing mesh); web asks api by name
  swarmctl service scale api=3
  swarmd lab status
Metrics: curl http://10.77.0.21:9420/metrics   Tear down: swarmd lab down
EOT
