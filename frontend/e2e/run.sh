#!/usr/bin/env bash
# End-to-end tests of the dashboard in headless Chromium against the real `devsignal serve`
# (a fresh SQLite database in a temporary DATA_DIR, a free port). Installs what it needs: Debian's
# Chromium when /usr/bin/chromium is missing, the npm packages when node_modules is stale.
#
#   bash frontend/e2e/run.sh                       # builds the binary (debug) and runs the suite
#   DEVSIGNAL_BIN=target/release/devsignal bash frontend/e2e/run.sh
#   E2E_DATABASE_URL=postgres://…/db bash frontend/e2e/run.sh   # against PostgreSQL
#
# Screenshots and the server log go to frontend/test-results/. The last line is the summary
# `e2e: N passed, M failed`; the exit status is non-zero when anything failed.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
frontend="$(dirname "$here")"
root="$(dirname "$frontend")"
results="$frontend/test-results"
mkdir -p "$results"

fail_setup() { echo "e2e setup failed: $*" >&2; echo "e2e: 0 passed, 1 failed"; exit 1; }

if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (Debian package)…"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
    fail_setup "apt-get install chromium"
fi
if [ ! -f "$frontend/node_modules/.package-lock.json" ] ||
  [ "$frontend/package-lock.json" -nt "$frontend/node_modules/.package-lock.json" ]; then
  (cd "$frontend" && npm ci --no-audit --no-fund) || fail_setup "npm ci"
fi

bin="${DEVSIGNAL_BIN:-}"
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --quiet -p devsignal-server --bin devsignal) || fail_setup "cargo build"
  bin="${CARGO_TARGET_DIR:-$root/target}/debug/devsignal"
fi
[ -x "$bin" ] || fail_setup "no binary at $bin"

data_dir="$(mktemp -d)"
# The outside services connectors read (npm, PyPI, GitHub) are a local fake: no test reaches the
# internet (the other sources' base URLs point at it too, where they answer 404, since connecting
# one schedules its first run). It prints its base URL first.
node "$here/fake-sources.mjs" >"$data_dir/fake-sources.url" 2>"$results/fake-sources.log" &
fake=$!
server=
cleanup() {
  kill $server "$fake" 2>/dev/null
  wait $server "$fake" 2>/dev/null
  rm -rf "$data_dir"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  if [ -s "$data_dir/fake-sources.url" ]; then break; fi
  kill -0 "$fake" 2>/dev/null || break
  sleep 0.1
done
fake_url="$(head -1 "$data_dir/fake-sources.url")"
[ -n "$fake_url" ] || fail_setup "the fake sources did not start"
port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
base="http://localhost:$port"
db_env=()
if [ -n "${E2E_DATABASE_URL:-}" ]; then db_env=(DATABASE_URL="$E2E_DATABASE_URL"); fi

env -u DATABASE_URL -u REDIS_URL "${db_env[@]}" \
  DATA_DIR="$data_dir" PORT="$port" HOST=127.0.0.1 FRONTEND_URL="$base" API_URL="$base" \
  RATE_LIMIT_API=100000 RATE_LIMIT_AUTH=1000 RATE_LIMIT_SIGNAL=100000 RATE_LIMIT_DEMO=1 \
  NPM_DOWNLOADS_API_URL="$fake_url/npm-downloads" NPM_REGISTRY_URL="$fake_url/npm-registry" \
  PYPISTATS_API_URL="$fake_url/pypistats" PYPI_URL="$fake_url/pypi" GITHUB_API_URL="$fake_url/github" \
  STACKEXCHANGE_API_URL="$fake_url/stackexchange" REDDIT_API_URL="$fake_url/reddit" \
  REDDIT_AUTH_URL="$fake_url/reddit-auth" DISCORD_API_URL="$fake_url/discord" \
  TWITTER_API_URL="$fake_url/twitter" INTERCOM_API_URL="$fake_url/intercom" \
  GITHUB_CLIENT_ID=e2e-client GITHUB_CLIENT_SECRET=e2e-secret \
  HUBSPOT_API_URL="$fake_url/hubspot" HUBSPOT_AUTH_URL="$fake_url/hubspot/oauth/authorize" \
  HUBSPOT_CLIENT_ID=e2e-hubspot-client HUBSPOT_CLIENT_SECRET=e2e-hubspot-secret \
  GITHUB_OAUTH_BASE_URL="$fake_url/github-oauth" GITHUB_API_BASE_URL="$fake_url/github-oauth" \
  "$bin" serve >"$results/server.log" 2>&1 &
server=$!

for _ in $(seq 1 300); do
  if curl -fs "$base/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then tail -20 "$results/server.log" >&2; fail_setup "the server exited"; fi
  sleep 0.1
done
curl -fs "$base/health" >/dev/null || fail_setup "the server did not become healthy"

cd "$frontend" && BASE_URL="$base" DATA_DIR="$data_dir" RESULTS_DIR="$results" FAKE_SOURCES_URL="$fake_url" node e2e/suite.mjs
