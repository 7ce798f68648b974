#!/usr/bin/env bash
# Real TLS on loopback for the benchmark's first-response measurement (`make bench`):
# stunnel (Debian's stunnel4) terminates TLS in front of DynamoDB Local and the Fintoc
# simulator, with a certificate from a throwaway CA made here (openssl). The function
# is told to trust that CA with SSL_CERT_FILE; nothing else trusts it, and it is
# made again (valid one day) on every start.
#
#   scripts/tls-proxy.sh start DDB_PORT SIM_PORT   prints the CA file; serves
#                                                  https://localhost:8443 -> DynamoDB Local
#                                                  https://localhost:8444 -> the simulator
#   scripts/tls-proxy.sh stop
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir="${TLS_PROXY_DIR:-$LOCAL_DIR/tls-proxy}"
pidfile="$dir/stunnel.pid"
DDB_TLS_PORT="${TLS_PROXY_DDB_PORT:-8443}"
SIM_TLS_PORT="${TLS_PROXY_SIM_PORT:-8444}"

ensure_stunnel() {
  command -v stunnel4 >/dev/null && return 0
  command -v apt-get >/dev/null || die "stunnel4 is missing and cannot be installed here (no apt-get)"
  as_root true || die "installing stunnel4 needs root (or passwordless sudo)"
  say "installing stunnel4 (Debian, apt-get) for the TLS benchmark"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends stunnel4 >/dev/null \
    || { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends stunnel4 >/dev/null; } \
    || die "apt-get install stunnel4 failed"
}

# make_certificates: a CA and a server certificate for localhost and 127.0.0.1 (RSA
# 2048, as AWS's and most public endpoints serve).
make_certificates() {
  rm -rf "$dir/pki" && mkdir -p "$dir/pki" && cd "$dir/pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=fintoc-payments bench CA" \
    -keyout ca.key -out ca.pem -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
  cat >server.ext <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EXT
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
    -extfile server.ext -out server.pem 2>/dev/null
  cd "$ROOT"
}

start() {
  local ddb_port="${1:?DDB_PORT}" sim_port="${2:?SIM_PORT}"
  ensure_stunnel
  stop_pidfile "$pidfile" "the TLS proxy"
  mkdir -p "$dir"
  make_certificates
  cat >"$dir/stunnel.conf" <<CONF
foreground = yes
debug = 3
output = $dir/stunnel.log
[dynamodb]
accept = 127.0.0.1:$DDB_TLS_PORT
connect = 127.0.0.1:$ddb_port
cert = $dir/pki/server.pem
key = $dir/pki/server.key
[fintoc]
accept = 127.0.0.1:$SIM_TLS_PORT
connect = 127.0.0.1:$sim_port
cert = $dir/pki/server.pem
key = $dir/pki/server.key
CONF
  start_bg "$pidfile" "$dir/stunnel.out" stunnel4 "$dir/stunnel.conf"
  for _ in $(seq 50); do
    if curl -s -o /dev/null --max-time 2 --cacert "$dir/pki/ca.pem" "https://localhost:$DDB_TLS_PORT/"; then
      say "TLS proxy ready: https://localhost:$DDB_TLS_PORT (DynamoDB Local), https://localhost:$SIM_TLS_PORT (simulator)"
      echo "$dir/pki/ca.pem"
      return 0
    fi
    sleep 0.1
  done
  die "the TLS proxy did not answer (see $dir/stunnel.log)"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop_pidfile "$pidfile" "the TLS proxy" ;;
  *) die "usage: scripts/tls-proxy.sh start DDB_PORT SIM_PORT | stop" ;;
esac
