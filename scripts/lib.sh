# shellcheck shell=bash
# Shared by scripts/services, scripts/test and scripts/run: source it, don't run it.
# Expects `set -euo pipefail` in the caller. Everything that changes at run time lives
# under var/ in the repository root (gitignored).

SLIPWAY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SLIPWAY_VAR="$SLIPWAY_ROOT/var"
export DEBIAN_FRONTEND=noninteractive

say() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

has_systemd() { [ -d /run/systemd/system ]; }

# wait_for SECONDS COMMAND...: poll COMMAND every half second until it succeeds.
wait_for() {
    local seconds=$1; shift
    local tries=$((seconds * 2))
    while ! "$@" >/dev/null 2>&1; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || return 1
        sleep 0.5
    done
}

ensure_var_dirs() {
    mkdir -p "$SLIPWAY_VAR/log" "$SLIPWAY_VAR/run"
}

# Appends only: the lead may add other lines to .gitignore.
ensure_gitignore() {
    local file="$SLIPWAY_ROOT/.gitignore" line
    touch "$file"
    for line in "var/" ".venv/"; do
        grep -qxF "$line" "$file" || printf '%s\n' "$line" >>"$file"
    done
}

package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# ensure_packages PKG...: install the missing ones, running `apt-get update` at most once.
ensure_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    say "apt: installing ${missing[*]}"
    if [ -z "${SLIPWAY_APT_UPDATED:-}" ]; then
        apt-get update -qq
        SLIPWAY_APT_UPDATED=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A hash of what pip installed from, so an unchanged checkout skips pip entirely.
requirements_hash() {
    local files=("$SLIPWAY_ROOT/pyproject.toml")
    [ -f "$SLIPWAY_ROOT/constraints.txt" ] && files+=("$SLIPWAY_ROOT/constraints.txt")
    cat "${files[@]}" | sha256sum | cut -d' ' -f1
}

ensure_venv() {
    local venv="$SLIPWAY_ROOT/.venv" stamp="$SLIPWAY_ROOT/.venv/.slipway-installed" want
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    want="$(requirements_hash)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        say "venv: up to date ($venv)"
        return 0
    fi
    local constraints=()
    [ -f "$SLIPWAY_ROOT/constraints.txt" ] && constraints=(-c "$SLIPWAY_ROOT/constraints.txt")
    say "venv: installing Slipway and its test dependencies into $venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    (cd "$SLIPWAY_ROOT" && "$venv/bin/python" -m pip install -q "${constraints[@]}" -e '.[test]')
    printf '%s\n' "$want" >"$stamp"
}

# load_env_file FILE: export its KEY=VALUE lines; variables already set in the environment win.
load_env_file() {
    local line key
    while IFS= read -r line; do
        case "$line" in '' | \#*) continue ;; esac
        # Split at the first "=" only: values such as Fernet keys end in "=" padding, which
        # `IFS== read key value` would silently strip.
        key="${line%%=*}"
        [ -n "${!key+set}" ] || export "$key=${line#*=}"
    done <"$1"
}

# The scripts/run of this checkout already running for this installation, if any: the pid
# in PIDFILE, or (a run from before the pidfile) the parent of what listens on UPSTREAM
# (host:port, the dashboard's gunicorn). Either must be a scripts/run working in this
# checkout.
running_run() {
    local pidfile=$1 upstream=$2 pid listener
    pid="$(cat "$pidfile" 2>/dev/null)" || pid=""
    if ! is_run_here "$pid"; then
        listener="$(ss -Hltnp "sport = :${upstream##*:}" 2>/dev/null |
            sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1)" || true
        [ -n "$listener" ] || return 1
        pid="$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$listener/status" 2>/dev/null)"
        is_run_here "$pid" || return 1
    fi
    printf '%s' "$pid"
}

is_run_here() {
    local pid=$1
    [ -n "$pid" ] && [ "$pid" != "$$" ] && kill -0 "$pid" 2>/dev/null || return 1
    [ "$(readlink -f "/proc/$pid/cwd")" = "$(readlink -f "$SLIPWAY_ROOT")" ] || return 1
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE '(^|/)scripts/run$'
}

# stop_running_run PIDFILE UPSTREAM: TERM to the run found above (its trap stops its worker,
# beat, log collector and gunicorn, and waits for them), then wait until it is gone.
stop_running_run() {
    local pid
    pid="$(running_run "$1" "$2")" || return 0
    say "run: stopping the Slipway already running here (pid $pid); this checkout's starts next"
    kill -TERM "$pid"
    # Gone, or a zombie its parent has not reaped yet: either way its children are stopped.
    wait_for 120 sh -c "! kill -0 $pid 2>/dev/null || grep -q '^State:.*Z' /proc/$pid/status" ||
        die "the running Slipway (pid $pid) did not stop within 120 s"
}

# The platform's long-running processes, each exec'd in SLIPWAY_ROOT with the venv's
# programs. scripts/run starts them (under keep_running) and bench/memory_bench.py measures
# them, so the benchmark always runs the very command lines the platform runs.

# exec_web HOST:PORT: the dashboard. Threads: two slow requests (a provider's API, a build
# preview) must not stall the rest. --preload: the master imports the app once and forks
# the workers from it, so they share its pages copy-on-write instead of each importing
# Django, the models and the use cases again (idle: 164 MiB PSS before, 143 with it;
# bench/run --memory). Nothing at import opens a database connection, a socket or a
# thread that the fork would share. A HUP would not reload the code then, which nothing
# does: scripts/run starts everything anew.
# --keep-alive 0: a connection per request, so the next one goes to whichever worker is free
# to accept it. A kept-alive connection stays with the worker that accepted it, and the two
# race for accepts: after a slow page one worker often held all 20 of wrk's connections and
# the other idled, and the status poll at 500 requests/s got 400-485 of them at p95 55-63 ms;
# with a connection per request, 500 at p95 15-33 ms (bench/run --dashboard). Traefik, the
# one way in, would keep its connections to gunicorn the same way. What it costs: about 5%
# of the poll's top rate (700-750 requests/s as fast as they go, 664-695 without).
exec_web() {
    cd "$SLIPWAY_ROOT"
    exec .venv/bin/gunicorn paas.wsgi --bind "$1" --workers 2 --threads 4 --preload \
        --keep-alive 0 --access-logfile -
}

# exec_worker [SCHEDULE_FILE]: the Celery worker (builds, starts, the warden's rounds, every
# other task). With a schedule file it also runs beat, which sends the periodic tasks
# (CELERY_BEAT_SCHEDULE), in a thread of its main process (paas/celery.py's BeatThread):
# one process fewer, and a killed worker leaves no beat behind. One installation runs
# exactly one worker with it (scripts/run): two beats would send every task twice.
# No system checks: scripts/run's migrate has run them, and Celery's would import the whole
# URL conf (the API's schemas, the admin) into a process that serves no request: the
# worker with its pool idled in 176 MiB (PSS) with them, 153 without (bench/run --memory).
exec_worker() {
    cd "$SLIPWAY_ROOT"
    local beat=()
    [ -n "${1:-}" ] && beat=(--beat-thread "$1")
    CELERY_SKIP_CHECKS=1 exec .venv/bin/celery -A paas worker -l info "${beat[@]}"
}

# exec_collector: the log collector, which stores what every app container prints.
exec_collector() {
    cd "$SLIPWAY_ROOT"
    exec .venv/bin/python manage.py paas_collect_logs
}
