#!/usr/bin/env bash
# The access layer of the Dagster UI: Debian's nginx with TLS and basic auth in front of the
# webserver that can launch runs, and (optionally) a no-auth port for a --read-only webserver.
# Dagster's open-source webserver has no login, so it must never be published itself.
#
#   misc/scripts/ui-proxy.sh passwd USER        add/replace USER in the htpasswd file (password on stdin)
#   misc/scripts/ui-proxy.sh self-signed-cert   a self-signed TLS pair for trials (production brings its own)
#   misc/scripts/ui-proxy.sh render             write the config from the templates, check it (nginx -t)
#   misc/scripts/ui-proxy.sh start              render, then start nginx as a daemon (pid: $UI_PROXY_DIR/nginx.pid)
#   misc/scripts/ui-proxy.sh run                render, then run nginx in the foreground (systemd, containers)
#   misc/scripts/ui-proxy.sh stop | reload      stop (TERM, KILL after a grace) or reload the daemon by its pid file
#
# Settings (environment):
#   UI_PROXY_DIR               state dir: rendered config, pid, logs, temp files   [.local/ui-proxy]
#   UI_PROXY_LISTEN            address:port of the authenticated TLS server        [0.0.0.0:8443]
#   UI_PROXY_UPSTREAM          the writable dagster-webserver (bind it to 127.0.0.1) [127.0.0.1:3000]
#   UI_PROXY_CERT/UI_PROXY_KEY PEM certificate chain and key     [$UI_PROXY_DIR/tls/cert.pem, key.pem]
#   UI_PROXY_HTPASSWD          htpasswd file (apr1, {SHA} or {SSHA} hashes)     [$UI_PROXY_DIR/htpasswd]
#   UI_PROXY_READONLY_LISTEN   address:port of the no-auth TLS server; empty: none        [empty]
#   UI_PROXY_READONLY_UPSTREAM the `dagster-webserver --read-only`                  [127.0.0.1:3001]
#   UI_PROXY_SERVER_NAME       server_name (also the self-signed cert's CN)             [localhost]
#   UI_PROXY_USER              worker user when started as root (must read the htpasswd) [www-data]
# Nothing under /etc/nginx is read or written; the Debian nginx service need not run.
set -euo pipefail
PATH="$PATH:/usr/sbin:/sbin"  # Debian's nginx is /usr/sbin/nginx, off a normal user's PATH
root="$(cd "$(dirname "$0")/../.." && pwd)"
templates="$root/misc/configs/ui-proxy"

die() { echo "ui-proxy: $*" >&2; exit 1; }

abspath() { realpath -m -- "$1"; }
dir="$(abspath "${UI_PROXY_DIR:-$root/.local/ui-proxy}")"  # relative paths: from the caller's cwd
listen="${UI_PROXY_LISTEN:-0.0.0.0:8443}"
upstream="${UI_PROXY_UPSTREAM:-127.0.0.1:3000}"
cert="$(abspath "${UI_PROXY_CERT:-$dir/tls/cert.pem}")"
key="$(abspath "${UI_PROXY_KEY:-$dir/tls/key.pem}")"
htpasswd="$(abspath "${UI_PROXY_HTPASSWD:-$dir/htpasswd}")"
ro_listen="${UI_PROXY_READONLY_LISTEN:-}"
ro_upstream="${UI_PROXY_READONLY_UPSTREAM:-127.0.0.1:3001}"
server_name="${UI_PROXY_SERVER_NAME:-localhost}"
worker_user="${UI_PROXY_USER:-www-data}"
conf="$dir/nginx.conf"
pidfile="$dir/nginx.pid"
grace="${UI_PROXY_STOP_GRACE:-10}"

# Values go into nginx syntax verbatim: anything that could end a directive is refused.
check_address() {  # NAME VALUE
  local re='^[][A-Za-z0-9._:-]+$'  # host or [v6], optional :port
  [[ "$2" =~ $re ]] || die "$1=$2 is not an address[:port] (e.g. 127.0.0.1:3000)"
}
check_path() {  # NAME VALUE
  [[ "$2" =~ ^/[A-Za-z0-9._/@+=,-]+$ ]] || die "$1=$2: use a path of letters, digits and ._/@+=,- only"
}

