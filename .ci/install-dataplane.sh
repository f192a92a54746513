#!/usr/bin/env bash
# Install and start what the data-plane tests (tests/test_dataplane.py) need.  Idempotent.
#
#   * apt-get installs containerd, runc, busybox-static, libseccomp2 and strace when any is
#     missing (noninteractive; `apt-get update` first);
#   * if no containerd answers on /run/containerd/containerd.sock, starts one in the background
#     (logs: $CONTAINERD_LOG, default /var/log/seccomp-operator-containerd.log) and polls
#     `ctr version` until it answers, for at most $CONTAINERD_START_TIMEOUT seconds (default 60).
#
# Needs root.  Exit status 0 when a daemon answers at the end, non-zero (with the log tail) if not.
set -euo pipefail

PACKAGES=(containerd runc busybox-static libseccomp2 strace openssl)
SOCKET=/run/containerd/containerd.sock
LOG=${CONTAINERD_LOG:-/var/log/seccomp-operator-containerd.log}
START_TIMEOUT=${CONTAINERD_START_TIMEOUT:-60}

say() { echo "install-dataplane: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    say "must run as root"
    exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -q
    timeout 900 apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    say "packages already installed: ${PACKAGES[*]}"
fi

answers() {
    [ -S "$SOCKET" ] && timeout 15 ctr --address "$SOCKET" --connect-timeout 5s version >/dev/null 2>&1
}

if answers; then
    say "containerd already answers on $SOCKET"
    exit 0
fi

mkdir -p "$(dirname "$LOG")"
say "starting containerd (log: $LOG)"
# setsid: the daemon outlives this script and is not in its process group.
setsid containerd </dev/null >>"$LOG" 2>&1 &
pid=$!

deadline=$((SECONDS + START_TIMEOUT))
until answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
        say "containerd exited; last log lines:"
        tail -n 40 "$LOG" >&2 || true
        exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        say "containerd did not answer within ${START_TIMEOUT}s; last log lines:"
        tail -n 40 "$LOG" >&2 || true
        exit 1
    fi
    sleep 0.2
done
say "containerd (pid $pid) answers on $SOCKET"
