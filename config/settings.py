"""ChargeDesk settings: one module, everything read from the environment.

With nothing set it runs embedded: SQLite, the in-memory channel layer, Celery tasks
eager. ``DATABASE_URL`` and ``REDIS_URL`` switch to the real stack (PostgreSQL, the Redis
channel layer, Celery on Redis). ``CHARGEDESK_PRODUCTION=1`` turns on the production
hardening that ``manage.py check --deploy`` asks for.
"""

from pathlib import Path

import environ

from config.logs import logging_config
from config.security_headers import CSP_DIRECTIVES, permissions_policy

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

PRODUCTION = env.bool("CHARGEDESK_PRODUCTION", default=False)
DEBUG = env.bool("DJANGO_DEBUG", default=False)

if PRODUCTION:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")
else:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="django-insecure-chargedesk-development-only-key")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[] if PRODUCTION else ["*"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "channels",
    "csp",
    "config.apps.InfrastructureConfig",
    "stations",
    "sessions.apps.ChargingConfig",
    "diagnostics",
    "alerts",
    "billing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

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
                "alerts.context_processors.unread_notifications",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
USING_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
if USING_POSTGRES:
    # Bind parameters on the server so psycopg prepares the statements a connection repeats
    # (the OCPP hot path runs the same few thousands of times a second).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "server_side_binding", env.bool("DATABASE_SERVER_SIDE_BINDING", default=True)
    )
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Embedded: several threads write (the OCPP handlers); wait for the lock rather than fail,
    # take it at BEGIN, and let readers go on beside the writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, Celery broker, cache ---------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")

CHANNELS_REDIS_POOL_SIZE = env.int("CHANNELS_REDIS_POOL_SIZE", default=64)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "config.channel_layer.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env.str("CHANNELS_PREFIX", default="chargedesk")},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # An unreachable Redis costs a request (or a charger's handshake) seconds, not minutes.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 5},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or None) or None
# Nothing reads a task's result, and asking the result backend to watch for one makes whoever
# publishes (an OCPP charger's database thread, a request) wait out a Redis outage: ~20 s.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# On Redis a killed worker's unacknowledged task comes back after this many seconds (kombu's
# default is an hour); it must be longer than the longest task.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_BROKER_VISIBILITY_TIMEOUT", default=3600),
    # How often a worker looks for such tasks: about interval × throttle seconds.
    "unacked_restore_interval": env.int("CELERY_BROKER_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": env.int("CELERY_BROKER_RESTORE_THROTTLE", default=10),
}
# Tests give each worker a queue of its own on the shared Redis.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Periodic work, in seconds. Celery beat runs it on the real stack; `manage.py serve` runs it
# in-process when embedded (tasks eager, no broker).
CELERY_BEAT_SCHEDULE = {
    # Task calls kept while the broker was down (config/outbox.py), sent once it is back.
    "relay-deferred-tasks": {
        "task": "config.tasks.relay_deferred_tasks",
        "schedule": env.float("CELERY_RELAY_SECONDS", default=15.0),
    },
    "mark-silent-chargers-offline": {"task": "stations.tasks.mark_silent_chargers_offline", "schedule": 60.0},
    "expire-reservations": {"task": "sessions.tasks.expire_reservations", "schedule": 60.0},
    "diagnostic-sweep": {"task": "diagnostics.tasks.run_diagnostic_sweep", "schedule": 300.0},
    "alerts-sweep": {"task": "alerts.tasks.sweep", "schedule": 30.0},
    "alerts-digests": {"task": "alerts.tasks.send_digests", "schedule": 300.0},
    # Safe to run daily: each issues only what is not issued yet.
    "billing-monthly-invoices": {
        "task": "billing.tasks_invoicing.issue_monthly_invoices",
        "schedule": 86400.0,
    },
    "billing-overdue-check": {"task": "billing.tasks_invoicing.block_overdue_accounts", "schedule": 86400.0},
}

