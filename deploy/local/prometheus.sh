#!/usr/bin/env bash
# Make sure the Prometheus server and promtool are installed (the tests start their own
# Prometheus on loopback and run promtool on deploy/prometheus/*). Installs Debian's
# `prometheus` package with apt-get when either is missing and we are root; starts nothing
# and leaves nothing running. Idempotent: when both are there it only says so.
#
#   PROMETHEUS, PROMTOOL   use these binaries instead of the ones on PATH (e.g. from the
#                          upstream tarball); the tests read the same two variables
set -euo pipefail
# shellcheck source=deploy/local/common.sh source-path=SCRIPTDIR/../..
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PROMETHEUS_BIN=${PROMETHEUS:-prometheus}
PROMTOOL_BIN=${PROMTOOL:-promtool}

have_both() { command -v "$PROMETHEUS_BIN" >/dev/null && command -v "$PROMTOOL_BIN" >/dev/null; }

version_line() { "$PROMETHEUS_BIN" --version 2>&1 | head -n1; }

if have_both; then
  say "Prometheus is installed: $(version_line)"
  exit 0
fi

if [[ -n ${PROMETHEUS:-} || -n ${PROMTOOL:-} ]]; then
  die "PROMETHEUS='${PROMETHEUS:-}' / PROMTOOL='${PROMTOOL:-}' do not name runnable binaries; fix them or unset both to use Debian's package"
fi
if [[ $(id -u) -ne 0 ]]; then
  die "Prometheus (prometheus and promtool) is not installed and this is not root, so it cannot be installed here.
  Install it once as root:   sudo apt-get install --no-install-recommends prometheus
  (or set PROMETHEUS and PROMTOOL to the binaries of https://prometheus.io/download/), then run make test again.
  The tests need it: they start their own Prometheus on 127.0.0.1 and run promtool on deploy/prometheus/."
fi
command -v apt-get >/dev/null \
  || die "Prometheus is not installed and there is no apt-get: install prometheus and promtool (https://prometheus.io/download/) or set PROMETHEUS and PROMTOOL"

mkdir -p "$EP_LOCAL"
if command -v flock >/dev/null; then
  # up.sh may be installing redis-server with apt-get at this moment (make -j): take turns.
  exec 9>"$EP_LOCAL/up.lock"
  flock -w 900 9 || die "gave up waiting for deploy/local/up.sh to finish (lock $EP_LOCAL/up.lock)"
  if have_both; then say "Prometheus is installed: $(version_line)"; exit 0; fi
fi
LOG="$EP_LOCAL/apt-prometheus.log"
: >"$LOG"

# The package's maintainer scripts start a `prometheus` service (invoke-rc.d / deb-systemd-invoke)
# on 0.0.0.0:9090 where they can. We want the binaries only: forbid service starts for the
# duration of the install with a policy-rc.d (the Debian mechanism for exactly this), unless one
# is already there, and remove ours afterwards whatever happens.
POLICY=/usr/sbin/policy-rc.d
OUR_POLICY=0
cleanup() { if (( OUR_POLICY )); then rm -f "$POLICY"; fi; }
trap cleanup EXIT
if [[ ! -e $POLICY ]]; then
  printf '#!/bin/sh\n# temporary, written by effortpulse deploy/local/prometheus.sh: start no services\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  OUR_POLICY=1
fi

# The package's service runs as the user `prometheus`; the tests' servers run as whoever runs
# them. Servers of that user that run already are not ours and are never touched.
package_servers() { (pgrep -x -u prometheus prometheus 2>/dev/null || true) | tr '\n' ' '; }
before=" $(package_servers) "

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends prometheus \
    </dev/null >>"$LOG" 2>&1 9>&-
}

say "Installing Debian's prometheus package (server and promtool; apt-get, once; log in $LOG)..."
t0=$SECONDS
if ! apt_install; then
  say "apt-get install failed with the current package lists; running apt-get update and trying again"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update </dev/null >>"$LOG" 2>&1 9>&- && apt_install; }; then
    tail -n 20 "$LOG" >&2
    die "apt-get install prometheus failed; see $LOG"
  fi
fi

# Whatever the package started anyway (an init system that ignores policy-rc.d): stop it — it
# was started by this script, so only the processes that appeared during the install.
for pid in $(package_servers); do
  [[ $before == *" $pid "* ]] && continue
  warn "the prometheus package started a server (pid $pid); stopping it (the tests start their own)"
  if [[ -x /etc/init.d/prometheus ]]; then /etc/init.d/prometheus stop >>"$LOG" 2>&1 || true; fi
  if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
done

have_both || die "prometheus or promtool is still missing after apt-get install; see $LOG"
say "Installed $(version_line) and $("$PROMTOOL_BIN" --version 2>&1 | head -n1 | awk '{print $1, $2, $3}') in $((SECONDS - t0)) s (no service started)"
