# Sourced by the benchmarks that run `kaquan serve` nodes: needs $KAQUAN
# (the binary) and $WORK (a scratch folder, removed on exit).
SERVERS=()
cleanup() { for s in "${SERVERS[@]:-}"; do [ -n "$s" ] && kill "$s" 2>/dev/null; done; rm -rf "$WORK"; }
trap cleanup EXIT

start_server() { # $1 = label, then kaquan args; sets ADDRESS
  local label=$1; shift
  "$KAQUAN" "$@" serve --listen 127.0.0.1:0 2>"$WORK/$label.log" &
  SERVERS+=($!)
  ADDRESS=""
  for _ in $(seq 1 100); do
    ADDRESS=$(grep -so 'http://[0-9.:]*' "$WORK/$label.log" | head -n 1 || true)
    [ -n "$ADDRESS" ] && break
    sleep 0.1
  done
}

stop_servers() {
  kill "${SERVERS[@]}" 2>/dev/null || true
  for s in "${SERVERS[@]}"; do wait "$s" 2>/dev/null || true; done
  SERVERS=()
}
