"""The dashboard as production serves it: gunicorn started as scripts/run starts it (2
workers of 4 threads, no keep-alive, DEBUG off, an access log), a signed-in user who owns
a handful of apps with a few deployments each, and:

1. wrk (2 threads, 20 connections, 15 s each) on the status strip's poll (the 204 answer
   an open app page gets every 3 s while nothing changed), the apps list and an app page,
   beside /bench-ok, a view that returns "ok" from the same gunicorn and middleware (same
   session cookie, so the baseline pays the same sign-in lookups and no view work); the
   poll as fast as it goes and again at 500 requests/s (its target: p95 < 50 ms at that
   rate), each the median of three runs; a short unmeasured wrk before each;
2. 100 browsers with an app page open for 60 s, each with its own session, polling what
   the page polls (the status strip every 3 s, the runtime log's tail every 2 s), beside
   the same 100 clients polling /bench-ok on the same schedule.

Rows are made through the models (no Docker: no container runs). The SQL queries each
request makes are counted too (Django's test client, the same middleware). Run with
`bench/run --dashboard` (its own database and Redis db); `--quick` runs each part for a few
seconds, to check the bench itself; `--queries` only counts the queries (`--sql` prints
them). bench/hundred_apps.py imports measure() and dashboard() to re-check the pages with
100 real apps.
"""

import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import import_module
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas.settings")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib import auth  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.models import App, AppStatus, Environment, EnvironmentName  # noqa: E402
from bench import summary  # noqa: E402
from deployments.models import Deployment, LogLine, RuntimeLogLine, Status, Trigger  # noqa: E402

BENCH_USER = "dashbench"
APPS = 5
DEPLOYMENTS_PER_ENVIRONMENT = 3
LOG_LINES = 80  # a short build's deployment log
RUNTIME_LINES = 150

PORT = 8098
WRK_THREADS, WRK_CONNECTIONS, WRK_SECONDS, WARM_UP_SECONDS = 2, 20, 15, 2
BROWSERS, BROWSE_SECONDS = 100, 60
POLL_RUNS = 3  # the status poll's two figures: the median of so many wrk runs
# What an open app page polls (templates/apps/app_detail.html and _runtime_poller.html).
STATUS_EVERY, RUNTIME_EVERY = 3.0, 2.0

STATUS_RPS_TARGET, STATUS_P95_TARGET = 500, 50
LIST_RPS_BEFORE = 156  # the figure: the list must not get slower
BROWSERS_P95_TARGET = 100
NO_TARGET = "none (reported)"

# wrk's own summary prints p50/75/90/99 only; this prints its histogram's p95 too.
WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d,'
    .. ' "errors": %d, "non_2xx_3xx": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"""

# At a rate, not as fast as it goes: each wrk thread gives its requests send times
# 1000 * WRK_THREADS / rate ms apart (its first at a random point of one gap, so the two
# threads do not send in step). A request whose time has passed goes at once, never more
# than a second's worth of them, so the achieved rate says whether the server kept up, and
# the latencies are those of requests arriving at that rate (wrk times each from its send).
WRK_AT_A_RATE = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } bench_timeval;
int gettimeofday(bench_timeval *tv, void *tz);
]]
local tv = ffi.new("bench_timeval")
local function now_ms()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000
end
local gap, next_at
init = function(args) gap = tonumber(args[1]) end
delay = function()
  local now = now_ms()
  if next_at == nil then next_at = now + math.random() * gap end
  next_at = math.max(next_at, now - 1000)
  local wait = next_at - now
  next_at = next_at + gap
  return math.max(0, math.floor(wait + 0.5))
