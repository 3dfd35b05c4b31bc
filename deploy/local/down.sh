#!/usr/bin/env bash
# Stop what deploy/local/up.sh started (and nothing else): the Kafka broker and Redis whose
# pid files it wrote. Data is kept; `down.sh --purge` also deletes it (and the logs).
#
#   EFFORTPULSE_LOCAL_DIR   where up.sh keeps data, logs and pid files, default <repo>/.local
#   EFFORTPULSE_STOP_TIMEOUT seconds to wait after SIGTERM before SIGKILL, default 20
set -euo pipefail
# shellcheck source=deploy/local/common.sh source-path=SCRIPTDIR/../..
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PURGE=0
for arg in "$@"; do
  case $arg in
    --purge) PURGE=1 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (usage: down.sh [--purge])" ;;
  esac
done
STOP_TIMEOUT=${EFFORTPULSE_STOP_TIMEOUT:-20}

stop_one() { # name pidfile kind mine
  local name=$1 file=$2 kind=$3 mine=$4 pid waited=0
  if [[ ! -f $file ]]; then
    say "$name: up.sh started none (no $file); nothing to stop"
    return 0
  fi
  if ! pid=$(live_pid "$file" "$kind" "$mine"); then
    say "$name: the process in $file ($(tr -dc '0-9' <"$file")) is gone or is not the one up.sh started; removing the stale pid file"
    rm -f "$file"
    return 0
  fi
  say "$name: stopping pid $pid (SIGTERM)..."
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if (( waited >= STOP_TIMEOUT * 5 )); then
      warn "$name: pid $pid still runs after $STOP_TIMEOUT s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
  if kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
    die "$name: pid $pid did not exit"
  fi
  rm -f "$file"
  say "$name: stopped (pid $pid, after $((waited / 5)) s)"
}

stop_one Kafka "$EP_KAFKA_PID" kafka "$EP_KAFKA_DIR/server.properties"
stop_one Redis "$EP_REDIS_PID" redis "$EP_REDIS_DIR"
rm -f "$EP_KAFKA_DIR/kafka.addr"

if (( PURGE )); then
  # Never delete files under a broker that still runs on them (e.g. one whose pid file was lost).
  redis_dir=$(readlink -f "$EP_REDIS_DIR" 2>/dev/null || true)
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    if [[ $cmd == *kafka.Kafka* && $cmd == *"$EP_KAFKA_DIR/server.properties"* ]]; then
      die "--purge: a Kafka broker (pid ${p#/proc/}) still runs on $EP_KAFKA_DIR; stop it first"
    fi
    if [[ -n $redis_dir && $cmd == *redis-server* && $(readlink -f "$p/cwd" 2>/dev/null) == "$redis_dir" ]]; then
      die "--purge: a redis-server (pid ${p#/proc/}) still runs in $EP_REDIS_DIR; stop it first"
    fi
  done
  rm -rf "$EP_KAFKA_DIR" "$EP_REDIS_DIR" "$EP_LOCAL/apt-redis.log" "$EP_LOCAL/up.lock"
  rmdir "$EP_LOCAL" 2>/dev/null || true
  say "Purged local data and logs ($EP_KAFKA_DIR, $EP_REDIS_DIR)"
else
  say "Data and logs kept in $EP_LOCAL (down.sh --purge deletes them)"
fi
