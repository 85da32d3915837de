"""Slipway settings: everything an operator changes comes from the environment (12-factor)."""

import base64
import hashlib
import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from paas.env import env_bool, env_choice, env_float, env_int, env_list, env_map, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PAAS_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set (or DEBUG=true for a throwaway key)")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

PAAS_DOMAIN = env_str("PAAS_DOMAIN", "localhost").lower()
# Where Git providers reach this Slipway (webhooks), e.g. https://paas.example.com. Empty:
# no webhook is registered automatically; the app page shows the URL and secret to paste.
PAAS_PUBLIC_URL = env_str("PAAS_PUBLIC_URL").rstrip("/")
# The dashboard's host name at the router: PAAS_PUBLIC_URL's, or else PAAS_DOMAIN itself.
PAAS_PUBLIC_HOST = env_str("PAAS_PUBLIC_HOST", urlsplit(PAAS_PUBLIC_URL).hostname or PAAS_DOMAIN)
# Custom domains: how many an app may claim, and where the ownership check's fetch goes
# (empty: the domain itself, through its DNS; "127.0.0.1:<port>" sends it to the local
# router with the domain as Host, which is what the tests do).
PAAS_MAX_DOMAINS_PER_APP = env_int("PAAS_MAX_DOMAINS_PER_APP", 20)
PAAS_DOMAIN_CHECK_ADDRESS = env_str("PAAS_DOMAIN_CHECK_ADDRESS")
PAAS_DOMAIN_CHECK_TIMEOUT = env_float("PAAS_DOMAIN_CHECK_TIMEOUT", 5.0)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [PAAS_PUBLIC_HOST, "localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.mfa",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.gitlab",
    "allauth.socialaccount.providers.gitea",
    "apps.apps.AppsConfig",
    "deployments.apps.DeploymentsConfig",
]

MIDDLEWARE = [
    # First: a body over PAAS_MAX_REQUEST_BYTES is refused before anything reads it.
    "paas.middleware.request_size_limit",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # After authentication: the audit log reads the request's user when it records.
    "paas.middleware.audit_actor",
    # After authentication: one who must use two-factor sign-in and has none sets it up first.
    "apps.two_factor.mfa_required",
]

ROOT_URLCONF = "paas.urls"
WSGI_APPLICATION = "paas.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database_config() -> dict:
    url = env_str("DATABASE_URL")
    if url:
        return dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    # No DATABASE_URL: an embedded SQLite file shared by web, worker and beat processes.
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN
    # so two processes never deadlock upgrading a read lock.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "slipway.sqlite3",
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


