"""Settings for bench/dashboard_bench.py's gunicorn: production's, plus the benchmark's
baseline URL (bench/dashboard_urls.py). Nothing else differs, so the baseline goes through
the same middleware, session and database as the pages it is compared with."""

from paas.settings import *  # noqa: F403

ROOT_URLCONF = "bench.dashboard_urls"
