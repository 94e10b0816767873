#!/usr/bin/env bash
# Starts sf-coordinator on a service node (a login or service host that stays up, not a
# compute node) for the workers that deploy/slurm/sf-workers.sbatch starts. Its database
# and the two bearer tokens live in one state folder; the tokens are made on first start.
# The coordinator listens off loopback, so tokens are always on; add TLS with the three
# SF_TLS_* variables (docs/deploy.md). Runs in the foreground: start it under systemd,
# tmux or nohup, and stop it with SIGTERM (it finishes in-flight calls and exits).
#   usage: deploy/slurm/sf-coordinator.sh [more sf-coordinator flags]
# Environment (all optional):
#   SF_STATE_DIR        database and tokens (default ./sf-coordinator-state)
#   SF_LISTEN           host:port to serve on (default 0.0.0.0:50051)
#   SF_COORDINATOR_BIN  the binary (default: sf-coordinator on PATH)
#   SF_TLS_CERT, SF_TLS_KEY   PEM certificate chain and key: serve TLS
#   SF_TLS_CLIENT_CA    PEM CA: also require client certificates (mutual TLS)
set -euo pipefail

state=${SF_STATE_DIR:-$PWD/sf-coordinator-state}
listen=${SF_LISTEN:-0.0.0.0:50051}
bin=${SF_COORDINATOR_BIN:-sf-coordinator}
command -v "$bin" >/dev/null || {
  echo "sf-coordinator.sh: $bin not found: put sf-coordinator on PATH or set SF_COORDINATOR_BIN" >&2
  exit 2
}

mkdir -p "$state"
chmod 700 "$state"
umask 077
for who in worker user; do
  token=$state/$who.token
  if [[ ! -s $token ]]; then
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$token"
    echo "sf-coordinator.sh: made $token" >&2
  fi
done

# Every worker holds one connection, so one file descriptor, open: lift the soft limit
# (often 1,024) to the hard one for clusters of more than a few hundred GPUs.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

args=(--db "$state/coordinator.db" --listen "$listen"
      --worker-token-file "$state/worker.token" --user-token-file "$state/user.token")
if [[ -n ${SF_TLS_CERT:-} || -n ${SF_TLS_KEY:-} ]]; then
  args+=(--tls-cert "${SF_TLS_CERT:?SF_TLS_KEY is set: set SF_TLS_CERT too}"
         --tls-key "${SF_TLS_KEY:?SF_TLS_CERT is set: set SF_TLS_KEY too}")
fi
if [[ -n ${SF_TLS_CLIENT_CA:-} ]]; then
  args+=(--tls-client-ca "$SF_TLS_CLIENT_CA")
fi

cat >&2 <<EOF
sf-coordinator.sh: state in $state; point workers and sfctl at this host:
  workers: SF_COORDINATOR=$(hostname -f 2>/dev/null || hostname):${listen##*:} SF_TOKEN_FILE=$state/worker.token
  sfctl:   --coordinator $(hostname -f 2>/dev/null || hostname):${listen##*:} --token-file $state/user.token
EOF
exec "$bin" "${args[@]}" "$@"