DATABASES = {"default": _database_config()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("PAAS_MANIFEST_STATIC", not DEBUG)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Accounts (django-allauth). Sign-up is closed by default: an operator invites people
# through the admin; PAAS_OPEN_SIGNUP=true opens it.
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_GET = False
PAAS_OPEN_SIGNUP = env_bool("PAAS_OPEN_SIGNUP", False)
ACCOUNT_ADAPTER = "apps.accounts.AccountAdapter"
# Sign-in limits (allauth's own). They count in the shared cache (Redis, below), so every
# gunicorn worker and thread sees the same count; Django's admin login is sent to allauth's
# (paas/urls.py), so it is limited too. After PAAS_LOGIN_ATTEMPTS failures for one account
# within PAAS_LOGIN_ATTEMPTS_WINDOW seconds, even the right password is refused until the
# window passes; one address may fail PAAS_LOGIN_FAILURES_PER_IP times a minute.
PAAS_LOGIN_ATTEMPTS = env_int("PAAS_LOGIN_ATTEMPTS", 5)
PAAS_LOGIN_ATTEMPTS_WINDOW = env_int("PAAS_LOGIN_ATTEMPTS_WINDOW", 300)
PAAS_LOGIN_FAILURES_PER_IP = env_int("PAAS_LOGIN_FAILURES_PER_IP", 10)
ACCOUNT_RATE_LIMITS = {
    "login_failed": (
        f"{PAAS_LOGIN_FAILURES_PER_IP}/m/ip,{PAAS_LOGIN_ATTEMPTS}/{PAAS_LOGIN_ATTEMPTS_WINDOW}s/key"
    ),
}
# The router (Traefik) replaces any client's X-Forwarded-For with the address it saw: that
# one entry is the client's, and gunicorn listens on loopback only, so nobody else sets it.
ALLAUTH_TRUSTED_PROXY_COUNT = 1

# Security headers that cost nothing behind a TLS-terminating proxy.
SESSION_COOKIE_HTTPONLY = True
# The session table with the cache (Redis) in front: one query fewer per signed-in request.
SESSION_ENGINE = "paas.sessions"
SESSION_COOKIE_SECURE = env_bool("PAAS_SECURE_COOKIES", not DEBUG and PAAS_DOMAIN != "localhost")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env_bool("PAAS_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("PAAS_HSTS_SECONDS", 0)
# Off by default: apps live on subdomains, and HSTS for all of them (or a preload entry)
# is the operator's decision, not the platform's.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("PAAS_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("PAAS_HSTS_PRELOAD", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


# Encryption at rest for env values, tokens and secrets. A comma-separated list: the first
# key encrypts, all keys decrypt (rotation). Without one, a key is derived from SECRET_KEY.
def _fernet_keys() -> list[str]:
    keys = env_list("PAAS_ENCRYPTION_KEY", [])
    if keys:
        return keys
    digest = hashlib.sha256(("slipway-encryption:" + SECRET_KEY).encode()).digest()
    return [base64.urlsafe_b64encode(digest).decode()]


PAAS_ENCRYPTION_KEYS = _fernet_keys()

# Celery: Redis is the broker, PostgreSQL the truth. Tasks are acknowledged after they
# finish, so a killed worker's task is delivered again (and claimed, not re-run).
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("PAAS_BUILD_TIMEOUT", 1800)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 120
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 600}
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
# Beat sends each entry by name, without the task modules (paas.celery:beat_app, to keep it
# small): a task's own `expires` does not reach beat's messages, so an entry that needs one
# carries it in its options, as the task declares it.
CELERY_BEAT_SCHEDULE = {
    "warden": {
        "task": "deployments.tasks.run_warden",
        "schedule": env_int("PAAS_WARDEN_SECONDS", 5),
        "options": {"expires": 30},
    },
}

# Docker, Caddy and the pipeline.
# One name for everything this installation makes in Docker and Caddy (containers, networks,
# images, the Caddy server and route ids), so two installations — or the test suite beside a
# running platform — never touch each other's.
PAAS_INSTANCE = env_str("PAAS_INSTANCE", "slipway")
# The cache is shared by every process (sign-in limits must count across gunicorn workers),
# so it is Redis too, under this installation's prefix (the tests' sits beside a platform's).
CACHES = {
    "default": {
        "BACKEND": "paas.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{PAAS_INSTANCE}-cache",
    }
}
PAAS_DOCKER_HOST = env_str("DOCKER_HOST", "unix:///var/run/docker.sock")
PAAS_PROXY_HTTP_PORT = env_int("PAAS_PROXY_HTTP_PORT", 80)
PAAS_PROXY_HTTPS_PORT = env_int("PAAS_PROXY_HTTPS_PORT", 443)


def _is_public_name(domain: str) -> bool:
    """A name a public CA can certify: not localhost, not *.localhost, not an IP address."""
    if domain == "localhost" or domain.endswith(".localhost"):
        return False
    try:
        ipaddress.ip_address(domain.strip("[]"))
    except ValueError:
        return True
    return False


# Traefik, the router (deployments/adapters/router/traefik.py). `manage.py paas_router_config`
# writes its static configuration from these; every installation runs its own Traefik, with
# its own dynamic directory (one file per route) and API port.
PAAS_TLS = env_bool("PAAS_TLS", _is_public_name(PAAS_DOMAIN))
PAAS_ACME_EMAIL = env_str("PAAS_ACME_EMAIL")
# Traefik's listening ports: PAAS_PROXY_*_PORT unless given apart.
PAAS_ROUTER_HTTP_PORT = env_int("PAAS_ROUTER_HTTP_PORT", PAAS_PROXY_HTTP_PORT)
PAAS_ROUTER_HTTPS_PORT = env_int("PAAS_ROUTER_HTTPS_PORT", PAAS_PROXY_HTTPS_PORT)
PAAS_ROUTER_API_PORT = env_int("PAAS_ROUTER_API_PORT", 8089)
# Traefik's API and ping: loopback only (the API is unauthenticated).
PAAS_ROUTER_API_URL = env_str(
    "PAAS_ROUTER_API_URL", f"http://127.0.0.1:{PAAS_ROUTER_API_PORT}"
).rstrip("/")
PAAS_ROUTER_DYNAMIC_DIR = Path(
    env_str("PAAS_ROUTER_DYNAMIC_DIR", str(VAR_DIR / "traefik" / PAAS_INSTANCE / "dynamic"))
)
# How long Traefik waits for more changes before it applies a new configuration.
PAAS_ROUTER_THROTTLE = env_str("PAAS_ROUTER_THROTTLE", "50ms")
# Where a route with a page (a stopped app, maintenance) is sent: the dashboard's gunicorn,
# which answers /_slipway/page/<route_id>/ with 503 and the text.
# The dashboard: gunicorn on loopback, reached only through the router under PAAS_PUBLIC_HOST.
PAAS_DASHBOARD_UPSTREAM = env_str("PAAS_DASHBOARD_UPSTREAM", "127.0.0.1:8000")
PAAS_ROUTER_PAGES_UPSTREAM = env_str("PAAS_ROUTER_PAGES_UPSTREAM", PAAS_DASHBOARD_UPSTREAM)
PAAS_ROUTER_ACCESS_LOG = env_bool("PAAS_ROUTER_ACCESS_LOG", False)
# Each app network's subnet comes from this pool, cut into /PAAS_NETWORK_PREFIX pieces.
PAAS_NETWORK_POOL = env_str("PAAS_NETWORK_POOL", "10.213.0.0/16")
PAAS_NETWORK_PREFIX = env_int("PAAS_NETWORK_PREFIX", 24)


def _egress_allow(entries: list[str]) -> list[str]:
    """Addresses and CIDRs, normalised (`10.1.2.3` is `10.1.2.3/32`); a malformed one stops
    the start."""
    networks = []
    for entry in entries:
        try:
            networks.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(
                f"PAAS_EGRESS_ALLOW: {entry!r} is not an address or CIDR such as 10.1.2.3/32"
            ) from None
    return networks


# Builds and app containers reach no private, link-local or host address
# (deployments/adapters/firewall.py); these are the exceptions: "10.1.2.3/32,192.168.5.0/24".
PAAS_EGRESS_ALLOW = _egress_allow(env_list("PAAS_EGRESS_ALLOW", []))
PAAS_MAX_REPLICAS = env_int("PAAS_MAX_REPLICAS", 10)  # per process type
# The release phase (a Procfile's release: line or the app's release command).
PAAS_RELEASE_TIMEOUT = env_int("PAAS_RELEASE_TIMEOUT", 600)
PAAS_RELEASE_ON_ROLLBACK = env_bool("PAAS_RELEASE_ON_ROLLBACK", True)
# SIGTERM, then this long before SIGKILL: a worker may finish the job it has.
PAAS_STOP_GRACE_SECONDS = env_int("PAAS_STOP_GRACE_SECONDS", 10)
# A process type other than web must stay up this long after it starts to count as started.
PAAS_PROCESS_SETTLE_SECONDS = env_float("PAAS_PROCESS_SETTLE_SECONDS", 2.0)
PAAS_MAX_BODY_BYTES = env_int("PAAS_MAX_BODY_BYTES", 200 * 1024 * 1024)
# Uploaded source archives (deployments/adapters/sources/archive.py): size and entry count.
PAAS_ARCHIVE_MAX_BYTES = env_int("PAAS_ARCHIVE_MAX_BYTES", 200 * 1024 * 1024)
PAAS_ARCHIVE_MAX_ENTRIES = env_int("PAAS_ARCHIVE_MAX_ENTRIES", 20_000)
# Request bodies to the dashboard, the API and the hooks: a larger one gets 413 from the
# router (the platform route's buffering middleware) and, for a request that reaches
# gunicorn another way, from paas/middleware.py before Django reads a byte. The default
# leaves room for the largest archive plus its multipart framing and the form's fields.
PAAS_MAX_REQUEST_BYTES = env_int("PAAS_MAX_REQUEST_BYTES", PAAS_ARCHIVE_MAX_BYTES + 1024 * 1024)
# Within that: a form or JSON body is read into memory up to this (Django's own default,
# stated); an uploaded file larger than this is spooled to a temporary file instead.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# A repository fetch whose directory (.git and checkout) grows past this is stopped and
# fails with source_too_large (deployments/adapters/sources/size_watch.py). 0: no limit.
PAAS_CLONE_MAX_BYTES = env_int("PAAS_CLONE_MAX_BYTES", 1024 * 1024 * 1024)
PAAS_BUILD_DIR = Path(env_str("PAAS_BUILD_DIR", str(VAR_DIR / "builds")))
# What one image build may use (deployments/adapters/builders/build_limits.py): each RUN
# step's memory (no swap on top) and CPUs, the build's duration (within the deployment's
# PAAS_BUILD_TIMEOUT), the context sent to the engine and the image it makes; and how many
# builds one owner may run at once (the next one waits its turn).
PAAS_BUILD_MEMORY = env_str("PAAS_BUILD_MEMORY", "2g")
PAAS_BUILD_CPUS = env_float("PAAS_BUILD_CPUS", 1.0)
PAAS_BUILD_STEP_TIMEOUT = env_int("PAAS_BUILD_STEP_TIMEOUT", 1200)
PAAS_BUILD_CONTEXT_MAX_BYTES = env_int("PAAS_BUILD_CONTEXT_MAX_BYTES", 500 * 1024 * 1024)
PAAS_IMAGE_MAX_BYTES = env_int("PAAS_IMAGE_MAX_BYTES", 5 * 1024 * 1024 * 1024)
PAAS_BUILDS_PER_USER = env_int("PAAS_BUILDS_PER_USER", 2)
# Processes all of a build's RUN steps may have at once (0: no limit), and the disk one
# RUN step may write to its container layer (build_cgroup.py, disk_watch.py).
PAAS_BUILD_PIDS = env_int("PAAS_BUILD_PIDS", 512)
PAAS_BUILD_DISK_MAX_BYTES = env_int("PAAS_BUILD_DISK_MAX_BYTES", 10 * 1024 * 1024 * 1024)
# ADD <url> is fetched by the engine, which follows redirects to any address: refused
# unless this is true (then only the URL's own host is checked, remote_sources.py).
PAAS_BUILD_ALLOW_REMOTE_ADD = env_bool("PAAS_BUILD_ALLOW_REMOTE_ADD", False)
PAAS_ALLOW_LOCAL_REPOSITORIES = env_bool("PAAS_ALLOW_LOCAL_REPOSITORIES", False)
PAAS_CONTAINER_MEMORY = env_str("PAAS_CONTAINER_MEMORY", "512m")
PAAS_CONTAINER_CPUS = env_float("PAAS_CONTAINER_CPUS", 1.0)
PAAS_DEFAULT_PORT = env_int("PAAS_DEFAULT_PORT", 5000)
PAAS_HEALTH_TIMEOUT = env_int("PAAS_HEALTH_TIMEOUT", 60)
PAAS_DRAIN_SECONDS = env_int("PAAS_DRAIN_SECONDS", 10)
# A running deployment or run writes heartbeat_at every PAAS_HEARTBEAT_SECONDS from a thread
# of its own, so a slow build beats as often as a fast one; after PAAS_HEARTBEAT_TIMEOUT of
# silence the warden (every PAAS_WARDEN_SECONDS) takes it back. 18 s: a SIGKILLed worker's
# deployment resumes within 30 s (18 + a 5 s round + the retry), and PostgreSQL may be away
# for 10 s without a false alarm (a beat before it, 10 s, a beat after it: about 14 s).
PAAS_HEARTBEAT_SECONDS = env_float("PAAS_HEARTBEAT_SECONDS", 2.0)
PAAS_HEARTBEAT_TIMEOUT = env_int("PAAS_HEARTBEAT_TIMEOUT", 18)
if PAAS_HEARTBEAT_TIMEOUT < 3 * PAAS_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        "PAAS_HEARTBEAT_TIMEOUT must be at least 3 × PAAS_HEARTBEAT_SECONDS: one late beat "
        "would otherwise pass for a dead worker."
    )
