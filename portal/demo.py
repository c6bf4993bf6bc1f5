"""The demo tenant: a Chinese chemical group with three plants and a user for every host role.

Seeding is idempotent: a second run finds everything in place and only repairs what is missing.
Passwords are generated on first run and kept in ``var/demo-logins.json``.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from infra.db import Database
from infra.security import verify_password
from infra.settings import Settings
from infra.tenancy import tenant_scope
from tenants import services
from tenants.models import Plant, Role, TenantStatus

DEMO_SLUG = "donghai-chem"
DEMO_NAME = "东海化工集团"

DEMO_PLANTS = (
    ("NB01", "宁波石化基地", "Asia/Shanghai", 29.9405, 121.8462),
    ("NJ01", "南京化学工业园厂区", "Asia/Shanghai", 32.2489, 118.7716),
    ("HZ01", "惠州大亚湾新材料厂", "Asia/Shanghai", 22.7368, 114.5486),
)

# (role, name, e-mail, phone, plant code or None for group-wide)
DEMO_USERS = (
    (Role.TENANT_ADMIN, "王建国", "wang.jianguo@donghai-chem.example", "13800000001", None),
    (Role.HQ_ANALYST, "周婷", "zhou.ting@donghai-chem.example", "13800000002", None),
    (Role.PLANT_MANAGER, "张伟", "zhang.wei@donghai-chem.example", "13800000003", "NB01"),
    (Role.EHS_OFFICER, "李国强", "li.guoqiang@donghai-chem.example", "13800000004", "NB01"),
    (Role.UNIT_SUPERVISOR, "陈刚", "chen.gang@donghai-chem.example", "13800000005", "NB01"),
    (Role.GUARDIAN, "赵磊", "zhao.lei@donghai-chem.example", "13800000006", "NB01"),
    (Role.EHS_OFFICER, "刘洋", "liu.yang@donghai-chem.example", "13800000007", "NJ01"),
)


@dataclass(frozen=True)
class DemoLogin:
    role: str
    tenant: str
    email: str
    password: str


def _known_passwords(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        return {item["email"]: item["password"] for item in json.loads(path.read_text())}
    except (ValueError, KeyError, TypeError):
        return {}


async def _ensure_plants(session: AsyncSession) -> dict[str, Plant]:
    existing = {plant.code: plant for plant in await services.list_plants(session)}
    for code, name, timezone, latitude, longitude in DEMO_PLANTS:
        if code not in existing:
            existing[code] = await services.add_plant(
                session,
                code=code,
                name=name,
                timezone=timezone,
                latitude=latitude,
                longitude=longitude,
            )
    return existing


async def _ensure_users(
    session: AsyncSession, plants: dict[str, Plant], known: dict[str, str]
) -> list[DemoLogin]:
    logins = []
    for role, name, email, phone, plant_code in DEMO_USERS:
        password = known.get(email) or secrets.token_urlsafe(9)
        user = await services.user_by_email(session, email)
        if user is None:
            user = await services.create_user(
                session, email=email, name=name, password=password, phone=phone
            )
        elif not verify_password(user.password_hash, password):
            await services.set_password(session, user, password)
        plant_id = plants[plant_code].id if plant_code else None
        await services.grant_role(session, user_id=user.id, role=role, plant_id=plant_id)
        logins.append(DemoLogin(role.value, DEMO_SLUG, email, password))
    return logins


async def seed_demo(settings: Settings) -> tuple[list[DemoLogin], Path]:
    logins_path = settings.var_dir / "demo-logins.json"
    database = Database.from_settings(settings)
    try:
        async with database.session() as session:
            tenant = await services.tenant_by_slug(session, DEMO_SLUG)
            if tenant is None:
                tenant = await services.create_tenant(
                    session, slug=DEMO_SLUG, name=DEMO_NAME, status=TenantStatus.ACTIVE
                )
            with tenant_scope(tenant.id):
                plants = await _ensure_plants(session)
                logins = await _ensure_users(session, plants, _known_passwords(logins_path))
            await session.commit()
    finally:
        await database.dispose()
    logins_path.parent.mkdir(parents=True, exist_ok=True)
    logins_path.write_text(
        json.dumps([asdict(login) for login in logins], ensure_ascii=False, indent=2) + "\n"
    )
    logins_path.chmod(0o600)
    return logins, logins_path
