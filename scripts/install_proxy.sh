#!/usr/bin/env bash
# JupyterHub's proxy for `make room` and the room test: configurable-http-proxy 5.3.0 from npm,
# installed beside the venv (never globally). Installs node/npm from apt when missing and root.
set -euo pipefail
prefix="$1"
if ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    else
        echo "npm is missing: install Node.js (https://nodejs.org, or your package manager), then run make again." >&2
        exit 1
    fi
fi
npm install --silent --no-audit --no-fund --prefix "$prefix" configurable-http-proxy@5.3.0