# One-off runs: killed after this many seconds. Scheduled jobs: how often beat looks for
# a due one (a job fires at most this long after its time).
PAAS_RUN_TIMEOUT = env_int("PAAS_RUN_TIMEOUT", 3600)
# A deployment's or a run's log keeps its first and last PAAS_LOG_MAX_LINES / 2 lines and
# says how many in between were dropped (deployments/models/log_cap.py).
PAAS_LOG_MAX_LINES = env_int("PAAS_LOG_MAX_LINES", 10000)
# Retention (deployments/workers/retention.py), 0 = keep forever: the log of a deployment
# or run that finished more than PAAS_LOG_RETENTION_DAYS ago is deleted, except the log of
# an environment's live deployment; an uploaded archive older than
# PAAS_ARCHIVE_RETENTION_DAYS is deleted unless a live or unfinished deployment uses it.
PAAS_LOG_RETENTION_DAYS = env_int("PAAS_LOG_RETENTION_DAYS", 30)
PAAS_ARCHIVE_RETENTION_DAYS = env_int("PAAS_ARCHIVE_RETENTION_DAYS", 30)
PAAS_RETENTION_EVERY_SECONDS = env_int("PAAS_RETENTION_EVERY_SECONDS", 3600)
CELERY_BEAT_SCHEDULE["prune-old-logs"] = {
    "task": "deployments.tasks.prune_old_logs",
    "schedule": PAAS_RETENTION_EVERY_SECONDS,
    "options": {"expires": 600},
}
CELERY_BEAT_SCHEDULE["prune-old-archives"] = {
    "task": "deployments.tasks.prune_old_archives",
    "schedule": PAAS_RETENTION_EVERY_SECONDS,
    "options": {"expires": 600},
}
# Per-user quotas (deployments/services/quotas.py); staff are exempt. Over one: 409.
PAAS_MAX_APPS_PER_USER = env_int("PAAS_MAX_APPS_PER_USER", 20)
PAAS_MAX_DOMAINS_PER_USER = env_int("PAAS_MAX_DOMAINS_PER_USER", 20)
PAAS_MAX_VOLUMES_PER_USER = env_int("PAAS_MAX_VOLUMES_PER_USER", 20)
PAAS_MAX_ADDONS_PER_USER = env_int("PAAS_MAX_ADDONS_PER_USER", 10)
PAAS_CRON_TICK_SECONDS = env_int("PAAS_CRON_TICK_SECONDS", 10)
CELERY_BEAT_SCHEDULE["scheduled-jobs"] = {
    "task": "deployments.tasks.schedule_jobs",
    "schedule": PAAS_CRON_TICK_SECONDS,
    "options": {"expires": PAAS_CRON_TICK_SECONDS * 3},
}
PAAS_KEEP_IMAGES = env_int("PAAS_KEEP_IMAGES", 5)
PAAS_BASE_IMAGES = {
    "python": env_str("PAAS_BASE_IMAGE_PYTHON", "python:3.11-slim"),
    "node": env_str("PAAS_BASE_IMAGE_NODE", "node:20-slim"),
    "go": env_str("PAAS_BASE_IMAGE_GO", "golang:1.22-bookworm"),
    "static": env_str("PAAS_BASE_IMAGE_STATIC", "busybox:stable"),
}


