"""The SMS gateways' signatures against the worked examples in the vendors' own documentation,
and the one template variable the portal fills."""

from __future__ import annotations

import pytest

from infra.notify.sms_gateways import (
    CONTENT_MAX_CHARS,
    aliyun_rpc_signature,
    tc3_canonical_request,
    tc3_signature,
    template_content,
    tencent_phone,
)


def test_alibaba_cloud_rpc_signature_matches_the_documented_example() -> None:
    # Alibaba Cloud's signature-mechanism page: DescribeRegions signed with testid/testsecret.
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }
    assert aliyun_rpc_signature("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    assert aliyun_rpc_signature("POST", params, "testsecret") != "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_tencent_cloud_tc3_signature_matches_the_documented_example() -> None:
    # Tencent Cloud's API 3.0 signature page: DescribeInstances on CVM at 1551113065.
    payload = (
        b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    )
    canonical = tc3_canonical_request(
        method="POST",
        path="/",
        content_type="application/json; charset=utf-8",
        host="cvm.tencentcloudapi.com",
        payload=payload,
    )
    assert canonical.endswith(
        "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    signature = tc3_signature(
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        service="cvm",
        timestamp=1551113065,
        canonical_request=canonical,
    )
    assert signature == "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"


@pytest.mark.parametrize(
    ("text", "content"),
    [
        (
            "【报警】一厂 人员离开作业区域，请尽快处置。",
            "报警：一厂 人员离开作业区域，请尽快处置",
        ),
        (
            "【作业票待审批】DH-1 动火作业（一厂）待您审批。",
            "作业票待审批：DH-1 动火作业（一厂）待您审批",
        ),
        ("[Alert] Plant 1: left the zone.", "[Alert] Plant 1: left the zone."),
        ("【评分申诉】对【二级】作业的评分提出申诉", "评分申诉：对[二级]作业的评分提出申诉"),
    ],
)
def test_the_content_variable_carries_the_short_text_without_signature_brackets(
    text: str, content: str
) -> None:
    assert template_content(text) == content


def test_a_long_text_is_cut_to_the_documented_length() -> None:
    text = "【培训即将到期】" + "华东安装工程有限公司 张三 的《入厂三级安全教育》" * 10
    content = template_content(text)
    assert len(content) == CONTENT_MAX_CHARS and content.endswith("…")
    assert content.startswith("培训即将到期：华东安装")
    assert template_content("短" * CONTENT_MAX_CHARS) == "短" * CONTENT_MAX_CHARS


@pytest.mark.parametrize(
    ("phone", "e164"),
    [
        ("13800138000", "+8613800138000"),
        ("+8613800138000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("+85291234567", "+85291234567"),
    ],
)
def test_tencent_numbers_get_their_country_code(phone: str, e164: str) -> None:
    assert tencent_phone(phone) == e164