# --- Auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "stations.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Internationalisation: times are aware UTC, shown in the site's zone ---------------------
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files (served by the app through whitenoise) -------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "var" / "staticfiles")
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Outside production whitenoise serves straight from the finders: no collectstatic needed.
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
WHITENOISE_AUTOREFRESH = DEBUG

# --- Email ----------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ChargeDesk <noreply@chargedesk.localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "config.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"anon": "120/min", "user": "600/min"},
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ChargeDesk API",
    "DESCRIPTION": "REST API v1 of ChargeDesk for the mobile app and integrations.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ConnectorStatusEnum": "stations.models.network.ConnectorStatus",
        "ReportStatusEnum": "billing.models.ReportStatus",
    },
}

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # The health endpoints are probed over plain HTTP by the load balancer.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^livez$", r"^readyz$", r"^metrics$"]

# Content-Security-Policy on every response (config/security_headers.py); PERMISSIONS_POLICY is
# set after the Stripe settings (Stripe's frame may ask for payment).
CONTENT_SECURITY_POLICY = {"DIRECTIVES": CSP_DIRECTIVES}

DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Logs: "json" (one object a line, for log collectors) by default in production, "plain"
# otherwise; records about a charger carry its identity and id, a Celery task's its name and id.
LOGGING = logging_config(
    fmt=env.str("LOG_FORMAT", default="json" if PRODUCTION else "plain"),
    level=env.str("LOG_LEVEL", default="INFO"),
)
# Workers log through the same configuration instead of Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# /metrics (Prometheus): scrapers send "Authorization: Bearer <token>". Without a token it is
# open outside production and absent (404) in production.
METRICS_TOKEN = env.str("CHARGEDESK_METRICS_TOKEN", default="")

# --- ChargeDesk -----------------------------------------------------------------------------
# A charge point counts as offline once nothing was heard from it for this many heartbeat intervals.
CHARGEDESK_OFFLINE_AFTER_HEARTBEATS = env.float("CHARGEDESK_OFFLINE_AFTER_HEARTBEATS", default=2.5)
# Unknown chargers connecting to /ocpp/<id> are admitted as pending to this operator (by slug),
# if that operator accepts unknown chargers; otherwise they are refused.
CHARGEDESK_UNKNOWN_CHARGERS_OPERATOR = env.str("CHARGEDESK_UNKNOWN_CHARGERS_OPERATOR", default="")
# Largest OCPP frame accepted, in bytes; larger ones are refused.
OCPP_MAX_FRAME_BYTES = env.int("OCPP_MAX_FRAME_BYTES", default=65536)
# Largest WebSocket message the server itself reads (uvicorn's --ws-max-size in manage.py serve);
# a larger one closes the connection (1009) before it is buffered whole. Above
# OCPP_MAX_FRAME_BYTES, so that a frame just too long still gets its CALLERROR.
OCPP_WS_MAX_BYTES = env.int("OCPP_WS_MAX_BYTES", default=4 * OCPP_MAX_FRAME_BYTES)
# On a stop (SIGTERM), how long the ASGI server waits for its connections to close before it
# cancels them; the chargers reconnect to another process.
ASGI_GRACEFUL_SHUTDOWN_SECONDS = env.int("ASGI_GRACEFUL_SHUTDOWN_SECONDS", default=10)
# Threads (each with a database connection) for the OCPP handlers of one ASGI process.
OCPP_DB_THREADS = env.int("OCPP_DB_THREADS", default=8 if USING_POSTGRES else 1)
# Of those, how many commit the frames of all connections in batches (stations/ocpp/writer.py).
OCPP_WRITER_THREADS = min(OCPP_DB_THREADS, env.int("OCPP_WRITER_THREADS", default=3 if USING_POSTGRES else 1))
# How long a command waits for the charger's answer, in seconds.
OCPP_COMMAND_TIMEOUT = env.float("OCPP_COMMAND_TIMEOUT", default=30)
# Charger admission (stations/charger_auth.py). How long the keyed fingerprint of a charger's
# last good password stays in the cache, in seconds, sparing a reconnect the slow hash (0: off).
OCPP_AUTH_CACHE_SECONDS = env.int("OCPP_AUTH_CACHE_SECONDS", default=7 * 24 * 3600)
# Failed handshakes allowed per charge point identity and per client address in a window of
# OCPP_AUTH_FAILURE_WINDOW seconds; past either, handshakes are refused unchecked (0: no limit).
# The address limit is higher: many chargers may share one address behind a carrier's NAT.
OCPP_AUTH_FAILURES_PER_IDENTITY = env.int("OCPP_AUTH_FAILURES_PER_IDENTITY", default=10)
OCPP_AUTH_FAILURES_PER_IP = env.int("OCPP_AUTH_FAILURES_PER_IP", default=100)
OCPP_AUTH_FAILURE_WINDOW = env.int("OCPP_AUTH_FAILURE_WINDOW", default=300)
# Charger handshakes one process works on at once; the rest wait their turn, so that a
# reconnecting fleet leaves database threads to the connected chargers and the dashboard (0: no bound).
# bench/reconnect_storm.py: the same ~100 handshakes a second with 2 to 32; the dashboard's
# latency in the storm grows with the bound (2: 155 ms, 8: 300 ms, 32: 850 ms, none: 1.3 s).
OCPP_HANDSHAKE_CONCURRENCY = env.int("OCPP_HANDSHAKE_CONCURRENCY", default=4)
# Largest radius the near-me API accepts, in kilometres.
CHARGEDESK_MAX_SEARCH_RADIUS_KM = env.float("CHARGEDESK_MAX_SEARCH_RADIUS_KM", default=200)
# ChargeDesk's public address (https://csms.example.com), for links handed to chargers (the
# diagnostics upload URL); empty: the address the operator's browser used.
SITE_URL = env.str("CHARGEDESK_SITE_URL", default="")
# Largest diagnostics file a charger may upload, in bytes, and how long its upload link lives.
DIAGNOSTICS_UPLOAD_MAX_BYTES = env.int("DIAGNOSTICS_UPLOAD_MAX_BYTES", default=50 * 1024 * 1024)
DIAGNOSTICS_UPLOAD_TTL_SECONDS = env.int("DIAGNOSTICS_UPLOAD_TTL_SECONDS", default=24 * 3600)

