#!/usr/bin/env bash
# Import benchmark: generates a client-contacts (seed 003) file of N contacts (default
# 100,000), imports it into a fresh SQLite database and into a fresh PostgreSQL database
# (when BENCH_POSTGRES_URL names a server, e.g. postgres://postgres@127.0.0.1:5432/test: the
# script creates `cg_bench_import` there and drops it at the end), then imports it again
# (every record unchanged). Prints the time and contacts/s of each run.
# Usage: cargo build --release && bash benches/import.sh [N]
set -euo pipefail
n="${1:-100000}"
bin="$(dirname "$0")/../target/release/contact-gateway"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$n" > "$work/contacts.json" <<'PY'
import json, sys
n = int(sys.argv[1])
print(json.dumps([{
    "id": i, "client_id": 1 + i % 50,
    "created_at": "2025-10-28T10:23:49.429Z", "updated_at": "2025-10-28T10:23:49.429Z",
    "email": f"client{i}@example.com", "name": f"Name{i}", "surname": f"Surname{i % 997}",
    "role": "Buyer", "notes": "Some notes about the client",
    "linkedin": f"https://www.linkedin.com/in/client{i}", "description": "A brief description",
    "telephone": f"+4930{i:08d}",
} for i in range(1, n + 1)]))
PY
run() {
  local url="$1" label="$2"
  local tenant
  tenant="$("$bin" tenant create --name bench --database-url "$url" 2>/dev/null)"
  for pass in first second; do
    local start end
    # Written pages of the steps before (the generated file, the last run) go to disk first,
    # so that their writeback is not timed as part of this run.
    sync; sleep 1
    start=$(date +%s.%N)
    "$bin" import --format client-contacts --tenant "$tenant" --source "bench-$tenant" \
      --database-url "$url" "$work/contacts.json" 2>/dev/null | tail -1
    end=$(date +%s.%N)
    python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'$label $pass import: {s:.1f} s, {int(sys.argv[3])/s:.0f} contacts/s')" "$start" "$end" "$n"
  done
}
run "sqlite://$work/bench.db?mode=rwc" "SQLite"
if [ -n "${BENCH_POSTGRES_URL:-}" ]; then
  bench_db="cg_bench_import"
  psql "$BENCH_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $bench_db" -c "CREATE DATABASE $bench_db"
  run "${BENCH_POSTGRES_URL%/*}/$bench_db" "PostgreSQL"
  psql "$BENCH_POSTGRES_URL" -qc "DROP DATABASE $bench_db"
fi
