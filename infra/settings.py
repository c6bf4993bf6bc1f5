"""Settings read from ``PORTAL_*`` environment variables, with embedded defaults.

The defaults run the whole product on one machine with no services: an SQLite file and a local
storage directory under ``var/``. Every variable is listed in the README's configuration table.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

_PREFIX = "PORTAL_"
_T = TypeVar("_T")


def _env(name: str, default: str) -> str:
    return os.environ.get(_PREFIX + name, default)


def _env_parsed(name: str, default: _T, parse: Callable[[str], _T], expected: str) -> _T:
    raw = os.environ.get(_PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ValueError(f"{_PREFIX}{name} must be {expected}, got {raw!r}") from exc


def _env_int(name: str, default: int) -> int:
    return _env_parsed(name, default, int, "an integer")


def _env_float(name: str, default: float) -> float:
    return _env_parsed(name, default, float, "a number")


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(_PREFIX + name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    var_dir: Path
    database_url: str
    migration_database_url: str
    db_app_role: str
    db_pool_size: int
    secret_key: str
    field_encryption_key: str
    base_url: str
    base_domain: str
    storage_dir: Path
    s3_bucket: str
    s3_endpoint_url: str
    s3_region: str
    s3_access_key_id: str
    s3_secret_access_key: str
    redis_url: str
    celery_broker_url: str
    celery_result_backend: str
    celery_key_prefix: str
    celery_visibility_timeout: int
    outbox_relay_seconds: float
    outbox_max_attempts: int
    outbox_backoff_seconds: float
    outbox_redispatch_seconds: float
    default_locale: str
    session_max_age_seconds: int
    api_token_ttl_seconds: int
    login_max_failures: int
    login_lockout_seconds: int
    login_rate_per_minute: int
    identity_cache_seconds: float
    smtp_host: str
    smtp_port: int
    smtp_username: str
    smtp_password: str
    smtp_starttls: bool
    smtp_from: str
    sms_provider: str
    sms_aliyun_endpoint: str
    sms_tencent_endpoint: str
    stripe_secret_key: str
    stripe_webhook_secret: str
    stripe_api_base: str
    billing_plans: str
    billing_grace_days: int
    trial_days: int
    tenant_deletion_grace_days: int
    demo_permits: str
    ping_batch_limit: int
    ping_offline_window_hours: int
    ping_future_skew_seconds: int
    ping_retention_days: int
    ping_partitions_ahead_days: int
    map_tile_url: str
    map_tile_attribution: str
    map_coordinates: str
    debug: bool

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def sync_database_url(self) -> str:
        return to_sync_url(self.database_url)

    @property
    def sync_migration_database_url(self) -> str:
        return to_sync_url(self.migration_database_url)

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    @classmethod
    def from_env(cls) -> Settings:
        var_dir = Path(_env("VAR_DIR", "var")).resolve()
        database_url = _env("DATABASE_URL", f"sqlite+aiosqlite:///{var_dir / 'portal.db'}")
        return cls(
            var_dir=var_dir,
            database_url=database_url,
            migration_database_url=_env("MIGRATION_DATABASE_URL", database_url),
            db_app_role=_env("DB_APP_ROLE", "portal_app"),
            db_pool_size=_env_int("DB_POOL_SIZE", 20),
            secret_key=_env("SECRET_KEY", "") or _local_secret_key(var_dir),
            field_encryption_key=_env("FIELD_ENCRYPTION_KEY", ""),
            base_url=_env("BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
            base_domain=_env("BASE_DOMAIN", ""),
            storage_dir=Path(_env("STORAGE_DIR", str(var_dir / "storage"))).resolve(),
            s3_bucket=_env("S3_BUCKET", ""),
            s3_endpoint_url=_env("S3_ENDPOINT_URL", ""),
            s3_region=_env("S3_REGION", "us-east-1"),
            s3_access_key_id=_env("S3_ACCESS_KEY_ID", ""),
            s3_secret_access_key=_env("S3_SECRET_ACCESS_KEY", ""),
            redis_url=_env("REDIS_URL", ""),
            celery_broker_url=_env("CELERY_BROKER_URL", ""),
            celery_result_backend=_env("CELERY_RESULT_BACKEND", ""),
            celery_key_prefix=_env("CELERY_KEY_PREFIX", ""),
            celery_visibility_timeout=_env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
            outbox_relay_seconds=_env_float("OUTBOX_RELAY_SECONDS", 5.0),
            outbox_max_attempts=_env_int("OUTBOX_MAX_ATTEMPTS", 8),
            outbox_backoff_seconds=_env_float("OUTBOX_BACKOFF_SECONDS", 30.0),
            outbox_redispatch_seconds=_env_float("OUTBOX_REDISPATCH_SECONDS", 300.0),
            default_locale=_env("DEFAULT_LOCALE", "zh_CN"),
            session_max_age_seconds=_env_int("SESSION_MAX_AGE_SECONDS", 8 * 3600),
            api_token_ttl_seconds=_env_int("API_TOKEN_TTL_SECONDS", 30 * 24 * 3600),
            login_max_failures=_env_int("LOGIN_MAX_FAILURES", 5),
            login_lockout_seconds=_env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60),
            login_rate_per_minute=_env_int("LOGIN_RATE_PER_MINUTE", 30),
            identity_cache_seconds=_env_float("IDENTITY_CACHE_SECONDS", 2.0),
            smtp_host=_env("SMTP_HOST", ""),
            smtp_port=_env_int("SMTP_PORT", 587),
            smtp_username=_env("SMTP_USERNAME", ""),
            smtp_password=_env("SMTP_PASSWORD", ""),
            smtp_starttls=_env_bool("SMTP_STARTTLS", True),
            smtp_from=_env("SMTP_FROM", "承包商协同管理平台 <no-reply@localhost>"),
            sms_provider=_env("SMS_PROVIDER", "log"),
            sms_aliyun_endpoint=_env("SMS_ALIYUN_ENDPOINT", "") or "https://dysmsapi.aliyuncs.com/",
            sms_tencent_endpoint=(
                _env("SMS_TENCENT_ENDPOINT", "") or "https://sms.tencentcloudapi.com/"
            ),
            stripe_secret_key=_env("STRIPE_SECRET_KEY", ""),
            stripe_webhook_secret=_env("STRIPE_WEBHOOK_SECRET", ""),
            stripe_api_base=_env("STRIPE_API_BASE", ""),
            billing_plans=_env("BILLING_PLANS", "{}"),
            billing_grace_days=_env_int("BILLING_GRACE_DAYS", 14),
            trial_days=_env_int("TRIAL_DAYS", 30),
            tenant_deletion_grace_days=_env_int("TENANT_DELETION_GRACE_DAYS", 14),
            demo_permits=_env("DEMO_PERMITS", "full"),
            ping_batch_limit=_env_int("PING_BATCH_LIMIT", 1000),
            ping_offline_window_hours=_env_int("PING_OFFLINE_WINDOW_HOURS", 72),
            ping_future_skew_seconds=_env_int("PING_FUTURE_SKEW_SECONDS", 120),
            ping_retention_days=_env_int("PING_RETENTION_DAYS", 400),
            ping_partitions_ahead_days=_env_int("PING_PARTITIONS_AHEAD_DAYS", 14),
            map_tile_url=_env("MAP_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png"),
            map_tile_attribution=_env("MAP_TILE_ATTRIBUTION", "© OpenStreetMap"),
            map_coordinates=_env("MAP_COORDINATES", "wgs84"),
            debug=_env_bool("DEBUG", False),
        )

    def describe(self) -> dict[str, str]:
        """Non-secret settings, for logs and diagnostics."""
        hidden = {
            "secret_key",
            "field_encryption_key",
            "database_url",
            "migration_database_url",
            "redis_url",
            "celery_broker_url",
            "celery_result_backend",
            "s3_access_key_id",
            "s3_secret_access_key",
            "smtp_password",
            "stripe_secret_key",
            "stripe_webhook_secret",
        }
        return {f.name: str(getattr(self, f.name)) for f in fields(self) if f.name not in hidden}


def to_sync_url(url: str) -> str:
    """The synchronous driver URL for the same database (Alembic and workers use it)."""
    if url.startswith("sqlite+aiosqlite://"):
        return "sqlite://" + url.removeprefix("sqlite+aiosqlite://")
    if url.startswith("postgresql+asyncpg://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql+asyncpg://")
    return url


def to_async_url(url: str) -> str:
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
    if url.startswith("postgresql+psycopg://"):
        return "postgresql+asyncpg://" + url.removeprefix("postgresql+psycopg://")
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    return url


def _local_secret_key(var_dir: Path) -> str:
    """A key generated once per installation, so the embedded default never ships a secret."""
    path = var_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
