#!/usr/bin/env bash
# Runs the ten-minute walkthrough of docs/plugins.md with its commands as written, so the page
# stays true: scaffold a provider, test it with the harness, build and validate it, start the
# mock vendor and a real server, install the plugin by copying it in, wait for hot reload, ask
# it over HTTP. Then the memory template is scaffolded, tested, built and validated too (it
# needs Redis on 127.0.0.1:6379). Differences from the page, all about where things run: a
# temporary folder instead of `..`, a free port instead of 8080, and the server binary in
# CODEXCONTINUE_BIN when set (else `cargo build --release`, as step 0 says).
#
# CARGO_TARGET_DIR, when set, becomes each scaffolded crate's `target` (a symlink), so their
# builds share the examples' cache while the commands stay verbatim; `cargo xtask test` sets it.
# The whole run is bounded (WALKTHROUGH_TIMEOUT seconds, default 1200); the mock vendor and the
# server are stopped on exit.
set -euo pipefail
if [ -z "${WALKTHROUGH_BOUNDED:-}" ] && command -v timeout >/dev/null; then
    WALKTHROUGH_BOUNDED=1 exec timeout "${WALKTHROUGH_TIMEOUT:-1200}" bash "$0" "$@"
fi

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
WAIT_SECONDS=120
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do
        # Each background step runs in its own process group (setsid): end the group.
        kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
# A timeout's TERM (or Ctrl-C) exits through the EXIT trap, so nothing is left running.
trap 'exit 143' TERM INT

step() { printf '\n== walkthrough: %s\n' "$*"; }
fail() {
    printf 'walkthrough: FAILED: %b\n' "$*" >&2
    exit 1
}

# Waits until `$1` (a file) has a line matching `$2`, printing the match; fails after the wait.
wait_for_line() {
    local deadline=$((SECONDS + WAIT_SECONDS))
    while ((SECONDS < deadline)); do
        if grep -m1 -o -E "$2" "$1" 2>/dev/null; then return 0; fi
        sleep 0.5
    done
    fail "no line matching '$2' in $1 after ${WAIT_SECONDS}s:\n$(tail -20 "$1")"
}

# A scaffolded crate (the current folder) builds into the shared target folder, if there is one.
share_target() {
    if [ -n "$SHARED_TARGET" ]; then
        mkdir -p "$SHARED_TARGET"
        ln -s "$SHARED_TARGET" target
    fi
}

SHARED_TARGET="${CARGO_TARGET_DIR:+$(realpath -m "$CARGO_TARGET_DIR")}"
# The page's commands use each crate's own `target` folder (the symlink above, when shared).
unset CARGO_TARGET_DIR

cd "$ROOT"
step "0. the server binary"
if [ -n "${CODEXCONTINUE_BIN:-}" ]; then
    export PATH="$(dirname "$CODEXCONTINUE_BIN"):$PATH"
else
    cargo build --release
    export PATH="$PWD/target/release:$PATH"
fi

step "1. scaffold"
codexcontinue plugins new acme --kind provider --dir "$WORK/acme"
cd "$WORK/acme"
share_target

step "2. edit: nothing, the files work as generated"

step "3. test with the harness"
cargo test --target host-tuple

step "4. build and validate"
cargo build --release
cp target/wasm32-wasip2/release/acme.wasm acme.wasm
codexcontinue plugins validate acme.wasm | tee "$WORK/validate.out"
grep -q "ok: acme@0.1.0 is a provider plugin" "$WORK/validate.out" || fail "validate did not accept acme"

step "5. the mock vendor"
setsid cargo run --target host-tuple --example mock-vendor >"$WORK/vendor.out" 2>"$WORK/vendor.err" &
PIDS+=($!)
BASE_URL="$(wait_for_line "$WORK/vendor.out" 'http://127\.0\.0\.1:[0-9]+')"

step "6. the server"
mkdir -p ../acme-server/plugins
ACME_BASE_URL="$BASE_URL" ACME_API_KEY=sk-mock \
    setsid codexcontinue serve --bind 127.0.0.1:0 --data-dir ../acme-server/data --plugins-dir ../acme-server/plugins \
    >"$WORK/server.out" 2>"$WORK/server.err" &
PIDS+=($!)
SERVER="$(wait_for_line "$WORK/server.err" 'http://127\.0\.0\.1:[0-9]+')"

step "7. install (hot reload)"
cp acme.toml acme.wasm ../acme-server/plugins/

step "8. ask it"
deadline=$((SECONDS + WAIT_SECONDS))
status=000
while ((SECONDS < deadline)); do
    status="$(curl -s -o "$WORK/reply.json" -w '%{http_code}' "$SERVER/chat" -H 'content-type: application/json' \
        -d '{"message": "Hello, Acme!", "provider": "acme"}' || true)"
    # 404 provider_not_found until the watcher has staged the plugin.
    [ "$status" = 200 ] && break
    sleep 0.5
done
cat "$WORK/reply.json"
echo
[ "$status" = 200 ] || fail "POST /chat answered $status after ${WAIT_SECONDS}s; server log:\n$(tail -20 "$WORK/server.err")"
grep -q '"reply":"(mock acme) you said: Hello, Acme!"' "$WORK/reply.json" || fail "unexpected reply"
grep -q '"provider":"acme"' "$WORK/reply.json" || fail "the reply did not come from acme"

step "the memory template: scaffold, test, build, validate"
cd "$ROOT"
codexcontinue plugins new acme-memory --kind memory --dir "$WORK/acme-memory"
cd "$WORK/acme-memory"
share_target
cargo test --target host-tuple
cargo build --release
cp target/wasm32-wasip2/release/acme_memory.wasm acme-memory.wasm
codexcontinue plugins validate acme-memory.wasm | tee "$WORK/validate.out"
grep -q "ok: acme-memory@0.1.0 is a memory plugin" "$WORK/validate.out" || fail "validate did not accept acme-memory"

echo
echo "walkthrough: passed in ${SECONDS}s"
