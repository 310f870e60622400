"""Settings for the EHR project, read from the environment with development defaults.

Environment variables:
    DATABASE_URL    database (default: SQLite file db.sqlite3 in the project folder)
    SECRET_KEY      signing key (a development default that the ehr.E001 check refuses when DEBUG is off)
    DEBUG           "1"/"true" to enable debug (default on, for the development server)
    ALLOWED_HOSTS   comma-separated host names
    FHIR_BASE_URL   public FHIR base; becomes `iss` and `aud` (default http://127.0.0.1:8000/fhir)
    OIDC_RSA_PRIVATE_KEY_FILE  PEM file with the id_token signing key (default: var/oidc.key, made on first use)
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

from smart.keys import load_signing_keys  # Django-free: reads (or creates) the id_token signing keys

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEVELOPMENT_SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"
SECRET_KEY = os.environ.get("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
DEBUG = _env_bool("DEBUG", True)

FHIR_BASE_URL = os.environ.get("FHIR_BASE_URL", "http://127.0.0.1:8000/fhir").rstrip("/")
_base = urlsplit(FHIR_BASE_URL)
# The server's own origin and root URL, derived from the FHIR base (which is mounted at /fhir).
PUBLIC_ORIGIN = f"{_base.scheme}://{_base.netloc}"
PUBLIC_ROOT_URL = PUBLIC_ORIGIN + _base.path.rsplit("/fhir", 1)[0]

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", f"127.0.0.1,localhost,testserver,{_base.hostname}").split(",")
    if h.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "oauth2_provider",
    "django_tasks",
    "django_tasks_db",
    "fhirapi",
    "smart",
    "ehr",
]

MIDDLEWARE = [
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "ehr.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "ehr.auth.SessionUserMiddleware",  # Django's AuthenticationMiddleware, for ehr.auth's backend
    "ehr.messages.LazyMessageMiddleware",  # Django's MessageMiddleware, storage made on first use
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "ehr.urls"
WSGI_APPLICATION = "ehr.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Persistent connections: a new PostgreSQL connection per request costs far more than the request.
        conn_max_age=600,
        # A health check is a round trip to the database before every request's first query (as much as a
        # token request's own statements); without it a connection that died (a database restart) fails one
        # request and is then replaced. DB_HEALTH_CHECKS=1 trades that request for the round trips.
        conn_health_checks=_env_bool("DB_HEALTH_CHECKS", False),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Stock PostgreSQL prices a random page read at 4x a sequential one (spinning disks). The store's searches
    # are index probes into a cached working set; at that price the planner hashes every `vital-signs` token
    # of the table rather than probe the patient's 1,000 rows (6 ms instead of 1.5 ms). 1.1 is the usual
    # setting for SSDs; a server configured otherwise can drop this.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c random_page_cost=1.1"
    # Prepared statements for the authorization server's fixed SQL (smart.rows): planned once per connection
    # instead of on every use, and a request's writes pipelined in one round trip. Django's own queries are
    # not prepared either way. Behind a transaction-pooling proxy that cannot keep prepared statements
    # (PgBouncer before 1.21), set DB_PREPARED_STATEMENTS=0.
    if _env_bool("DB_PREPARED_STATEMENTS", True):
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 0
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend, converting each statement's placeholders once (ehr/db/sqlite3/base.py).
    DATABASES["default"]["ENGINE"] = "ehr.db.sqlite3"
    # Persistent too: SQLite rebuilds its WAL files whenever the last connection closes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "smart.hashers.ClientSecretHasher",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "ehr" / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"
VAR_DIR = Path(os.environ.get("EHR_VAR_DIR", BASE_DIR / "var"))

LOGIN_URL = "ehr:login"
LOGIN_REDIRECT_URL = "ehr:patient-list"
LOGOUT_REDIRECT_URL = "ehr:login"

# Only the EHR's own pages may frame the authorization pages; every other page refuses framing.
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# Django's database sessions with the user as a column: a signed-in request reads its session, user and fhirUser
# link with one statement (ehr.sessions), and the backend hands that user to Django's own checks (ehr.auth).
# The only backend: a second one would hash every failed login's password twice.
SESSION_ENGINE = "ehr.sessions"
AUTHENTICATION_BACKENDS = ["ehr.auth.SessionUserBackend"]

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

REST_FRAMEWORK = {
    "URL_FORMAT_OVERRIDE": None,  # `format` is a real FHIR search parameter (DocumentReference?format=)
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
}

FHIRAPI = {
    "BASE_URL": FHIR_BASE_URL,
    "AUTHENTICATION_CLASSES": ["smart.authentication.SmartTokenAuthentication"],
    "CAPABILITY_SECURITY_PROVIDER": "smart.discovery.capability_security",
    "RESPONSE_OBSERVERS": ["smart.usage.fhir_call_observer"],
}

SMART = {"PUBLIC_ROOT_URL": PUBLIC_ROOT_URL}

OAUTH2_PROVIDER_APPLICATION_MODEL = "smart.Application"
OAUTH2_PROVIDER_GRANT_MODEL = "smart.Grant"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "smart.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "smart.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "smart.IDToken"

_OIDC_KEY, _OIDC_INACTIVE_KEYS = load_signing_keys(VAR_DIR)

OAUTH2_PROVIDER = {
    "OAUTH2_VALIDATOR_CLASS": "smart.validators.SmartOAuth2Validator",
    "OIDC_RSA_PRIVATE_KEY": _OIDC_KEY,
    "OIDC_RSA_PRIVATE_KEYS_INACTIVE": _OIDC_INACTIVE_KEYS,
    "APPLICATION_ADMIN_CLASS": "smart.admin.SmartApplicationAdmin",
    "OIDC_ENABLED": True,
    "OIDC_ISS_ENDPOINT": PUBLIC_ROOT_URL + "/o",
    "PKCE_REQUIRED": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "CLIENT_SECRET_HASHER": "smart_hmac_sha256",
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "REFRESH_TOKEN_EXPIRE_SECONDS": 90 * 24 * 3600,
    "ACCESS_TOKEN_GENERATOR": "smart.tokens.token_generate",
    "REFRESH_TOKEN_GENERATOR": "smart.tokens.token_generate",
}

# The FHIR API answers any origin (bearer tokens, not cookies); token, revoke and introspect answer only the
# origins of registered apps' redirect URIs (smart.cors). The well-known documents set `*` themselves.
CORS_URLS_REGEX = r"^/(fhir/(?!\.well-known/).*|o/token/|o/revoke_token/|o/introspect/|o/userinfo/)$"
CORS_EXPOSE_HEADERS = ["Location", "ETag", "Content-Location", "Last-Modified", "X-Progress", "Retry-After"]
CORS_ALLOW_HEADERS = [
    "authorization",
    "content-type",
    "accept",
    "prefer",
    "if-match",
    "if-none-exist",
    "if-none-match",
    "if-modified-since",
    "x-requested-with",
]
CORS_ALLOW_ALL_ORIGINS = False  # smart.cors decides origins
CORS_ALLOW_CREDENTIALS = False

# Background work (bulk export): django-tasks with its database backend, run by `manage.py db_worker`.
# A deployment can point this at a distributed queue backend instead.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    # oauthlib logs request bodies (codes, secrets, assertions) at DEBUG: keep it quiet.
    "loggers": {"oauthlib": {"level": "WARNING"}, "oauth2_provider": {"level": "WARNING"}},
}
