#!/usr/bin/env bash
# Make this machine ready to run Shoal and its tests (Debian 12, as root):
# the Debian packages, a virtualenv with the package, and a running dockerd.
# Idempotent: what is already there is left alone.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PACKAGES=(etcd-server docker.io runc busybox-static docker-registry prometheus iproute2 iptables nftables python3-venv curl)

if [ "$(id -u)" -ne 0 ]; then
    echo "prepare.sh: must run as root (it installs packages and starts dockerd)" >&2
    exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Debian's docker.io would start its own services through systemd; there is none here.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip >/dev/null
# Non-editable, as users install it. SHOAL_EDITABLE=1 makes it editable, for
# development, and is remembered in the venv so that `make test` keeps it so.
[ "${SHOAL_EDITABLE:-0}" = 1 ] && touch "$VENV/.editable"
target=".[dev]"
[ -e "$VENV/.editable" ] && target="-e .[dev]"
# shellcheck disable=SC2086
"$VENV/bin/pip" install -q $target >"$VENV/pip.log" 2>&1 || { cat "$VENV/pip.log" >&2; exit 1; }

if ! docker -H unix:///var/run/docker.sock info >/dev/null 2>&1; then
    echo "starting dockerd (log: /var/log/shoal-dockerd.log)"
    setsid nohup dockerd --host unix:///var/run/docker.sock >/var/log/shoal-dockerd.log 2>&1 </dev/null &
    for _ in $(seq 1 60); do
        docker -H unix:///var/run/docker.sock info >/dev/null 2>&1 && break
        sleep 1
    done
    docker -H unix:///var/run/docker.sock info >/dev/null 2>&1 || {
        echo "prepare.sh: dockerd did not start; see /var/log/shoal-dockerd.log" >&2
        tail -20 /var/log/shoal-dockerd.log >&2
        exit 1
    }
fi
echo "ready: $(etcd --version | head -1), dockerd $(docker -H unix:///var/run/docker.sock version --format '{{.Server.Version}}')"