def _image_aliases(entries: list[str]) -> list[tuple[str, str]]:
    """`pattern=local/image` pairs, in order; a malformed one stops the start (no guessing)."""
    pairs = []
    for entry in entries:
        pattern, _, image = entry.partition("=")
        if not pattern or not image or any(c in image for c in "=* \t"):
            raise ImproperlyConfigured(
                f"PAAS_IMAGE_ALIASES: {entry!r} is not pattern=image "
                "(e.g. python:3.11*=slipway/python:bookworm; patterns may use *)"
            )
        pairs.append((pattern.strip(), image.strip()))
    return pairs


# Applied to every FROM and COPY --from before a build, so a host without a registry can
# build a Dockerfile FROM python:3.11-slim: "python:3.11*=slipway/python:bookworm,...".
PAAS_IMAGE_ALIASES = _image_aliases(env_list("PAAS_IMAGE_ALIASES", []))
PAAS_APT_MIRROR = env_str("PAAS_APT_MIRROR")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Git providers (OAuth) ---
# Sign-in with GitHub, GitLab (gitlab.com or self-hosted) and Gitea/Forgejo beside password
# sign-in. A provider is offered only when its client id is set. Sign-up stays closed unless
# PAAS_OPEN_SIGNUP: an invited user signs in with a password once and connects a provider
# (/accounts/3rdparty/), after which the provider signs them in.
# allauth would keep the OAuth tokens in plain text (SocialToken), so it keeps none; the
# handlers in apps/provider_models.py store them encrypted in ProviderCredential instead.
SOCIALACCOUNT_STORE_TOKENS = False
GITHUB_URL = env_str("GITHUB_URL", "https://github.com").rstrip("/")
# GitHub Enterprise serves its API under <web>/api/v3; github.com under api.github.com.
GITHUB_API_URL = env_str(
    "GITHUB_API_URL",
    "https://api.github.com" if GITHUB_URL == "https://github.com" else f"{GITHUB_URL}/api/v3",
).rstrip("/")
GITLAB_URL = env_str("GITLAB_URL", "https://gitlab.com").rstrip("/")
GITEA_URL = env_str("GITEA_URL", "https://gitea.com").rstrip("/")
# web_url: the host clone URLs use, and the OAuth token endpoint's root; api_url: REST root.
PAAS_GIT_PROVIDERS = {
    "github": {"name": "GitHub", "web_url": GITHUB_URL, "api_url": GITHUB_API_URL},
    "gitlab": {"name": "GitLab", "web_url": GITLAB_URL, "api_url": f"{GITLAB_URL}/api/v4"},
    "gitea": {"name": "Gitea", "web_url": GITEA_URL, "api_url": f"{GITEA_URL}/api/v1"},
}
# Seconds to wait for a provider's API: a page that lists repositories must not hang.
PAAS_GIT_PROVIDER_TIMEOUT = env_float("PAAS_GIT_PROVIDER_TIMEOUT", 8.0)
PAAS_GIT_PROVIDER_CACHE_SECONDS = env_int("PAAS_GIT_PROVIDER_CACHE_SECONDS", 60)


