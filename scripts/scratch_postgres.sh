# Sourced by scripts that need a throwaway PostgreSQL (the PostgreSQL
# example, tools/txmq-bench/pg-outbox.sh):
#   . scripts/scratch_postgres.sh
#   start_scratch_postgres DIR    # initdb into DIR/data; sets pg_port, pg_pid, pgbin
#   stop_scratch_postgres         # fast shutdown, bounded wait
# The server runs as user nobody when started by root (PostgreSQL refuses
# root), listens on a free port of 127.0.0.1 only (no Unix socket), trusts
# local user txmq, and keeps PostgreSQL's durable defaults (fsync on).
# Needs Debian's postgresql (scripts/deps.sh installs it).

start_scratch_postgres() {
  local dir=$1
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ ! -x "$pgbin/postgres" ]; then
    echo "no /usr/lib/postgresql/*/bin/postgres: apt-get install postgresql (scripts/deps.sh)" >&2
    return 1
  fi
  local as_server=()
  if [ "$(id -u)" -eq 0 ]; then
    chown nobody:nogroup "$dir"
    as_server=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
  fi
  "${as_server[@]}" "$pgbin/initdb" -D "$dir/data" -U txmq -A trust -E UTF8 --no-instructions \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "${as_server[@]}" "$pgbin/postgres" -D "$dir/data" -p "$pg_port" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories= -c max_connections=100 -c log_min_messages=warning \
    >"$dir/postgres.log" 2>&1 &
  pg_pid=$!
  local _
  for _ in $(seq 300); do
    "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && return 0
    kill -0 "$pg_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "PostgreSQL did not start: $(tail -3 "$dir/postgres.log")" >&2
  return 1
}

stop_scratch_postgres() {
  [ -n "${pg_pid:-}" ] || return 0
  kill -INT "$pg_pid" 2>/dev/null || true
  local _
  for _ in $(seq 100); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
  pg_pid=
}