cmd_passwd() {  # USER; the password comes on stdin, never in argv (ps would show it)
  local user="${1:-}" pass hash
  [[ "$user" =~ ^[A-Za-z0-9._@-]+$ ]] || die "passwd: give a user name of letters, digits and ._@- (got '${user}')"
  if [ -t 0 ]; then echo "password for $user (then Enter):" >&2; fi
  IFS= read -r -s pass || true
  [ -n "$pass" ] || die "passwd: empty password for $user on stdin"
  hash="$(printf '%s' "$pass" | openssl passwd -apr1 -stdin)"
  mkdir -p "$(dirname "$htpasswd")"
  touch "$htpasswd"
  umask 027  # the hashes are not for everyone: owner + the workers' group
  { awk -F: -v u="$user" '$1 != u' "$htpasswd"; echo "$user:$hash"; } >"$htpasswd.new"
  chmod 640 "$htpasswd.new"
  if [ "$(id -u)" = 0 ] && id "$worker_user" >/dev/null 2>&1; then chgrp "$(id -gn "$worker_user")" "$htpasswd.new"; fi
  mv "$htpasswd.new" "$htpasswd"
  echo "ui-proxy: $user set in $htpasswd"
}

cmd_self_signed_cert() {
  if [ -s "$cert" ] && [ -s "$key" ]; then echo "ui-proxy: $cert exists (kept)"; return; fi
  mkdir -p "$(dirname "$cert")" "$(dirname "$key")"
  umask 077  # the key is never readable by others, not even for a moment
  openssl req -x509 -newkey rsa:2048 -nodes -days "${UI_PROXY_CERT_DAYS:-365}" -subj "/CN=$server_name" \
    -addext "subjectAltName=DNS:$server_name,IP:127.0.0.1" -keyout "$key" -out "$cert" 2>/dev/null \
    || die "openssl could not write $cert / $key"
  chmod 644 "$cert"  # public: clients trust it with curl --cacert / their CA store
  echo "ui-proxy: self-signed certificate $cert (CN=$server_name); production brings its own"
}

preflight() {
  command -v nginx >/dev/null || die "nginx is missing: apt-get install nginx"
  check_address UI_PROXY_LISTEN "$listen"
  check_address UI_PROXY_UPSTREAM "$upstream"
  [[ "$upstream" == 0.0.0.0:* || "$upstream" == "[::]:"* ]] \
    && die "UI_PROXY_UPSTREAM=$upstream: name the address the webserver listens on (127.0.0.1:PORT)"
  [ -z "$ro_listen" ] || { check_address UI_PROXY_READONLY_LISTEN "$ro_listen"
                           check_address UI_PROXY_READONLY_UPSTREAM "$ro_upstream"; }
  [[ "$server_name" =~ ^[A-Za-z0-9._*-]+$ ]] || die "UI_PROXY_SERVER_NAME=$server_name is not a host name"
  local name
  for name in dir cert key htpasswd; do check_path "UI_PROXY_${name^^}" "${!name}"; done
  [ -s "$cert" ] && [ -s "$key" ] \
    || die "no TLS pair at $cert / $key: set UI_PROXY_CERT and UI_PROXY_KEY, or run '$0 self-signed-cert'"
  grep -q '^[^#:][^:]*:.' "$htpasswd" 2>/dev/null \
    || die "no user in $htpasswd: run '$0 passwd USER' (or set UI_PROXY_HTPASSWD)"
  # Workers (not the master) read the htpasswd on each request: a file they cannot read is a 500.
  if [ "$(id -u)" = 0 ] && [ "$worker_user" != root ]; then
    runuser -u "$worker_user" -- test -r "$htpasswd" -a -w "$dir/tmp" \
      || die "$worker_user (UI_PROXY_USER) cannot read $htpasswd or write $dir/tmp: fix the modes or set UI_PROXY_USER"
  fi
}