def _oauth_app(prefix: str) -> list[dict]:
    client_id = env_str(f"{prefix}_CLIENT_ID")
    if not client_id:
        return []
    return [{"client_id": client_id, "secret": env_str(f"{prefix}_CLIENT_SECRET"), "key": ""}]


# Scopes: list repositories, read private ones (clone) and manage their webhooks.
# Gitea ignores scopes unless [oauth2] ENABLE_ADDITIONAL_GRANT_SCOPES is on; then these suffice.
SOCIALACCOUNT_PROVIDERS = {
    "github": {
        "SCOPE": ["repo", "admin:repo_hook", "read:user", "user:email"],
        "APPS": _oauth_app("GITHUB"),
        # allauth reads GITHUB_URL as an Enterprise host (API under /api/v3): github.com needs none.
        **({"GITHUB_URL": GITHUB_URL} if GITHUB_URL != "https://github.com" else {}),
    },
    "gitlab": {"SCOPE": ["api"], "APPS": _oauth_app("GITLAB"), "GITLAB_URL": GITLAB_URL},
    "gitea": {
        "SCOPE": ["read:user", "write:repository"],
        "APPS": _oauth_app("GITEA"),
        "GITEA_URL": GITEA_URL,
    },
}

# --- Notifications ---
# Outbound webhooks (signed JSON POSTs) and e-mail to the owner about an app's deployments
# and crashes. A target whose host resolves to a loopback, private, link-local or otherwise
# non-public address is refused — at creation and again at every delivery, so a DNS answer
# that changes later cannot point Slipway at its own network — unless the operator allows
# private addresses here (a target added while this is on keeps that permission).
PAAS_NOTIFY_ALLOW_PRIVATE = env_bool("PAAS_NOTIFY_ALLOW_PRIVATE", False)
PAAS_NOTIFY_ATTEMPTS = env_int("PAAS_NOTIFY_ATTEMPTS", 5)
# Seconds before the 2nd attempt; each later wait doubles (1, 2, 4, 8 s by default).
PAAS_NOTIFY_BACKOFF_BASE = env_float("PAAS_NOTIFY_BACKOFF_BASE", 1.0)
PAAS_NOTIFY_TIMEOUT = env_float("PAAS_NOTIFY_TIMEOUT", 10.0)
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"slipway@{PAAS_DOMAIN}")

