"""HES Core configuration, read from the environment with defaults that just work."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


def _data_dir() -> Path:
    path = Path(os.environ.get("HES_DATA_DIR", BASE_DIR / "instance")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _persistent_secret(data_dir: Path, name: str, nbytes: int = 32) -> str:
    """Return a secret kept in the data dir, generating it on first use (never in the repo)."""
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _host_port(raw: str, default_port: int) -> tuple[str, int]:
    host, _, port = raw.rpartition(":")
    return (host or "0.0.0.0", int(port or default_port))


class Config:
    """Settings for one HES process; every value can be set from the environment."""

    def __init__(self) -> None:
        data_dir = _data_dir()
        self.HES_DATA_DIR = str(data_dir)
        self.SECRET_KEY = os.environ.get("SECRET_KEY") or _persistent_secret(data_dir, "secret_key")
        # Key that encrypts meter secrets (LLS passwords, HLS keys) at rest.
        self.HES_SECRETS_KEY = os.environ.get("HES_SECRETS_KEY") or _persistent_secret(
            data_dir, "secrets_key"
        )
        self.SQLALCHEMY_DATABASE_URI = os.environ.get(
            "DATABASE_URL", f"sqlite:///{data_dir / 'hes.db'}"
        )
        self.SQLALCHEMY_TRACK_MODIFICATIONS = False
        # Every task worker greenlet may hold a connection through a meter session; the pool leaves room
        # beyond them for the comms node's look-ups and the web requests of the same process (the
        # 5 + 10 default ran dry at 5,000 dial-in meters: bench_soak).
        workers = int(os.environ.get("HES_TASK_WORKERS", "16"))
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "pool_size": workers + 8, "max_overflow": 16}
        self.HES_REDIS_URL = os.environ.get("HES_REDIS_URL", "")
        self.HES_WEB_HOST = os.environ.get("HES_WEB_HOST", "127.0.0.1")
        self.HES_WEB_PORT = int(os.environ.get("HES_WEB_PORT", "5000"))
        self.HES_METER_LISTEN = os.environ.get("HES_METER_LISTEN", "0.0.0.0:4059")
        self.HES_PUSH_LISTEN = os.environ.get("HES_PUSH_LISTEN", "")
        self.HES_METER_ADDRESS = os.environ.get("HES_METER_ADDRESS", "")
        self.HES_TIMEZONE = os.environ.get("HES_TIMEZONE", "UTC")
        self.HES_NODE_ID = os.environ.get("HES_NODE_ID", "node-1")
        self.HES_DEMO_METERS = int(os.environ.get("HES_DEMO_METERS", "50"))
        self.HES_COMMS = os.environ.get("HES_COMMS", "on")
        self.HES_MISSED_HEARTBEATS = int(os.environ.get("HES_MISSED_HEARTBEATS", "3"))
        self.HES_HEARTBEAT_SECONDS = int(os.environ.get("HES_HEARTBEAT_SECONDS", "60"))
        # How often each process records its roles, event-loop lag, RSS and open files (System › Comms Nodes).
        self.HES_PROCESS_HEARTBEAT_SECONDS = float(os.environ.get("HES_PROCESS_HEARTBEAT_SECONDS", "15"))
        self.HES_GC_FREEZE = os.environ.get("HES_GC_FREEZE", "on")
        self.HES_GC_THAW_HOURS = float(os.environ.get("HES_GC_THAW_HOURS", "6"))

        # Flask-AppBuilder
        self.APP_NAME = "HES Core"
        self.APP_THEME = os.environ.get("HES_THEME", "")
        self.APP_ICON = "/static/hes/img/logo.svg"
        self.FAB_API_SWAGGER_UI = True
        self.FAB_API_MAX_PAGE_SIZE = 500
        self.FAB_ADD_SECURITY_API = True
        self.FAB_UPDATE_PERMS = True
        self.FAB_ROLES_MAPPING = {}
        self.FAB_SECURITY_MANAGER_CLASS = "app.security.HesSecurityManager"
        self.FAB_INDEX_VIEW = "app.views.home.HomeView"
        self.FAB_BASE_TEMPLATE = "hes/base.html"
        self.AUTH_TYPE = 1  # AUTH_DB
        self.AUTH_ROLE_ADMIN = "Admin"
        self.AUTH_ROLE_PUBLIC = "Public"
        self.AUTH_USER_REGISTRATION = False
        self.AUTH_RATE_LIMITED = True
        self.AUTH_RATE_LIMIT = os.environ.get("HES_LOGIN_RATE_LIMIT", "10 per 5 minute")
        self.RATELIMIT_ENABLED = _bool("HES_RATELIMIT_ENABLED", True)
        self.RATELIMIT_STORAGE_URI = self.HES_REDIS_URL or "memory://"
        # A lost Redis must not stop sign-ins: limits fall back to per-process memory and storage errors are
        # swallowed (logged by Flask-Limiter) until Redis answers again.
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        self.RATELIMIT_SWALLOW_ERRORS = True
        self.WTF_CSRF_ENABLED = True
        self.WTF_CSRF_TIME_LIMIT = None
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = _bool("HES_SECURE_COOKIES", False)
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.JWT_ACCESS_TOKEN_EXPIRES = int(os.environ.get("HES_JWT_SECONDS", "3600"))
        self.MAX_CONTENT_LENGTH = int(os.environ.get("HES_MAX_UPLOAD_MB", "64")) * 1024 * 1024

        # i18n: translations/ sits at the top level, so give Babel an absolute path.
        self.BABEL_DEFAULT_LOCALE = "en"
        self.BABEL_TRANSLATION_DIRECTORIES = str(BASE_DIR / "translations")
        self.LANGUAGES = {"en": {"flag": "gb", "name": "English"}, "fr": {"flag": "fr", "name": "Français"}}

        # Every other HES_* variable (tuning knobs such as HES_TASK_WORKERS, HES_RESPONSE_TIMEOUT,
        # HES_ON_TIME_HOURS) passes through as a string; the code that reads it converts it.
        for key, value in os.environ.items():
            if key.startswith("HES_") and not hasattr(self, key):
                setattr(self, key, value)

    @property
    def meter_listen(self) -> tuple[str, int]:
        """The (host, port) the meter listener binds."""
        return _host_port(self.HES_METER_LISTEN, 4059)

    def as_dict(self) -> dict:
        """All upper-case settings as a dict for ``app.config``."""
        return {k: v for k, v in vars(self).items() if k.isupper()}
