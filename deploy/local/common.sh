# shellcheck shell=bash disable=SC2034,SC2016  # constants used by up.sh/down.sh; bash -c scripts take $0 $1
# Shared by up.sh and down.sh: paths, messages, address parsing and probes.
# Sourced, not run.

EP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EP_DEPLOY="$EP_ROOT/deploy/local"
# Runtime state (data, logs, pid files) of what up.sh starts; git-ignored.
EP_LOCAL=${EFFORTPULSE_LOCAL_DIR:-$EP_ROOT/.local}
EP_KAFKA_DIR="$EP_LOCAL/kafka"
EP_REDIS_DIR="$EP_LOCAL/redis"
EP_KAFKA_PID="$EP_KAFKA_DIR/kafka.pid"
EP_REDIS_PID="$EP_REDIS_DIR/redis.pid"

say()  { printf '[effortpulse] %s\n' "$*"; }
warn() { printf '[effortpulse] WARNING: %s\n' "$*" >&2; }
die()  { printf '[effortpulse] ERROR: %s\n' "$*" >&2; exit 1; }

# "PLAINTEXT://h1:9092,h2:9092" -> "h1 9092" (first server only; [v6] brackets dropped).
parse_kafka_bootstrap() {
  local first=${1%%,*}
  first=${first#*://}
  first=${first// /}
  local host port
  if [[ $first == \[*\]:* ]]; then
    host=${first%%]:*}; host=${host#[}; port=${first##*]:}
  elif [[ $first == *:* ]]; then
    host=${first%:*}; port=${first##*:}
  else
    host=$first; port=9092
  fi
  [[ -n $host ]] || host=127.0.0.1
  [[ $port =~ ^[0-9]+$ ]] || die "cannot read a port from EFFORTPULSE_KAFKA_BOOTSTRAP='$1'"
  printf '%s %s\n' "$host" "$port"
}

# "redis[s]://[user[:password]@]host[:port][/db]" -> "scheme host port"; sets
# EP_REDIS_PASSWORD (percent-decoded, may be empty).
parse_redis_url() {
  local url=$1 scheme rest auth hostport host port
  [[ $url == *://* ]] || die "EFFORTPULSE_REDIS_URL='$url' is not a redis:// or rediss:// URL"
  scheme=${url%%://*}
  [[ $scheme == redis || $scheme == rediss ]] \
    || die "EFFORTPULSE_REDIS_URL uses '$scheme://'; up.sh handles redis:// and rediss://"
  rest=${url#*://}
  rest=${rest%%/*}; rest=${rest%%\?*}
  EP_REDIS_PASSWORD=
  if [[ $rest == *@* ]]; then
    auth=${rest%@*}; hostport=${rest##*@}
    if [[ $auth == *:* ]]; then EP_REDIS_PASSWORD=${auth#*:}; fi
    EP_REDIS_PASSWORD=${EP_REDIS_PASSWORD//\\/\\\\}   # keep literal backslashes for %b
    EP_REDIS_PASSWORD=$(printf '%b' "${EP_REDIS_PASSWORD//%/\\x}")
  else
    hostport=$rest
  fi
  if [[ $hostport == \[*\]* ]]; then
    host=${hostport%%]*}; host=${host#[}; port=${hostport#*]}; port=${port#:}
  elif [[ $hostport == *:* ]]; then
    host=${hostport%:*}; port=${hostport##*:}
  else
    host=$hostport; port=
  fi
  [[ -n $host ]] || host=127.0.0.1
  [[ -n $port ]] || port=6379
  [[ $port =~ ^[0-9]+$ ]] || die "cannot read a port from EFFORTPULSE_REDIS_URL"
  printf '%s %s %s\n' "$scheme" "$host" "$port"
}

is_local_host() { [[ $1 == 127.0.0.1 || $1 == localhost ]]; }

# Does anything accept a TCP connection at host:port?
tcp_open() {
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# Does a Kafka broker answer an ApiVersions (v0) request at host:port?
# Any reply carrying our correlation id counts, even an UNSUPPORTED_VERSION error.
kafka_answers() {
  local reply
  reply=$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    # size=12, api_key=18 (ApiVersions), version=0, correlation_id=1, client_id="ep"
    printf "\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x01\x00\x02ep" >&3
    head -c 8 <&3 | od -An -tx1 | tr -d " \n"' "$1" "$2" 2>/dev/null) || return 1
  [[ $reply == ????????00000001 ]]
}

# Reply line of a Redis PING at host:port ("+PONG", "-NOAUTH ...") or nothing.
redis_ping_reply() {
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "PING\r\n" >&3
    IFS= read -r line <&3 || exit 1
    printf "%s" "${line%$'"'"'\r'"'"'}"' "$1" "$2" 2>/dev/null || true
}

# A RESP reply ("+..." or "-...") means a Redis server answers, even one wanting AUTH.
redis_answers() {
  local reply
  reply=$(redis_ping_reply "$1" "$2")
  [[ $reply == +* || $reply == -* ]]
}

# Pid from a pid file, if the process is alive and its /proc entry passes a check:
#   live_pid FILE kafka CONFIG_PATH   -> cmdline holds kafka.Kafka and our server.properties
#   live_pid FILE redis DIR           -> a redis-server whose working dir is ours
live_pid() {
  local file=$1 kind=$2 mine=$3 pid cmd
  [[ -f $file ]] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [[ -n $pid && -d /proc/$pid ]] || return 1
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  case $kind in
    kafka) [[ $cmd == *kafka.Kafka* && $cmd == *"$mine"* ]] || return 1 ;;
    redis) local cwd
           cwd=$(readlink -f "/proc/$pid/cwd" 2>/dev/null) || return 1
           [[ $cmd == *redis-server* && -n $cwd && $cwd == "$(readlink -f "$mine")" ]] || return 1 ;;
  esac
  printf '%s\n' "$pid"
}