# --- Add-ons ---
# Databases beside an app: one container per app environment on the app's network, its data
# in a named volume. The defaults are the official images; hosts without a registry build
# slipway/<kind>:bookworm from Debian's packages (manage.py paas_base_images --with-addons).
PAAS_ADDON_IMAGES = {
    "postgres": env_str("PAAS_ADDON_IMAGE_POSTGRES", "postgres:16"),
    "mariadb": env_str("PAAS_ADDON_IMAGE_MARIADB", "mariadb:11"),
    "redis": env_str("PAAS_ADDON_IMAGE_REDIS", "redis:7"),
}
PAAS_ADDON_MEMORY = env_str("PAAS_ADDON_MEMORY", "512m")
PAAS_ADDON_CPUS = env_float("PAAS_ADDON_CPUS", 1.0)
# Seconds an add-on may take to accept connections after its container starts.
PAAS_ADDON_START_TIMEOUT = env_int("PAAS_ADDON_START_TIMEOUT", 90)
# The database view: how long one statement may run, and how many rows it shows.
PAAS_DB_VIEW_TIMEOUT_MS = env_int("PAAS_DB_VIEW_TIMEOUT_MS", 5000)
PAAS_DB_VIEW_ROWS = env_int("PAAS_DB_VIEW_ROWS", 50)
# Backups: dumps made inside the add-on's container, streamed to files here.
PAAS_BACKUP_DIR = Path(env_str("PAAS_BACKUP_DIR", str(VAR_DIR / "backups")))
PAAS_BACKUP_KEEP = env_int("PAAS_BACKUP_KEEP", 7)  # per add-on; the oldest go first
PAAS_BACKUP_TIMEOUT = env_int("PAAS_BACKUP_TIMEOUT", 3600)
CELERY_BEAT_SCHEDULE["addon-backups"] = {
    "task": "deployments.tasks.scheduled_backups",
    "schedule": env_int("PAAS_BACKUP_EVERY_SECONDS", 24 * 3600),
    "options": {"expires": 3600},
}
# Runtime logs (deployments/workers/log_collector.py, run by `manage.py paas_collect_logs`):
# how often the collector looks for new containers, and how long and how much of each
# app's output the store keeps (the oldest lines go first; 0 = no limit).
PAAS_LOG_COLLECT_SECONDS = env_float("PAAS_LOG_COLLECT_SECONDS", 1.0)
PAAS_RUNTIME_LOG_RETENTION_DAYS = env_int("PAAS_RUNTIME_LOG_RETENTION_DAYS", 7)
PAAS_RUNTIME_LOG_MAX_BYTES_PER_APP = env_int(
    "PAAS_RUNTIME_LOG_MAX_BYTES_PER_APP", 1024 * 1024 * 1024
)
PAAS_RUNTIME_LOG_PRUNE_SECONDS = env_int("PAAS_RUNTIME_LOG_PRUNE_SECONDS", 600)

# --- Log drains ---
# Each app's runtime log lines forwarded to syslog (RFC 5424 over TCP/TLS) or HTTPS (signed
# JSON lines) receivers (deployments/workers/log_drains.py). Every PAAS_LOG_DRAIN_EVERY_SECONDS
# a drain gets up to PAAS_LOG_DRAIN_BATCHES_PER_TICK batches of PAAS_LOG_DRAIN_BATCH lines; a
# refused batch is retried after PAAS_LOG_DRAIN_BACKOFF_BASE seconds, doubling up to
# PAAS_LOG_DRAIN_BACKOFF_MAX. Destinations follow PAAS_NOTIFY_ALLOW_PRIVATE's SSRF rules.
PAAS_LOG_DRAIN_EVERY_SECONDS = env_float("PAAS_LOG_DRAIN_EVERY_SECONDS", 2.0)
PAAS_LOG_DRAIN_BATCH = env_int("PAAS_LOG_DRAIN_BATCH", 500)
PAAS_LOG_DRAIN_BATCHES_PER_TICK = env_int("PAAS_LOG_DRAIN_BATCHES_PER_TICK", 10)
PAAS_LOG_DRAIN_TIMEOUT = env_float("PAAS_LOG_DRAIN_TIMEOUT", 10.0)
PAAS_LOG_DRAIN_BACKOFF_BASE = env_float("PAAS_LOG_DRAIN_BACKOFF_BASE", 1.0)
PAAS_LOG_DRAIN_BACKOFF_MAX = env_float("PAAS_LOG_DRAIN_BACKOFF_MAX", 300.0)
PAAS_LOG_DRAINS_PER_APP = env_int("PAAS_LOG_DRAINS_PER_APP", 5)
CELERY_BEAT_SCHEDULE["log-drains"] = {
    "task": "deployments.tasks.forward_log_drains",
    "schedule": PAAS_LOG_DRAIN_EVERY_SECONDS,
    # A tick still queued when the next is due is dropped: the next one does its work.
    "options": {"expires": PAAS_LOG_DRAIN_EVERY_SECONDS * 5},
}
# Automatic rollback (deployments/workers/auto_rollback.py, each warden round): within this
# many seconds of going live (0 = never), a deployment whose web containers the engine
# restarted PAAS_AUTO_ROLLBACK_RESTARTS times, or whose requests answered 5xx at more than
# PAAS_AUTO_ROLLBACK_ERROR_RATE over at least PAAS_AUTO_ROLLBACK_MIN_REQUESTS, is rolled
# back to the deployment live before it. Off per app with App.auto_rollback.
PAAS_AUTO_ROLLBACK_WINDOW_SECONDS = env_int("PAAS_AUTO_ROLLBACK_WINDOW_SECONDS", 300)
PAAS_AUTO_ROLLBACK_RESTARTS = env_int("PAAS_AUTO_ROLLBACK_RESTARTS", 3)
PAAS_AUTO_ROLLBACK_ERROR_RATE = env_float("PAAS_AUTO_ROLLBACK_ERROR_RATE", 0.5)
PAAS_AUTO_ROLLBACK_MIN_REQUESTS = env_int("PAAS_AUTO_ROLLBACK_MIN_REQUESTS", 20)

