#!/usr/bin/env bash
# Debian's PostgreSQL and Redis for the local cluster (`custpipe cluster up`, custpipe_assets_tests/cluster): the
# cluster starts its own servers from these binaries, on 127.0.0.1, and stops them; the system services are not
# used. Idempotent and quiet: does nothing when both are installed; apt's output is shown only when it fails.
set -euo pipefail

have_postgres() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
have_redis() { command -v redis-server >/dev/null; }

if have_postgres && have_redis; then
    exit 0
fi
packages=()
have_postgres || packages+=(postgresql)
have_redis || packages+=(redis-server)
if ! command -v apt-get >/dev/null; then
    echo "install_services.sh: no apt-get here; install ${packages[*]} by hand (the cluster tests are skipped without them)" >&2
    exit 0
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${packages[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_services.sh: could not install ${packages[*]} (needed by the cluster tests)" >&2
    exit 1
fi
