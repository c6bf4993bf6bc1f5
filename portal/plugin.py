"""The one init plugin that wires the application: settings, database, identity, sessions,
CSRF, rate limits, templates, translations, OpenAPI, errors and routes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar.config.app import AppConfig
from litestar.config.csrf import CSRFConfig
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.plugins import InitPluginProtocol
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.stores.base import Store
from litestar.stores.file import FileStore
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.template.config import TemplateConfig

from infra.db import Database
from infra.i18n import N_, current_locale, gettext, ngettext
from infra.settings import Settings
from infra.storage import storage_from_settings
from portal import health
from portal.api.admin import OutboxAdminController
from portal.api.auth import AuthController
from portal.api.billing import BillingController
from portal.api.geofence import (
    GeofencePolicyController,
    SupervisionController,
    TrackingController,
)
from portal.api.onboarding import (
    ContractorController,
    InvitationController,
    OnboardingController,
    RegistrationController,
    ReviewQueueController,
)
from portal.api.permits import (
    ChainPolicyController,
    PermitCalendarController,
    PermitController,
    ZoneController,
)
from portal.api.scoring import (
    FindingController,
    RatingController,
    ReviewController,
    ScoringPolicyController,
)
from portal.api.signup import SignupController, UserInvitationController
from portal.api.tenants import MeController, PlantController, UserController
from portal.api.training import (
    BriefingController,
    InductionAuthoringController,
    InductionSignatureController,
    InductionTakingController,
)
from portal.api.uploads import UploadController
from portal.dependencies import DEPENDENCIES
from portal.errors import EXCEPTION_HANDLERS
from portal.guards import billing_allows_writes
from portal.identity import API_PREFIX, IdentityMiddleware, company_cache, identity_cache
from portal.sessions import RotatingSessionConfig
from portal.web.alerts import AlertPages
from portal.web.billing import BillingPages
from portal.web.exports import ExportPages
from portal.web.files import download_file
from portal.web.hq import HqPages
from portal.web.maps import MapPages
from portal.web.onboarding import OnboardingPages
from portal.web.pages import PageController
from portal.web.permit_admin import PermitAdminPages
from portal.web.permits import PermitPages
from portal.web.personal_data import PersonalDataPages
from portal.web.scorecard import ScorecardPages
from portal.web.scoring import ScoringPages
from portal.web.signup import InvitationPages, SignupPages, UserAdminPages
from portal.web.tenant_admin import TenantAdminPages
from portal.web.tenant_data import TenantDataPages
from portal.web.timeline import TimelinePages
from portal.web.tracking import TrackingPages
from portal.web.training import TrainingPages
from portal.web.verify import VerificationController
from tenants.entitlements import BillingPolicy

PACKAGE_DIR = Path(__file__).parent
# Registration, sign-up and joining by invitation create an account with a password, so they
# are rate limited like signing in.
SIGN_IN_PATHS = frozenset(
    {"/login", "/api/v1/auth/token", "/api/v1/contractors/register", "/signup", "/api/v1/signup"}
)
ROLE_LABELS = {
    "tenant_admin": N_("Tenant administrator"),
    "hq_analyst": N_("HQ analyst"),
    "plant_manager": N_("Plant manager"),
    "ehs_officer": N_("EHS officer"),
    "unit_supervisor": N_("Unit supervisor"),
    "guardian": N_("Guardian"),
    "contractor_admin": N_("Contractor administrator"),
    "contractor_worker": N_("Contractor worker"),
}


def _jinja_environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(PACKAGE_DIR / "templates"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,
    )
    environment.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    environment.globals["current_locale"] = current_locale
    environment.globals["role_label"] = lambda role: gettext(ROLE_LABELS.get(str(role), str(role)))
    environment.filters["local_time"] = lambda value, fmt="%Y-%m-%d %H:%M": (
        value.strftime(fmt) if isinstance(value, datetime) else ""
    )
    environment.filters["in_zone"] = _in_zone
    return environment


# Lists that span plants (the review queue, invitations) show China Standard Time, the zone of
# every plant the product serves today; a single plant's pages use that plant's own zone.
GROUP_TIMEZONE = "Asia/Shanghai"


def _in_zone(value: object, zone: str = GROUP_TIMEZONE) -> object:
    """Stored UTC instants, shown on a plant's clock."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(ZoneInfo(zone))
    return value


