"""The permit's PDF, from a sample context (no database): for each of the eight work types one
A4 page in the Appendix A manner — the type's title and level, the number, its own fields — and
a QR code that is also a link to the permit's verification page."""

from __future__ import annotations

import io
from typing import Any

import pypdf
import pytest

from infra.documents import render_pdf
from infra.qr import qr_svg, svg_data_uri
from onboarding.catalogue import WorkType
from permits.catalogue import CHECKLISTS
from permits.records import PDF_TEMPLATE

VERIFICATION_URL = "https://portal.example.cn/v/eyJ0IjoicGVybWl0In0.sample-permit-token"

TITLES = {
    WorkType.HOT_WORK: "动火安全作业票",
    WorkType.CONFINED_SPACE: "受限空间安全作业票",
    WorkType.BLIND_PLATE: "盲板抽堵安全作业票",
    WorkType.HEIGHT: "高处安全作业票",
    WorkType.LIFTING: "吊装安全作业票",
    WorkType.TEMP_POWER: "临时用电安全作业票",
    WorkType.EXCAVATION: "动土安全作业票",
    WorkType.ROAD_CLOSURE: "断路安全作业票",
}
PREFIX = {
    WorkType.HOT_WORK: "DH",
    WorkType.CONFINED_SPACE: "SX",
    WorkType.BLIND_PLATE: "MB",
    WorkType.HEIGHT: "GC",
    WorkType.LIFTING: "DZ",
    WorkType.TEMP_POWER: "LD",
    WorkType.EXCAVATION: "DT",
    WorkType.ROAD_CLOSURE: "DL",
}
# (stored level, what the form prints; None: the type has no levels) and a field of its own.
CASES: dict[WorkType, tuple[str | None, str | None, dict[str, Any], str]] = {
    WorkType.HOT_WORK: (
        "level1",
        "一级动火",
        {
            "work_type": "hot_work",
            "requested_level": "level2",
            "method": "electric_welding",
            "outdoor": True,
            "wind_force": 3,
            "oxygen_equipment": False,
        },
        "电焊",
    ),
    WorkType.CONFINED_SPACE: (
        None,
        None,
        {
            "work_type": "confined_space",
            "space_name": "T-201 原料罐",
            "medium": "石脑油",
            "oxygen_rich": False,
        },
        "T-201原料罐",
    ),
    WorkType.BLIND_PLATE: (
        None,
        None,
        {
            "work_type": "blind_plate",
            "pipeline_id": "P-1203 蒸汽管线",
            "blind_id": "MB-017",
            "action": "insert",
            "medium": "蒸汽",
            "temperature_c": 180.0,
            "pressure_mpa": 1.0,
            "blind_material": "20#钢",
            "blind_size": "DN150 PN16",
        },
        "堵盲板",
    ),
    WorkType.HEIGHT: (
        "grade_3",
        "Ⅲ级",
        {
            "work_type": "height",
            "height_m": 18.5,
            "hazards": ["poor_light"],
            "has_communication": False,
            "wind_force": 2,
            "dense_fog": False,
        },
        "18.5m",
    ),
    WorkType.LIFTING: (
        "level2",
        "二级",
        {
            "work_type": "lifting",
            "load_t": 56.0,
            "crane": "QY100K 汽车吊",
            "operator_id": "2b1d3c4e-0000-4000-8000-000000000001",
            "signaller_id": "2b1d3c4e-0000-4000-8000-000000000002",
            "rigger_ids": [],
            "operator_name": "钱大海",
            "signaller_name": "孙小明",
            "rigger_names": ["李四"],
        },
        "钱大海",
    ),
    WorkType.TEMP_POWER: (
        None,
        None,
        {
            "work_type": "temp_power",
            "source": "2# 配电室 AP-3 回路",
            "voltage_v": 380,
            "load_kw": 22.0,
            "served_permit_number": "P1-DH-20261128-0001",
            "special_case": False,
        },
        "P1-DH-20261128-0001",
    ),
    WorkType.EXCAVATION: (
        None,
        None,
        {
            "work_type": "excavation",
            "depth_m": 1.5,
            "extent": "罐区东侧 3 m × 6 m",
            "sketch_id": None,
            "hazardous_area": True,
            "near_buried_hazardous_line": False,
        },
        "1.5m",
    ),
    WorkType.ROAD_CLOSURE: (
        None,
        None,
        {
            "work_type": "road_closure",
            "road_section": "厂区三号路 化工二路至罐区北门段",
            "traffic_plan": "车辆经四号路绕行，两端设置路障和警示灯",
        },
        "厂区三号路",
    ),
}


