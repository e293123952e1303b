#!/usr/bin/env bash
# Debian's Chromium for the UI tests (custpipe_assets_tests/ui): Playwright drives it instead of downloading its
# own browser build, which this network cannot fetch. Idempotent and quiet: does nothing when /usr/bin/chromium
# exists; apt's output is shown only when the install fails.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq chromium; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_browser.sh: could not install Debian's chromium (needed by the UI tests)" >&2
    exit 1
fi
