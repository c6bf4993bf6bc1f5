"""The full schema: every package's models, named in one place for Alembic and for checks."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from infra.db import Base

# Modules that define tables. Named as strings because infra sits below the packages it lists.
MODEL_MODULES = (
    "infra.audit",
    "infra.uploads",
    "infra.tasks",
    "infra.outbox",
    "tenants.models",
    "onboarding.models",
    "training.models",
    "geofence.models",
    "permits.models",
    "scoring.models",
)


def load_models() -> MetaData:
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return Base.metadata
