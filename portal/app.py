"""The application factory: everything is wired by :class:`portal.plugin.PortalPlugin`."""

from __future__ import annotations

from litestar import Litestar

from infra.settings import Settings, get_settings
from portal.plugin import PortalPlugin


def create_app(settings: Settings | None = None) -> Litestar:
    return Litestar(plugins=[PortalPlugin(settings or get_settings())])