def _stores(settings: Settings) -> dict[str, Store]:
    if settings.redis_url:
        root = RedisStore.with_client(url=settings.redis_url, namespace="portal")
        return {
            "sessions": root.with_namespace("sessions"),
            "rate_limit": root.with_namespace("rate_limit"),
        }
    return {
        # A fresh installation has no var/sessions yet; without it every sign-in would fail.
        "sessions": FileStore(settings.var_dir / "sessions", create_directories=True),
        "rate_limit": MemoryStore(),
    }


async def _is_sign_in_attempt(request: Any) -> bool:
    """Asked on every request; a plain function would be sent to a worker thread each time."""
    if request.method != "POST":
        return False
    path = request.scope["path"]
    joining = "/invitations/" in path and "/admin/" not in path
    is_registration_page = path.startswith("/t/") and (path.endswith("/register") or joining)
    joining_by_api = path.startswith("/api/v1/user-invitations/") and path.endswith("/accept")
    return path in SIGN_IN_PATHS or is_registration_page or joining_by_api


class PortalPlugin(InitPluginProtocol):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        settings = self.settings
        database = Database.from_settings(settings)
        app_config.state.update(
            {
                "settings": settings,
                "database": database,
                "storage": storage_from_settings(settings),
                "billing": BillingPolicy.from_settings(settings),
                "identities": identity_cache(settings),
                "companies": company_cache(settings),
            }
        )
        app_config.debug = settings.debug
        app_config.stores = _stores(settings)

        session_config = RotatingSessionConfig(
            max_age=settings.session_max_age_seconds,
            secure=settings.secure_cookies,
            samesite="lax",
            httponly=True,
            key="portal_session",
            exclude=[API_PREFIX, "/static", "/files", "/healthz", "/readyz", "/schema"],
        )
        rate_limit = RateLimitConfig(
            rate_limit=("minute", settings.login_rate_per_minute),
            check_throttle_handler=_is_sign_in_attempt,
        )
        app_config.middleware.extend(
            [session_config.middleware, IdentityMiddleware(), rate_limit.middleware]
        )
        app_config.csrf_config = CSRFConfig(
            secret=settings.secret_key,
            cookie_name="portal_csrf",
            cookie_secure=settings.secure_cookies,
            exclude=[API_PREFIX],
        )
        app_config.template_config = TemplateConfig(
            engine=JinjaTemplateEngine.from_environment(_jinja_environment())
        )
        app_config.openapi_config = OpenAPIConfig(
            title="Contractor collaboration portal API",
            version="1",
            description=(
                "Admission, training, supervised work and evaluation of contractors "
                "(准入—培训—作业—评价). Authenticate with `POST /api/v1/auth/token` and send "
                "`Authorization: Bearer <token>`. Errors answer "
                '`{"status_code", "detail", "errors": [{"field", "rule", "message"}]}`; '
                "another tenant's ids answer 404."
            ),
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
        )
        app_config.dependencies.update(DEPENDENCIES)
        app_config.exception_handlers.update(EXCEPTION_HANDLERS)
        app_config.guards.append(billing_allows_writes)
        app_config.route_handlers.extend(
            [
                health.healthz,
                health.readyz,
                AuthController,
                MeController,
                PlantController,
                UserController,
                SignupController,
                UserInvitationController,
                OutboxAdminController,
                BillingController,
                UploadController,
                RegistrationController,
                ContractorController,
                ReviewQueueController,
                OnboardingController,
                InvitationController,
                InductionAuthoringController,
                InductionTakingController,
                InductionSignatureController,
                BriefingController,
                ZoneController,
                PermitController,
                ChainPolicyController,
                PermitCalendarController,
                PageController,
                OnboardingPages,
                TrainingPages,
                PermitPages,
                PermitAdminPages,
                TenantAdminPages,
                BillingPages,
                SignupPages,
                UserAdminPages,
                InvitationPages,
                TimelinePages,
                TrackingController,
                AlertPages,
                SupervisionController,
                GeofencePolicyController,
                RatingController,
                FindingController,
                ReviewController,
                ScoringPolicyController,
                ScoringPages,
                ScorecardPages,
                MapPages,
                HqPages,
                ExportPages,
                TenantDataPages,
                PersonalDataPages,
                TrackingPages,
                VerificationController,
                download_file,
                create_static_files_router(path="/static", directories=[PACKAGE_DIR / "static"]),
            ]
        )
        app_config.on_shutdown.append(database.dispose)
        return app_config
