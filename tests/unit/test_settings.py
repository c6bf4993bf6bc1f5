"""Settings come from PORTAL_* variables with embedded defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from infra.settings import Settings, get_settings, to_async_url, to_sync_url


def test_embedded_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("PORTAL_DATABASE_URL", "PORTAL_SECRET_KEY", "PORTAL_STORAGE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PORTAL_VAR_DIR", str(tmp_path))
    settings = Settings.from_env()
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'portal.db'}"
    assert settings.storage_dir == tmp_path / "storage"
    assert not settings.is_postgres
    assert settings.default_locale == "zh_CN"
    key = settings.secret_key
    assert len(key) > 40
    assert Settings.from_env().secret_key == key, "the generated key is kept"
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0


def test_overrides_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_DATABASE_URL", "postgresql+asyncpg://app@db/portal")
    monkeypatch.setenv("PORTAL_LOGIN_MAX_FAILURES", "7")
    settings = Settings.from_env()
    assert settings.is_postgres
    assert settings.sync_database_url == "postgresql+psycopg://app@db/portal"
    assert settings.login_max_failures == 7
    assert "secret_key" not in settings.describe()
    monkeypatch.setenv("PORTAL_LOGIN_MAX_FAILURES", "many")
    with pytest.raises(ValueError, match="PORTAL_LOGIN_MAX_FAILURES"):
        Settings.from_env()


def test_url_conversions_round_trip() -> None:
    for url in ("sqlite+aiosqlite:////tmp/x.db", "postgresql+asyncpg://u@h/d"):
        assert to_async_url(to_sync_url(url)) == url


def test_accessor_is_cached() -> None:
    assert get_settings() is get_settings()


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    undocumented = [
        f"PORTAL_{field.name.upper()}"
        for field in dataclasses.fields(Settings)
        if f"`PORTAL_{field.name.upper()}`" not in readme
    ]
    assert undocumented == [], f"add these to the README's configuration table: {undocumented}"