# --- Alerts ---------------------------------------------------------------------------------
# Web push (VAPID): the application server's key pair, base64url as browsers and pywebpush use
# them. Empty outside production: a pair is made once and kept in var/vapid.json.
ALERTS_VAPID_PRIVATE_KEY = env.str("ALERTS_VAPID_PRIVATE_KEY", default="")
ALERTS_VAPID_PUBLIC_KEY = env.str("ALERTS_VAPID_PUBLIC_KEY", default="")
ALERTS_VAPID_SUBJECT = env.str("ALERTS_VAPID_SUBJECT", default="mailto:alerts@chargedesk.localhost")
# Retries of a failed delivery: the waits between attempts, in seconds (then it fails for good).
ALERTS_RETRY_BACKOFF = [
    int(s) for s in env.list("ALERTS_RETRY_BACKOFF", default=["30", "120", "600", "3600"])
]
# A webhook endpoint is disabled after this many failed attempts in a row.
ALERTS_WEBHOOK_DISABLE_AFTER = env.int("ALERTS_WEBHOOK_DISABLE_AFTER", default=10)
ALERTS_WEBHOOK_TIMEOUT = env.float("ALERTS_WEBHOOK_TIMEOUT", default=10)
# Whether webhooks may go to loopback and private addresses (checked when sending, after the
# name is resolved). Off in production: a receiver must be on the public internet.
ALERTS_WEBHOOK_ALLOW_PRIVATE = env.bool("ALERTS_WEBHOOK_ALLOW_PRIVATE", default=not PRODUCTION)
# A webhook receiver rejects a signature older than this (seconds); documented for receivers.
ALERTS_WEBHOOK_TOLERANCE = env.int("ALERTS_WEBHOOK_TOLERANCE", default=300)
# SMS and mobile push go through a provider: "console" (logs them) or "http" (POSTs JSON to
# the URL with a bearer token, for a gateway of the operator's choice).
ALERTS_SMS_PROVIDER = env.str("ALERTS_SMS_PROVIDER", default="console")
ALERTS_SMS_HTTP_URL = env.str("ALERTS_SMS_HTTP_URL", default="")
ALERTS_SMS_HTTP_TOKEN = env.str("ALERTS_SMS_HTTP_TOKEN", default="")
ALERTS_MOBILE_PUSH_PROVIDER = env.str("ALERTS_MOBILE_PUSH_PROVIDER", default="console")
ALERTS_MOBILE_PUSH_HTTP_URL = env.str("ALERTS_MOBILE_PUSH_HTTP_URL", default="")
ALERTS_MOBILE_PUSH_HTTP_TOKEN = env.str("ALERTS_MOBILE_PUSH_HTTP_TOKEN", default="")
# A charger offline this long (seconds) mid-session interrupts it and puts it out of service;
# a shorter drop (a network blip, a reconnect) tells nobody.
ALERTS_OFFLINE_GRACE_SECONDS = env.int("ALERTS_OFFLINE_GRACE_SECONDS", default=120)
# A station back for this long (seconds) is back in service; a fault before that is the same outage.
ALERTS_BACK_AFTER_SECONDS = env.int("ALERTS_BACK_AFTER_SECONDS", default=900)
# Charging done but the car still plugged in for this long (minutes): the idle-fee warning.
ALERTS_IDLE_WARNING_MINUTES = env.int("ALERTS_IDLE_WARNING_MINUTES", default=10)
# A reservation ending within this many minutes: the expiry reminder.
ALERTS_RESERVATION_REMINDER_MINUTES = env.int("ALERTS_RESERVATION_REMINDER_MINUTES", default=10)
# Drivers who charged at a station within this many days count as its recent users.
ALERTS_RECENT_DAYS = env.int("ALERTS_RECENT_DAYS", default=60)
# How many alternatives an out-of-service alert names, and how far it looks (km).
ALERTS_ALTERNATIVES = env.int("ALERTS_ALTERNATIVES", default=3)
ALERTS_ALTERNATIVES_RADIUS_KM = env.float("ALERTS_ALTERNATIVES_RADIUS_KM", default=25)