def sample_context(work_type: WorkType) -> dict[str, Any]:
    """Every key :func:`permits.records.permit_context` builds, with sample values."""
    level, _, details, _ = CASES[work_type]
    gas = work_type in (WorkType.HOT_WORK, WorkType.CONFINED_SPACE)
    return {
        "company_name": "江苏扬子江石化集团有限公司",
        "plant_name": "南京炼化厂",
        "work_type": work_type.value,
        "level": level or "",
        "requested_level": "level2" if work_type is WorkType.HOT_WORK else "",
        "level_reasons": ["night"] if work_type is WorkType.HOT_WORK else [],
        "number": f"P1-{PREFIX[work_type]}-20261128-0007",
        "version": 2,
        "state": "active",
        "zone_name": "常减压装置区",
        "location": "常减压装置 二号加热炉 F-102 出口管线 DN300 法兰处",
        "work_content": "更换 F-102 出口管线腐蚀减薄管段 1.2m",
        "contractor_name": "南京鑫泰安装工程有限公司",
        "applied_at": "2026-11-28 08:15",
        "approved_at": "2026-11-28 08:50",
        "planned_start": "2026年11月28日 09时00分",
        "planned_end": "2026年11月28日 17时00分",
        "timezone": "Asia/Shanghai",
        "work_leader": "赵建国",
        "guardian": "郑国庆",
        "crew": [
            {
                "name": "孙志强",
                "duty": "焊工",
                "certificates": [
                    {"kind": "welding_cutting", "number": "T3201021988", "expires_on": "2028-01-01"}
                ],
            },
            {"name": "周海涛", "duty": "", "certificates": []},
        ],
        "certificates_required": work_type
        in (WorkType.HOT_WORK, WorkType.CONFINED_SPACE, WorkType.HEIGHT, WorkType.LIFTING),
        "related_numbers": ["P1-GC-20261128-0003"],
        "hazards": ["火灾", "爆炸", "中毒窒息（硫化氢）"],
        "emergency_measures": ["立即停止作业", "撤离至集合点"],
        "checklist": [
            {
                "code": code,
                "text": f"安全措施 {index}",
                "applies": index % 3 != 0,
                "confirmed_by": "王安全" if index % 3 != 0 else "",
                "confirmed_at": "2026-11-28 08:55" if index % 3 != 0 else "",
            }
            for index, (code, _) in enumerate(CHECKLISTS[work_type], start=1)
        ],
        "details": details,
        "gas_analyses": [
            {
                "time": "2026-11-28 08:40",
                "point": "F-102 出口管线内",
                "readings": [
                    {"gas": "methane", "value": 0.1, "unit": "percent_vol"},
                    {"gas": "oxygen", "value": 20.9, "unit": "percent_vol"},
                    {"gas": "hydrogen_sulfide", "value": 2.0, "unit": "mg_m3"},
                ],
                "instrument": "MX6 多气体检测仪",
                "analyst": "刘分析",
                "passed": True,
            }
        ]
        if gas
        else [],
        "approvals": [
            {
                "role": "work_leader",
                "label": "",
                "kind": "review",
                "status": "approved",
                "decider": "赵建国",
                "decided_at": "2026-11-28 08:30",
                "comment": "措施已落实",
                "on_site": True,
            },
            {
                "role": "local_unit",
                "label": "",
                "kind": "approve",
                "status": "approved",
                "decider": "王主任",
                "decided_at": "2026-11-28 08:50",
                "comment": "",
                "on_site": False,
            },
        ],
        "briefing": {
            "name": "王安全",
            "signed": True,
            "crew_signed": 2,
            "crew_total": 2,
            "signed_at": "2026-11-28 08:52",
        },
        "completion": {
            "completed_at": "",
            "completed_by": "",
            "closed_at": "",
            "accepted_by": "",
            "comment": "",
        },
        "content_hash": "c" * 64,
        "qr_data_uri": svg_data_uri(qr_svg(VERIFICATION_URL)),
        "verification_url": VERIFICATION_URL,
    }


def _page(pdf: bytes) -> pypdf.PageObject:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return reader.pages[0]


def _compact(text: str) -> str:
    return "".join(text.split())


def _link_uris(page: pypdf.PageObject) -> set[str]:
    return {
        annotation.get_object()["/A"]["/URI"]
        for annotation in page.get("/Annots", [])
        if annotation.get_object().get("/Subtype") == "/Link"
    }


@pytest.mark.parametrize("work_type", list(WorkType))
def test_each_type_prints_its_form_on_one_page(work_type: WorkType) -> None:
    context = sample_context(work_type)
    page = _page(render_pdf(PDF_TEMPLATE, context))
    text = _compact(page.extract_text())
    _, marking, _, own_field = CASES[work_type]
    for printed in (
        TITLES[work_type],
        context["number"],
        "扫码核验作业票状态",
        context["contractor_name"],
        "常减压装置区",
        "赵建国",
        "郑国庆",
        "P1-GC-20261128-0003",
        "安全措施1",
        "王主任",
        "安全交底人",
        "完工验收",
        own_field,
    ):
        assert printed in text, printed
    if marking is not None:
        assert marking in text
    assert _link_uris(page) == {VERIFICATION_URL}


def test_hot_work_prints_gas_analyses_certificates_and_the_upgrade() -> None:
    text = _compact(
        _page(render_pdf(PDF_TEMPLATE, sample_context(WorkType.HOT_WORK))).extract_text()
    )
    for printed in ("取样分析时间", "甲烷0.1%VOL", "刘分析", "合格", "T3201021988", "夜间"):
        assert printed in text, printed
    assert "非现场" in text  # the local unit approved away from the zone (§4.11a)


def test_types_without_gas_analysis_leave_the_table_out() -> None:
    text = _compact(_page(render_pdf(PDF_TEMPLATE, sample_context(WorkType.HEIGHT))).extract_text())
    assert "取样分析时间" not in text


def test_a_long_excavation_chain_still_fits_one_page() -> None:
    context = sample_context(WorkType.EXCAVATION)
    roles = ("water_department", "power_department", "steam_department", "process_department")
    roles += ("equipment_department", "fire_department", "safety_department")
    context["approvals"] = [
        {
            **context["approvals"][0],
            "role": role,
            "kind": "co_sign",
            "comment": "同意，注意地下电缆",
        }
        for role in roles
    ] + context["approvals"]
    context["crew"] = context["crew"] * 5
    text = _compact(_page(render_pdf(PDF_TEMPLATE, context)).extract_text())
    assert "消防部门会签" in text