# Metrics with history and alerts (deployments/workers/metrics.py and alerts.py): every live
# container's CPU, memory and restarts and the router's requests, 5xx and latency per
# environment, every PAAS_METRICS_SECONDS; rows older than PAAS_METRICS_DOWNSAMPLE_HOURS are
# merged into 5-minute rows, and rows older than PAAS_METRICS_RETENTION_DAYS deleted.
# /metrics (Prometheus) answers staff sessions, or `Authorization: Bearer
# <PAAS_METRICS_TOKEN>` when that is set.
PAAS_METRICS_SECONDS = env_int("PAAS_METRICS_SECONDS", 30)
PAAS_METRICS_RETENTION_DAYS = env_int("PAAS_METRICS_RETENTION_DAYS", 14)
PAAS_METRICS_DOWNSAMPLE_HOURS = env_int("PAAS_METRICS_DOWNSAMPLE_HOURS", 24)
PAAS_METRICS_TOKEN = env_str("PAAS_METRICS_TOKEN", "")
# Alerts, each once per episode (and once more when it clears): a container the engine
# restarted PAAS_ALERT_CRASH_RESTARTS times within PAAS_ALERT_CRASH_MINUTES; memory at
# PAAS_ALERT_MEMORY_FRACTION of its limit for PAAS_ALERT_MEMORY_MINUTES; 5xx above
# PAAS_ALERT_ERROR_RATE of at least PAAS_ALERT_MIN_REQUESTS requests over
# PAAS_ALERT_ERROR_MINUTES; the data directory's disk above PAAS_ALERT_DISK_FRACTION (to staff).
PAAS_ALERT_CRASH_RESTARTS = env_int("PAAS_ALERT_CRASH_RESTARTS", 3)
PAAS_ALERT_CRASH_MINUTES = env_int("PAAS_ALERT_CRASH_MINUTES", 10)
PAAS_ALERT_MEMORY_FRACTION = env_float("PAAS_ALERT_MEMORY_FRACTION", 0.9)
PAAS_ALERT_MEMORY_MINUTES = env_int("PAAS_ALERT_MEMORY_MINUTES", 5)
PAAS_ALERT_ERROR_RATE = env_float("PAAS_ALERT_ERROR_RATE", 0.05)
PAAS_ALERT_MIN_REQUESTS = env_int("PAAS_ALERT_MIN_REQUESTS", 20)
PAAS_ALERT_ERROR_MINUTES = env_int("PAAS_ALERT_ERROR_MINUTES", 5)
PAAS_ALERT_DISK_FRACTION = env_float("PAAS_ALERT_DISK_FRACTION", 0.85)
CELERY_BEAT_SCHEDULE["sample-metrics"] = {
    "task": "deployments.tasks.sample_metrics",
    "schedule": PAAS_METRICS_SECONDS,
    "options": {"expires": PAAS_METRICS_SECONDS},
}

# How many environments one app may have (production included).
PAAS_MAX_ENVIRONMENTS_PER_APP = env_int("PAAS_MAX_ENVIRONMENTS_PER_APP", 10)

# Preview environments per pull request: how many one app may have open at once (a pull
# request over it is refused, and told so by a failed commit status).
PAAS_MAX_PREVIEWS_PER_APP = env_int("PAAS_MAX_PREVIEWS_PER_APP", 5)

