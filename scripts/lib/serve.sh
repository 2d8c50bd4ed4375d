# Shared by scripts/fuzz and scripts/client-test: build kaquan, make a
# Python virtual environment, and start a real `kaquan serve` with one
# merchant and an owner account. Source it after `cd` to the checkout.
#
#   kaquan_build                      sets $kaquan
#   python_venv DIR CHECK PACKAGES…   creates DIR unless `python -c CHECK` passes
#   kaquan_start DB_URL USERNAME      sets $port, $password, $server; logs to $work/serve.log
#   kaquan_stop                       stops $server
# The caller sets $work (a temporary directory) and traps kaquan_stop.

target="${CARGO_TARGET_DIR:-target}"
server=""

kaquan_build() {
  kaquan="$target/debug/kaquan"
  cargo build -q -p kaquan
}

python_venv() {
  local venv="$1" check="$2"
  shift 2
  if [ ! -x "$venv/bin/pytest" ] || ! "$venv/bin/python" -c "$check" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "$@" pytest requests
  fi
}

kaquan_start() {
  local db="$1" username="$2" key
  key="$work/kaquan-$RANDOM.key"
  "$kaquan" --database-url "$db" --key-file "$key" migrate >/dev/null
  "$kaquan" --database-url "$db" --key-file "$key" merchant create --name "$username" >/dev/null
  password="pw$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  printf '%s\n' "$password" | "$kaquan" --database-url "$db" --key-file "$key" \
    user create --username "$username" --role owner --password-stdin >/dev/null
  "$kaquan" --database-url "$db" --key-file "$key" batch generate --quantity 20 >/dev/null 2>&1
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  KAQUAN_LOG=warn "$kaquan" --database-url "$db" --key-file "$key" \
    serve --listen "127.0.0.1:$port" 2>"$work/serve.log" &
  server=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "kaquan did not start:" >&2
  cat "$work/serve.log" >&2
  return 1
}

kaquan_stop() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  server=""
}
