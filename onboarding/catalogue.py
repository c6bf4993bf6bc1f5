"""What admission knows by name: the eight GB 30871 work types, the company documents, and the
certificate kinds with the work types each one qualifies a worker for.

Labels are English msgids, translated where they are shown.
"""

from __future__ import annotations

import enum
from types import MappingProxyType

from infra.i18n import N_


class WorkType(enum.StrEnum):
    """GB 30871-2022 §1: the eight kinds of special work."""

    HOT_WORK = "hot_work"
    CONFINED_SPACE = "confined_space"
    BLIND_PLATE = "blind_plate"
    HEIGHT = "height"
    LIFTING = "lifting"
    TEMP_POWER = "temp_power"
    EXCAVATION = "excavation"
    ROAD_CLOSURE = "road_closure"


WORK_TYPE_LABELS = MappingProxyType(
    {
        WorkType.HOT_WORK: N_("Hot work"),
        WorkType.CONFINED_SPACE: N_("Confined space entry"),
        WorkType.BLIND_PLATE: N_("Blind plate insertion and removal"),
        WorkType.HEIGHT: N_("Work at height"),
        WorkType.LIFTING: N_("Lifting"),
        WorkType.TEMP_POWER: N_("Temporary power"),
        WorkType.EXCAVATION: N_("Excavation"),
        WorkType.ROAD_CLOSURE: N_("Road closure"),
    }
)


class DocumentKind(enum.StrEnum):
    BUSINESS_LICENCE = "business_licence"
    SAFETY_PRODUCTION_LICENCE = "safety_production_licence"
    INSURANCE = "insurance"


DOCUMENT_LABELS = MappingProxyType(
    {
        DocumentKind.BUSINESS_LICENCE: N_("Business licence"),
        DocumentKind.SAFETY_PRODUCTION_LICENCE: N_("Safety production licence"),
        DocumentKind.INSURANCE: N_("Insurance policy"),
    }
)

# A company may not work without these; one that expires suspends an admitted contractor.
# Insurance is checked at review and reminded of, but a lapse does not stop the company by itself.
REQUIRED_DOCUMENTS = frozenset(
    {DocumentKind.BUSINESS_LICENCE, DocumentKind.SAFETY_PRODUCTION_LICENCE}
)


class CertificateKind(enum.StrEnum):
    """特种作业操作证 and 特种设备作业人员证 categories that GB 30871 §4.9 asks for."""

    WELDING_CUTTING = "welding_cutting"
    LOW_VOLTAGE_ELECTRICIAN = "low_voltage_electrician"
    HIGH_VOLTAGE_ELECTRICIAN = "high_voltage_electrician"
    SCAFFOLDING = "scaffolding"
    HIGH_ALTITUDE_INSTALLATION = "high_altitude_installation"
    CRANE_OPERATOR = "crane_operator"
    CRANE_SIGNALLER = "crane_signaller"
    CONFINED_SPACE = "confined_space"


CERTIFICATE_LABELS = MappingProxyType(
    {
        CertificateKind.WELDING_CUTTING: N_("Welding and thermal cutting"),
        CertificateKind.LOW_VOLTAGE_ELECTRICIAN: N_("Low-voltage electrician"),
        CertificateKind.HIGH_VOLTAGE_ELECTRICIAN: N_("High-voltage electrician"),
        CertificateKind.SCAFFOLDING: N_("Scaffolding erection at height"),
        CertificateKind.HIGH_ALTITUDE_INSTALLATION: N_(
            "Installation, maintenance and dismantling at height"
        ),
        CertificateKind.CRANE_OPERATOR: N_("Crane operator"),
        CertificateKind.CRANE_SIGNALLER: N_("Crane signaller and rigger"),
        CertificateKind.CONFINED_SPACE: N_("Confined space work"),
    }
)

# Any one certificate of the listed kinds qualifies a worker for the work type. Blind plates,
# excavation and road closures call for no special-operation certificate in GB 30871 §4.9: an
# admitted company's verified worker qualifies.
QUALIFYING_CERTIFICATES = MappingProxyType(
    {
        WorkType.HOT_WORK: frozenset({CertificateKind.WELDING_CUTTING}),
        WorkType.CONFINED_SPACE: frozenset({CertificateKind.CONFINED_SPACE}),
        WorkType.BLIND_PLATE: frozenset(),
        WorkType.HEIGHT: frozenset(
            {CertificateKind.SCAFFOLDING, CertificateKind.HIGH_ALTITUDE_INSTALLATION}
        ),
        WorkType.LIFTING: frozenset(
            {CertificateKind.CRANE_OPERATOR, CertificateKind.CRANE_SIGNALLER}
        ),
        WorkType.TEMP_POWER: frozenset(
            {CertificateKind.LOW_VOLTAGE_ELECTRICIAN, CertificateKind.HIGH_VOLTAGE_ELECTRICIAN}
        ),
        WorkType.EXCAVATION: frozenset(),
        WorkType.ROAD_CLOSURE: frozenset(),
    }
)