# Replace each {{NAME}} of a template with its value (bash substitution: no sed escaping).
fill() {  # TEMPLATE
  local text
  text="$(<"$1")"
  text="${text//'{{STATE_DIR}}'/$dir}"; text="${text//'{{LISTEN}}'/$listen}"
  text="${text//'{{UPSTREAM}}'/$upstream}"; text="${text//'{{CERT}}'/$cert}"
  text="${text//'{{KEY}}'/$key}"; text="${text//'{{HTPASSWD}}'/$htpasswd}"
  text="${text//'{{SERVER_NAME}}'/$server_name}"; text="${text//'{{READONLY_LISTEN}}'/$ro_listen}"
  text="${text//'{{READONLY_UPSTREAM}}'/$ro_upstream}"
  printf '%s\n' "$text"
}

cmd_render() {
  local user_line="" ro_server=""
  mkdir -p "$dir"/tmp/{body,proxy,fastcgi,uwsgi,scgi}
  if [ "$(id -u)" = 0 ]; then  # the master drops the workers to this user
    id "$worker_user" >/dev/null 2>&1 || die "UI_PROXY_USER=$worker_user does not exist"
    chown -R "$worker_user" "$dir/tmp"
    user_line="user $worker_user;"
  fi
  preflight
  if [ -n "$ro_listen" ]; then ro_server="$(fill "$templates/readonly-server.conf.template")"; fi
  cp "$templates/proxy-headers.conf" "$dir/proxy-headers.conf"
  local text
  text="$(fill "$templates/nginx.conf.template")"
  text="${text//'{{USER_DIRECTIVE}}'/$user_line}"
  printf '%s\n' "${text//'{{READONLY_SERVER}}'/$ro_server}" >"$conf.new"
  nginx -t -q -p "$dir" -e "$dir/error.log" -c "$conf.new" || die "nginx rejects the rendered $conf.new (see above)"
  mv "$conf.new" "$conf"
  echo "ui-proxy: $conf: https://$listen -> $upstream (basic auth)${ro_listen:+, https://$ro_listen -> $ro_upstream (read-only)}"
}

running_pid() {
  local pid
  pid="$(cat "$pidfile" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && grep -q nginx "/proc/$pid/cmdline" 2>/dev/null \
    && echo "$pid"
}

cmd_start() {
  local pid
  pid="$(running_pid)" && die "already running (pid $pid, $pidfile): '$0 reload' or '$0 stop'"
  cmd_render
  nginx -p "$dir" -e "$dir/error.log" -c "$conf" || die "nginx did not start; see $dir/error.log"
  for _ in $(seq 50); do pid="$(running_pid)" && break; sleep 0.1; done
  [ -n "${pid:-}" ] || die "nginx wrote no pid to $pidfile; see $dir/error.log"
  echo "ui-proxy: nginx running (pid $pid)"
}

cmd_stop() {
  local pid
  pid="$(running_pid)" || { echo "ui-proxy: not running ($pidfile)"; rm -f "$pidfile"; return 0; }
  kill -TERM "$pid"
  for _ in $(seq "$((grace * 10))"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  # The master leads its own process group (nginx daemonizes with setsid): KILL takes the workers too.
  if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$pidfile"
  echo "ui-proxy: stopped (pid $pid)"
}

case "${1:-}" in
  passwd) cmd_passwd "${2:-}" ;;
  self-signed-cert) cmd_self_signed_cert ;;
  render) cmd_render ;;
  start) cmd_start ;;
  run) cmd_render; exec nginx -p "$dir" -e "$dir/error.log" -c "$conf" -g 'daemon off;' ;;
  stop) cmd_stop ;;
  reload) pid="$(running_pid)" || die "not running ($pidfile)"; cmd_render; kill -HUP "$pid"
          echo "ui-proxy: reloaded (pid $pid)" ;;
  *) sed -n '2,/^set -euo/{/^#/p}' "$0" >&2; exit 2 ;;
esac
