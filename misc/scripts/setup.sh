#!/usr/bin/env bash
# One-time set-up of a fresh machine: Debian packages (as root, when missing) and the venv.
# Idempotent: re-running only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
# dockerd, debootstrap and nginx live in /usr/sbin, which a normal user's PATH lacks on Debian:
# without it, a machine that has them all would still be told to install them.
PATH="$PATH:/usr/sbin:/sbin"

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
command -v git >/dev/null 2>&1 || need_apt+=(git)
if [ "${DEPLOY_ASSETS_TEST_DEPS:-0}" = 1 ]; then  # what `make test` needs beyond the demo
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_apt+=(postgresql)
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
  command -v nginx >/dev/null 2>&1 || need_apt+=(nginx)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    # Debian's nginx service (port 80) is not ours: the UI proxy runs its own (misc/scripts/ui-proxy.sh).
    if [[ " ${need_apt[*]} " == *" nginx "* ]] && [ -s /run/nginx.pid ]; then
      service nginx stop >/dev/null 2>&1 || kill -TERM "$(cat /run/nginx.pid)" 2>/dev/null || true
    fi
  else
    echo "setup: missing ${need_apt[*]}; install them (apt-get install ${need_apt[*]}) or run as root" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.deploy-assets-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  # The dagster family is pinned as one set in pyproject.toml (dagster 1.13.27 + 0.29.27 libraries).
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi
.venv/bin/go version >/dev/null