# --- Two-factor sign-in (allauth.mfa; apps/two_factor.py) ---
# TOTP apps, WebAuthn security keys and passkeys, and recovery codes. Code guesses count
# against ACCOUNT_RATE_LIMITS["login_failed"] per account (PAAS_LOGIN_ATTEMPTS per
# PAAS_LOGIN_ATTEMPTS_WINDOW), like passwords. The TOTP secret and the recovery codes' seed
# are encrypted with PAAS_ENCRYPTION_KEYS (apps.accounts.MFAAdapter).
MFA_ADAPTER = "apps.accounts.MFAAdapter"
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_TOTP_ISSUER = "Slipway"
# One 30 s step either side: a phone's clock a few seconds off still signs in.
MFA_TOTP_TOLERANCE = 1
# Sign-in with a passkey alone (no password). WebAuthn needs a secure origin: the dashboard
# over HTTPS (PAAS_TLS) or at http://localhost; the relying party is the dashboard's host.
MFA_PASSKEY_LOGIN_ENABLED = True
# E-mail verification is off (ACCOUNT_EMAIL_VERIFICATION = "none"), so a signed-up user's
# address stays unverified; allauth would then refuse them 2FA altogether.
MFA_ALLOW_UNVERIFIED_EMAIL = True
# Who must use two-factor sign-in (apps.two_factor.requires_mfa): everyone, or staff only.
# Such a user without it is sent to set it up before any dashboard or admin page; the API's
# bearer tokens are not affected.
PAAS_REQUIRE_MFA = env_bool("PAAS_REQUIRE_MFA", False)
PAAS_REQUIRE_MFA_FOR_STAFF = env_bool("PAAS_REQUIRE_MFA_FOR_STAFF", False)
# Team invitations: how long an e-mailed link works (it works once).
PAAS_INVITATION_DAYS = env_int("PAAS_INVITATION_DAYS", 7)

# --- Runtime backend (deployments/wiring.py; docs/swarm.md) ---
# docker: containers on this host's engine. swarm: each replica of an app's web and worker
# processes is a Swarm service (this host's engine must be a manager, and the worker that
# deploys runs on it, as root: it routes the overlays through the gateway).
PAAS_RUNTIME = env_choice("PAAS_RUNTIME", ("docker", "swarm"), "docker")
# Swarm placement constraints for every app task, comma-separated (node.labels.apps==yes).
PAAS_SWARM_CONSTRAINTS = env_list("PAAS_SWARM_CONSTRAINTS", [])
# The overlay gateway's own bridge network (the host reaches the overlays through it).
PAAS_SWARM_GATEWAY_SUBNET = env_str("PAAS_SWARM_GATEWAY_SUBNET", "10.212.255.0/24")
PAAS_SWARM_GATEWAY_IMAGE = env_str("PAAS_SWARM_GATEWAY_IMAGE", PAAS_BASE_IMAGES["static"])
# How long a new task may take to be placed and started (an image pull included).
PAAS_SWARM_TASK_TIMEOUT = env_int("PAAS_SWARM_TASK_TIMEOUT", 60)
# The engines of the other nodes, by node hostname (or id): hostname=URL, comma-separated,
# each ssh://user@host (the docker CLI's own SSH transport, as Kamal reaches its hosts),
# tcp://host:2376 (TLS from DOCKER_CERT_PATH) or unix://. Dumps, restores and metrics of a
# task on another node go to its engine (a manager cannot exec into another node's
# containers); a node not listed here runs apps, and its add-ons cannot be backed up.
PAAS_SWARM_NODE_ENGINES = env_map("PAAS_SWARM_NODE_ENGINES", {})
# Builds on build nodes (docs/swarm.md: scripts/join-node): a deployment that builds hands
# its fetch and build to this Celery queue, which only the build nodes' workers consume,
# and a manager's worker takes it back for the rest. "" = the deployment's worker builds.
# (paas/celery.py routes the build task there.)
PAAS_BUILD_QUEUE = env_str("PAAS_BUILD_QUEUE", "").strip()
if PAAS_BUILD_QUEUE and PAAS_RUNTIME == "swarm" and not env_str("PAAS_REGISTRY_ADDRESS"):
    raise ImproperlyConfigured(
        "PAAS_BUILD_QUEUE on Swarm needs PAAS_REGISTRY_ADDRESS: a build node's image reaches "
        "the other nodes only through the registry."
    )
# How long a deployment may wait for a build node to take its build before the warden
# gives it back to the queue (a busy build node is not a dead worker).
PAAS_BUILD_WAIT_TIMEOUT = env_int("PAAS_BUILD_WAIT_TIMEOUT", 3600)
for _node, _url in PAAS_SWARM_NODE_ENGINES.items():
    if not _url.startswith(("ssh://", "tcp://", "unix://")):
        raise ImproperlyConfigured(
            f"PAAS_SWARM_NODE_ENGINES: the engine of {_node} must be an ssh://, tcp:// or "
            f"unix:// URL, not {_url!r}"
        )
# Slipway's registry (deployments/adapters/registry.py): host:port on the manager's cluster
# address, where every node pulls the images of app tasks by digest. "" = none (a node runs
# only images it has). Its files (config, certificate, password, data) are in its directory.
PAAS_REGISTRY_ADDRESS = env_str("PAAS_REGISTRY_ADDRESS", "")
PAAS_REGISTRY_DIR = Path(env_str("PAAS_REGISTRY_DIR", str(VAR_DIR / "registry" / PAAS_INSTANCE)))
