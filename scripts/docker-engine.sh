#!/usr/bin/env bash
# A Docker engine for `sam local`, without touching one the user already runs.
#
#   scripts/docker-engine.sh start    # prints the DOCKER_HOST to use
#   scripts/docker-engine.sh stop     # stops the engine this script started (if any)
#   scripts/docker-engine.sh status
#
# - An engine that already answers (DOCKER_HOST, or the default socket) is used as it
#   is, and never stopped by this script.
# - Otherwise, as root (or with passwordless sudo), Debian's `docker.io` is installed
#   with apt if `dockerd` is missing, and started with all its state under
#   .local/docker/ (data root, exec root, socket, pid file, log) and
#   `--iptables=false`: containers reach the host only through the local bridge, and
#   nothing is published beyond the machine.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir="$LOCAL_DIR/docker"
pidfile="$dir/dockerd.pid"
socket="$dir/docker.sock"
ours="unix://$socket"

answers() { DOCKER_HOST="$1" docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || [[ -x /usr/sbin/debootstrap ]] || missing+=(debootstrap)
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null \
    || die "no Docker engine answers, and ${missing[*]} cannot be installed here (no apt-get): install Docker, or point DOCKER_HOST at an engine"
  as_root true \
    || die "no Docker engine answers, and installing ${missing[*]} needs root (or passwordless sudo): install Docker, or point DOCKER_HOST at an engine"
  say "installing ${missing[*]} (Debian, apt-get) for sam local"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } \
    || die "apt-get install ${missing[*]} failed"
}

start() {
  if pid_alive "$pidfile" && answers "$ours"; then
    echo "$ours"
    return 0
  fi
  if [[ -n "${DOCKER_HOST:-}" ]] && answers "$DOCKER_HOST"; then
    say "using the Docker engine at DOCKER_HOST ($DOCKER_HOST)" >&2
    echo "$DOCKER_HOST"
    return 0
  fi
  if answers "unix:///var/run/docker.sock"; then
    say "using the Docker engine already running at /var/run/docker.sock" >&2
    echo "unix:///var/run/docker.sock"
    return 0
  fi
  ensure_packages >&2
  as_root true || die "starting a Docker engine needs root (or passwordless sudo); or point DOCKER_HOST at one"
  mkdir -p "$dir"
  say "starting dockerd (state in ${dir#"$ROOT"/}/, --iptables=false)" >&2
  start_bg --as-root "$pidfile" "$dir/dockerd.log" \
    dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid.self" \
    -H "$ours" --iptables=false --ip-masq=false
  for _ in $(seq 150); do
    answers "$ours" && { echo "$ours"; return 0; }
    pid_alive "$pidfile" || break
    sleep 0.2
  done
  tail -20 "$dir/dockerd.log" >&2
  die "dockerd did not start (log: ${dir#"$ROOT"/}/dockerd.log)"
}

stop() {
  # Only the engine this script started: never the user's.
  stop_pidfile "$pidfile" "dockerd" >&2
  rm -f "$socket" "$dir/dockerd.pid.self"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if pid_alive "$pidfile" && answers "$ours"; then echo "running at $ours (started by this project)"
    else echo "not started by this project"; exit 1; fi ;;
  *) die "usage: $0 start|stop|status" ;;
esac