# --- Billing --------------------------------------------------------------------------------
# Stripe: the secret and publishable keys, the webhook signing secret. STRIPE_API_BASE points
# the stripe library somewhere else (tests and the demo use a local Stripe-protocol server,
# localstripe, at http://127.0.0.1:8420); STRIPE_JS_URL is where pages load Stripe.js from
# (Stripe's own https://js.stripe.com/v3/ in production: Stripe requires it be loaded from there).
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
STRIPE_JS_URL = env.str("STRIPE_JS_URL", default="https://js.stripe.com/v3/")
PERMISSIONS_POLICY = permissions_policy(STRIPE_JS_URL)
# The amount held on a card when a session starts (in the tariff's currency); the actual cost
# is captured at the end (at most this much; above it a second charge is made).
BILLING_PREAUTH_AMOUNT = env.str("BILLING_PREAUTH_AMOUNT", default="50.00")
# A failed capture is tried again this many times (after 1 h, 6 h, 24 h…); then the driver is
# blocked from starting until the debt is paid.
BILLING_CAPTURE_RETRIES = env.int("BILLING_CAPTURE_RETRIES", default=3)
# Postpaid accounts: invoices are due after the account's terms; overdue by this many days,
# the account's cards are blocked.
BILLING_OVERDUE_GRACE_DAYS = env.int("BILLING_OVERDUE_GRACE_DAYS", default=7)
# Ad-hoc (guest) checkouts one address may start in an hour.
BILLING_GUEST_CHECKOUTS_PER_HOUR = env.int("BILLING_GUEST_CHECKOUTS_PER_HOUR", default=10)