end
"""


# --- gunicorn, as scripts/run starts it -----------------------------------------------------


@dataclass
class Dashboard:
    process: subprocess.Popen
    url: str
    log: Path


def free_port(preferred: int = PORT) -> int:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# scripts/run's own command line: lib.sh's exec_web where it has one, else the line
# scripts/run has always had (the same workers, threads and access log).
WEB_COMMAND = """
set -euo pipefail
source scripts/lib.sh
if declare -F exec_web >/dev/null; then exec_web "$1"; fi
exec .venv/bin/gunicorn paas.wsgi --bind "$1" --workers 2 --threads 4 --access-logfile -
"""


def start_dashboard(port: int | None = None) -> Dashboard:
    """The dashboard's gunicorn as scripts/run starts it, on a loopback port, with the
    bench's URL conf (for /bench-ok); its access log goes to a file, as scripts/run's goes
    to its terminal."""
    port = port or free_port()
    log = Path(tempfile.mkstemp(prefix="dashboard-bench-", suffix=".log")[1])
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.dashboard_settings", "DEBUG": "false"}
    argv = ["bash", "-c", WEB_COMMAND, "exec_web", f"127.0.0.1:{port}"]
    with log.open("w") as out:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    dashboard = Dashboard(process, f"http://127.0.0.1:{port}", log)
    _wait_until_up(dashboard)
    return dashboard


def _wait_until_up(dashboard: Dashboard, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dashboard.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {dashboard.log.read_text()[-2000:]}")
        try:
            if requests.get(dashboard.url + "/bench-ok", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    stop_dashboard(dashboard)
    raise RuntimeError("gunicorn did not answer within a minute")


def stop_dashboard(dashboard: Dashboard) -> None:
    """TERM to the master (its workers finish their requests); KILL to the whole group if
    it has not gone in 30 s."""
    if dashboard.process.poll() is None:
        dashboard.process.terminate()
        try:
            dashboard.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(dashboard.process.pid, 9)
            dashboard.process.wait()
    dashboard.log.unlink(missing_ok=True)


@contextmanager
def dashboard(port: int | None = None):
    server = start_dashboard(port)
    try:
        yield server
    finally:
        stop_dashboard(server)


# --- a signed-in user with a handful of apps ---------------------------------------------------


def session_cookie(user) -> dict[str, str]:
    """A session as signing in leaves it (a row per call: each browser has its own)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[auth.SESSION_KEY] = str(user.pk)
    store[auth.BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    store[auth.HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return {settings.SESSION_COOKIE_NAME: store.session_key}


def end_sessions(cookie_jars: list[dict[str, str]]) -> None:
    """Sign the benchmark's sessions out again (their rows would stay until they expire)."""
    engine = import_module(settings.SESSION_ENGINE)
    for cookies in cookie_jars:
        engine.SessionStore(cookies[settings.SESSION_COOKIE_NAME]).delete()


def make_user_with_apps():
    """BENCH_USER and APPS apps, each with production and staging, a few finished
    deployments in each, the newest live, its deployment log and runtime output stored."""
    remove_user()
    user = auth.get_user_model().objects.create_user(BENCH_USER, f"{BENCH_USER}@example.com")
    for n in range(APPS):
        app = App.objects.create(
            name=f"dashbench-{n}", owner=user, repository=f"https://example.com/acme/shop-{n}.git"
        )
        Environment.create_for(app, EnvironmentName.STAGING)
        for env in app.environments.all():
            _deploy_history(app, env)
        App.objects.filter(pk=app.pk).update(status=AppStatus.RUNNING)
    return user


def remove_user() -> None:
    App.objects.filter(owner__username=BENCH_USER).delete()
    auth.get_user_model().objects.filter(username=BENCH_USER).delete()


def _deploy_history(app: App, env: Environment) -> None:
    now = timezone.now()
    for i in range(DEPLOYMENTS_PER_ENVIRONMENT):
        newest = i == DEPLOYMENTS_PER_ENVIRONMENT - 1
        started = now - timedelta(hours=DEPLOYMENTS_PER_ENVIRONMENT - i)
        d = app.new_deployment(
            env,
            trigger=Trigger.GIT,
            commit_sha=f"{app.pk:08x}{env.pk:08x}{i:024x}",
            commit_message=f"Change {i} to the shop",
            branch="main",
            status=Status.SUCCEEDED if newest else Status.SUPERSEDED,
            started_at=started,
            finished_at=started + timedelta(seconds=42),
            image_id=f"sha256:{i:064x}",
            step="route",
            step_data={"processes": {"web": "", "worker": "python worker.py"}},
        )
    LogLine.objects.bulk_create(
        LogLine(deployment=d, text=f"Step {n}: building the shop") for n in range(LOG_LINES)
    )
    Environment.objects.filter(pk=env.pk).update(live_deployment=d)
    _runtime_output(app, env, d)


def _runtime_output(app: App, env: Environment, d: Deployment) -> None:
    start_ns = time.time_ns() - RUNTIME_LINES * 10**9
    RuntimeLogLine.objects.bulk_create(
        RuntimeLogLine(
            app=app,
            environment=env,
            deployment=d.number,
            process="web",
            container=f"{app.name}-{env.name}-web-1",
            ns=start_ns + n * 10**9,
            text=f'127.0.0.1 - "GET /products/{n} HTTP/1.1" 200',
        )
        for n in range(RUNTIME_LINES)
    )


# --- wrk ------------------------------------------------------------------------------------


def wrk(url: str, headers: dict[str, str], seconds: int, rate: int | None = None) -> dict:
    """requests/s, p50/p95/p99 in ms and failures of WRK_CONNECTIONS connections, as fast
    as they go or, given a rate, at that many requests/s between them (WRK_AT_A_RATE)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_REPORT + (WRK_AT_A_RATE if rate else ""))
        script.flush()
        argv = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s"]
        argv += ["--timeout", "5s", "-s", script.name]
        for name, value in headers.items():
            argv += ["-H", f"{name}: {value}"]
        argv.append(url)
        if rate:
            argv += ["--", f"{1000 * WRK_THREADS / rate:.3f}"]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    raw = json.loads(line.removeprefix("BENCH "))
    return {
        "requests_per_s": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "requests": raw["requests"],
        "failed": raw["errors"] + raw["non_2xx_3xx"],
    }


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def _htmx_headers(page_url: str, target: str) -> dict[str, str]:
    """What htmx sends with a poll from an element with this id."""
    return {"HX-Request": "true", "HX-Current-URL": page_url, "HX-Target": target}


def status_poll_path(server_url: str, app_path: str, cookies: dict[str, str]) -> str:
    """The strip's poll as the open page sends it: ?seen=&fp= from its hidden inputs."""
    page = _get(server_url + app_path, cookies, expect=200).text
    seen = re.search(r'name="seen" value="(\d+)"', page).group(1)
    fp = re.search(r'name="fp" value="([0-9a-f]+)"', page).group(1)
    return f"{app_path}status/?seen={seen}&fp={fp}"


def _get(url: str, cookies: dict[str, str], expect: int, headers=None) -> requests.Response:
    """One request that must answer `expect`: a broken session would measure the sign-in
    redirect instead of the page."""
    response = requests.get(
        url, cookies=cookies, headers=headers, allow_redirects=False, timeout=30
    )
    if response.status_code != expect:
        raise RuntimeError(f"GET {url}: {response.status_code}, expected {expect}")
    return response


def _pages(server_url: str, app: App, cookies: dict[str, str]) -> list[tuple[str, str, dict]]:
    """(name, path, headers) of what is measured, each checked to answer as it should. The
    CSRF cookie the first page sets is sent back after, as a browser does."""
    app_path = f"/apps/{app.name}/"
    home = _get(server_url + "/", cookies, 200)
    if f'id="app-link-{app.name}"' not in home.text:
        raise RuntimeError("the apps list does not show the user's app")
    cookies = {**cookies, **home.cookies.get_dict()}
    poll = status_poll_path(server_url, app_path, cookies)
    htmx = _htmx_headers(server_url + app_path, "app-status")
    _get(server_url + poll, cookies, 204, htmx)
    signed_in = {"Cookie": _cookie_header(cookies)}
    return [
        ("Status strip poll (204)", poll, {**signed_in, **htmx}),
        ("Apps list page", "/", signed_in),
        ("App page", app_path, signed_in),
    ]


def measure(user, server: Dashboard | None = None, seconds: int = WRK_SECONDS) -> list[dict]:
    """wrk on the status poll, the apps list and the first of `user`'s apps' page, with
    the user's apps as they are, then on the poll at STATUS_RPS_TARGET requests/s:
    [{"page", "path", "requests_per_s", "p95_ms", …}]. Starts its own gunicorn unless given
    one (see dashboard())."""
    if server is None:
        with dashboard() as started:
            return measure(user, started, seconds)
    app = App.objects.visible_to(user).order_by("name").first()
    cookies = session_cookie(user)
    try:
        pages = _pages(server.url, app, cookies)
        rows = []
        for index, (name, path, headers) in enumerate(pages):
            warm_up(server.url + path, headers)
            runs = POLL_RUNS if index == 0 else 1
            measured = median_of(runs, "requests_per_s", server.url + path, headers, seconds)
            rows.append({"page": name, "path": path, **measured})
        name, path, headers = pages[0]
        warm_up(server.url + path, headers)  # and the app page's last requests done
        at_rate = median_of(
            POLL_RUNS, "p95_ms", server.url + path, headers, seconds, rate=STATUS_RPS_TARGET
        )
        at_rate["offered_per_s"] = STATUS_RPS_TARGET
        at_rate["met"] = kept_the_rate(at_rate) and at_rate["p95_ms"] < STATUS_P95_TARGET
        rows.append({"page": f"{name} at {STATUS_RPS_TARGET} req/s", "path": path, **at_rate})
        return rows
    finally:
        end_sessions([cookies])


def median_of(runs: int, by: str, url: str, headers: dict[str, str], seconds: int, rate=None):
    """wrk `runs` times in a row, and the run that is the median by `by`, with every run's
    req/s and p95 beside it ("runs"): this VM's CPU comes and goes (a kernel worker took
    half a core for seconds at a time while the poll was measured), and one 15 s run of
    the poll gave anything from 395 to 720 req/s on the same code."""
    measured = sorted((wrk(url, headers, seconds, rate) for _ in range(runs)), key=lambda r: r[by])
    middle = dict(measured[len(measured) // 2])
    middle["runs"] = [(r["requests_per_s"], r["p95_ms"]) for r in measured]
    return middle


def warm_up(url: str, headers: dict[str, str]) -> None:
    """A short wrk first, unmeasured: a fresh gunicorn's threads open their database and
    Redis connections and import what the page needs on their first requests, which put
    seconds-long stalls in the p99 of whatever was measured first."""
    wrk(url, headers, WARM_UP_SECONDS)


def measure_baseline(user, server: Dashboard, seconds: int = WRK_SECONDS) -> dict:
    """wrk on /bench-ok with the same signed-in cookie: the floor every page stands on, as
    fast as it goes and ("at_rate") at STATUS_RPS_TARGET requests/s, as the poll is run."""
    cookies = session_cookie(user)
    try:
        url, headers = server.url + "/bench-ok", {"Cookie": _cookie_header(cookies)}
        warm_up(url, headers)
        ok = {"page": "Baseline /bench-ok", **wrk(url, headers, seconds)}
        ok["at_rate"] = {
            "page": f"Baseline /bench-ok at {STATUS_RPS_TARGET} req/s",
            **wrk(url, headers, seconds, rate=STATUS_RPS_TARGET),
        }
        return ok
    finally:
        end_sessions([cookies])


# --- queries per request (to find why a target is missed) --------------------------------------


def count_queries(user) -> list[tuple[str, int]]:
    """SQL statements per request for what is measured, through Django's test client (the
    middleware included), for the first of the user's apps."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    app = App.objects.visible_to(user).order_by("name").first()
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    app_path = f"/apps/{app.name}/"
    page = client.get(app_path).content.decode()
    seen = re.search(r'name="seen" value="(\d+)"', page).group(1)
    fp = re.search(r'name="fp" value="([0-9a-f]+)"', page).group(1)
    runtime = client.get(f"{app_path}runtime/production/").content.decode()
    since = re.search(r"\?since=(\d+)", runtime).group(1)
    htmx = {"HTTP_HX_REQUEST": "true"}
    requests_ = [
        ("status poll (204)", f"{app_path}status/?seen={seen}&fp={fp}", htmx),
        ("status strip (200)", f"{app_path}status/", htmx),
        ("runtime tail", f"{app_path}runtime/production/?since={since}", htmx),
        ("apps list page", "/", {}),
        ("app page", app_path, {}),
    ]
    counts = []
    for name, path, extra in requests_:
        with CaptureQueriesContext(connection) as queries:
            client.get(path, **extra)
        counts.append((name, len(queries)))
        if "--sql" in sys.argv:
            print(f"## {name}", *(q["sql"][:300] for q in queries.captured_queries), sep="\n")
    client.logout()
    return counts


# --- 100 browsers with an app page open -------------------------------------------------------


@dataclass
class Poll:
    name: str
    every: float
    path: str
    headers: dict[str, str]
    expect: tuple[int, ...]
    next_path: object = None  # response -> the path of the next poll (the runtime cursor)


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    resent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, ms: float, error: str | None) -> None:
        with self.lock:
            self.latencies_ms.append(ms)
            if error:
                self.errors.append(error)

    def resend(self) -> None:
        with self.lock:
            self.resent += 1


def _open_app_page(server_url: str, app: App, session: requests.Session) -> list[Poll]:
    """Load the page and its runtime log section, as the browser does, and return what it
    then polls: the strip with its seen/fp, the runtime tail with its cursor."""
    app_path = f"/apps/{app.name}/"
    page_url = server_url + app_path
    poll = status_poll_path(server_url, app_path, session.cookies.get_dict())
    runtime_path = f"{app_path}runtime/production/"
    section = session.get(server_url + runtime_path, headers=_htmx_headers(page_url, "runtime"))
    tail = _next_runtime_path(section, runtime_path)
    return [
        Poll("status", STATUS_EVERY, poll, _htmx_headers(page_url, "app-status"), (200, 204)),
        Poll(
            "runtime",
            RUNTIME_EVERY,
            tail,
            _htmx_headers(page_url, f"rt-poller-{EnvironmentName.PRODUCTION}"),
            (200,),
            next_path=lambda r, p=runtime_path: _next_runtime_path(r, p),
        ),
    ]


def _next_runtime_path(response: requests.Response, runtime_path: str) -> str | None:
    """The tail's next URL, from the poller the answer carries (its cursor moves on)."""
    found = re.search(r"\?since=(\d+)", response.text)
    return f"{runtime_path}?since={found.group(1)}" if found else None


def _baseline_polls() -> list[Poll]:
    return [
        Poll("status", STATUS_EVERY, "/bench-ok", _htmx_headers("", "app-status"), (200,)),
        Poll("runtime", RUNTIME_EVERY, "/bench-ok", _htmx_headers("", "rt-poller"), (200,)),
    ]


def _browser(server_url, app, cookies, baseline, seconds, tally, barrier) -> None:
    """One open tab: once every tab is open, each poll on its own interval from a random
    phase (tabs were not opened at the same instant), through one requests.Session (a new
    connection for each poll: scripts/run's gunicorn keeps none alive, see exec_web)."""
    session = requests.Session()
    session.cookies.update(cookies)
    try:
        polls = _baseline_polls() if baseline else _open_app_page(server_url, app, session)
    except Exception:
        barrier.abort()  # the others would wait for this tab for ever
        raise
    barrier.wait()
    start = time.monotonic()
    due = {p.name: start + random.uniform(0, p.every) for p in polls}
    while True:
        poll = min(polls, key=lambda p: due[p.name])
        if due[poll.name] - start > seconds:
            return
        time.sleep(max(0.0, due[poll.name] - time.monotonic()))
        _poll_once(session, server_url, poll, tally)
        due[poll.name] += poll.every


def _poll_once(session: requests.Session, server_url: str, poll: Poll, tally: Tally) -> None:
    began = time.perf_counter()
    error = None
    try:
        response = _send(session, server_url + poll.path, poll.headers, tally)
        if response.status_code not in poll.expect:
            error = f"{poll.name}: HTTP {response.status_code}"
        elif poll.next_path:
            poll.path = poll.next_path(response) or poll.path
    except requests.RequestException as exc:
        error = f"{poll.name}: {type(exc).__name__}"
    tally.add((time.perf_counter() - began) * 1000, error)


def _send(session: requests.Session, url: str, headers, tally: Tally) -> requests.Response:
    """A GET, sent once more when the connection it went out on was closed under it, as a
    browser does (a gunicorn that keeps connections alive closes one idle for 2 s, the
    runtime tail's interval). Counted apart; a second failure is an error."""
    try:
        return session.get(url, headers=headers, timeout=10)
    except requests.ConnectionError:
        tally.resend()
        return session.get(url, headers=headers, timeout=10)


def browsers(server: Dashboard, user, app: App, seconds: int, baseline: bool = False) -> dict:
    """BROWSERS tabs on `app`'s page for `seconds`, each with its own session; baseline:
    the same clients polling /bench-ok on the same schedule instead."""
    tally = Tally()
    barrier = threading.Barrier(BROWSERS)
    sessions = [session_cookie(user) for _ in range(BROWSERS)]
    threads = [
        threading.Thread(
            target=_browser,
            args=(server.url, app, cookies, baseline, seconds, tally, barrier),
            daemon=True,
        )
        for cookies in sessions
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    end_sessions(sessions)
    if barrier.broken:
        raise RuntimeError("a browser could not open the app page")
    return _percentiles(tally)


def _percentiles(tally: Tally) -> dict:
    ordered = sorted(tally.latencies_ms)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "requests": len(ordered),
        "p50_ms": cuts[49],
        "p95_ms": cuts[94],
        "p99_ms": cuts[98],
        "errors": len(tally.errors),
        "resent": tally.resent,
        "error_kinds": sorted(set(tally.errors)),
    }


# --- the report -----------------------------------------------------------------------------


def _row(figure, value, unit, baseline, target, met) -> dict:
    ratio = value / baseline if baseline else None
    return {
        "figure": figure,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "target": target,
        "met": met,
        "ratio": ratio,
    }


def kept_the_rate(row: dict) -> bool:
    """A run at STATUS_RPS_TARGET got (nearly) all its requests answered, all of them well:
    its p95 is the latency at that rate, not at a lower one the server fell back to."""
    return row["requests_per_s"] >= 0.98 * STATUS_RPS_TARGET and not row["failed"]


def headline_rows(pages: list[dict], ok: dict, tabs: dict, tabs_ok: dict) -> list[dict]:
    status, listing, app_page, at_rate = pages
    return [
        _row(
            "Status strip poll, req/s (as fast as it goes)",
            status["requests_per_s"],
            "req/s",
            ok["requests_per_s"],
            f"≥ {STATUS_RPS_TARGET} req/s",
            status["requests_per_s"] >= STATUS_RPS_TARGET,
        ),
        _row(
            "Status strip poll as fast as it goes, p95",
            status["p95_ms"],
            "ms",
            ok["p95_ms"],
            NO_TARGET,
            True,
        ),
        _row(
            f"Status strip poll at {STATUS_RPS_TARGET} req/s, p95",
            at_rate["p95_ms"],
            "ms",
            ok["at_rate"]["p95_ms"],
            f"< {STATUS_P95_TARGET} ms at {STATUS_RPS_TARGET} req/s",
            at_rate["met"],
        ),
        _row(
            "Apps list page, req/s",
            listing["requests_per_s"],
            "req/s",
            ok["requests_per_s"],
            f"≥ {LIST_RPS_BEFORE} req/s (before)",
            listing["requests_per_s"] >= LIST_RPS_BEFORE,
        ),
        _row(
            "App page, req/s",
            app_page["requests_per_s"],
            "req/s",
            ok["requests_per_s"],
            NO_TARGET,
            True,
        ),
        _row(
            f"{BROWSERS} browsers polling an app page, p95",
            tabs["p95_ms"],
            "ms",
            tabs_ok["p95_ms"],
            f"< {BROWSERS_P95_TARGET} ms",
            tabs["p95_ms"] < BROWSERS_P95_TARGET and not tabs["errors"],
        ),
        _row(
            f"{BROWSERS} browsers polling an app page, p99",
            tabs["p99_ms"],
            "ms",
            tabs_ok["p99_ms"],
            NO_TARGET,
            True,
        ),
    ]


def print_report(pages: list[dict], ok: dict, tabs: dict, tabs_ok: dict, rows: list[dict]):
    print(f"Machine: {summary.machine()}")
    print(
        f"gunicorn paas.wsgi --workers 2 --threads 4 (gthread) --keep-alive 0, DEBUG=false;"
        f" wrk -t{WRK_THREADS}"
        f" -c{WRK_CONNECTIONS}; {APPS} apps × 2 environments × {DEPLOYMENTS_PER_ENVIRONMENT}"
        " deployments"
    )
    print()
    print("| Request | req/s | p50 (ms) | p95 (ms) | p99 (ms) | Requests | Failed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in [*pages, ok, ok["at_rate"]]:
        print(
            f"| {r['page']} | {r['requests_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f}"
            f" | {r['p99_ms']:.1f} | {r['requests']:,} | {r['failed']} |"
        )
    for r in pages:
        if len(r.get("runs", ())) > 1:
            each = ", ".join(f"{rate:.0f} req/s p95 {p95:.1f} ms" for rate, p95 in r["runs"])
            print(f"\n{r['page']}, each of {len(r['runs'])} runs: {each}")
    print()
    print(f"| {BROWSERS} browsers | Polls | p50 (ms) | p95 (ms) | p99 (ms) | Errors | Resent |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, t in (("App page (status 3 s, runtime tail 2 s)", tabs), ("/bench-ok", tabs_ok)):
        print(
            f"| {name} | {t['requests']:,} | {t['p50_ms']:.1f} | {t['p95_ms']:.1f}"
            f" | {t['p99_ms']:.1f} | {t['errors']} | {t['resent']} |"
        )
    if tabs["error_kinds"]:
        print(f"\nErrors: {', '.join(tabs['error_kinds'])}")
    print()
    print("| Figure | Slipway | Baseline (/bench-ok) | Ratio | Target | Met |")
    print("|---|---:|---:|---:|---|---|")
    for row in rows:
        ratio = f"{row['ratio']:.2f}×" if row["ratio"] else "–"
        print(
            f"| {row['figure']} | {row['value']:.1f} {row['unit']} | {row['baseline']:.1f}"
            f" {row['unit']} | {ratio} | {row['target']} | {_met(row)} |"
        )


def _met(row: dict) -> str:
    if row["target"] == NO_TARGET:
        return "–"
    return "yes" if row["met"] else "**no**"


def record(rows: list[dict]) -> None:
    for row in rows:
        summary.record(
            f"Dashboard: {row['figure']}",
            round(row["value"], 1),
            row["unit"],
            row["target"],
            row["met"],
            baseline=round(row["baseline"], 1),
            baseline_name="/bench-ok, same gunicorn",
        )


def print_queries(counts: list[tuple[str, int]]) -> None:
    print("| Request | SQL queries |\n|---|---:|")
    for name, count in counts:
        print(f"| {name} | {count} |")
    print()


def main() -> None:
    quick = "--quick" in sys.argv
    wrk_seconds, browse_seconds = (3, 10) if quick else (WRK_SECONDS, BROWSE_SECONDS)
    user = make_user_with_apps()
    try:
        counts = count_queries(user)
        if "--queries" in sys.argv:
            print_queries(counts)
            return
        with dashboard() as server:
            ok = measure_baseline(user, server, wrk_seconds)
            pages = measure(user, server, wrk_seconds)
            app = App.objects.visible_to(user).order_by("name").first()
            tabs = browsers(server, user, app, browse_seconds)
            tabs_ok = browsers(server, user, app, browse_seconds, baseline=True)
    finally:
        remove_user()
    rows = headline_rows(pages, ok, tabs, tabs_ok)
    print_report(pages, ok, tabs, tabs_ok, rows)
    print_queries(counts)
    record(rows)


if __name__ == "__main__":
    main()
