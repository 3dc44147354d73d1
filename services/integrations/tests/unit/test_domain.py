"""The pure rules: the retry schedule, which addresses are refused, what a receiver's answer
means, the signature header and the mapping of internal events to public ones."""

from __future__ import annotations

import ipaddress
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from coursemesh.contracts import commerce, customgen, learning
from coursemesh.contracts.webhooks import EVENT_TYPES, schemas
from coursemesh.integrations.adapters.network import retry_after_seconds
from coursemesh.integrations.domain.catalogue import MAX_BODY_BYTES, body_of, public_event
from coursemesh.integrations.domain.errors import EndpointAddressForbidden, EndpointUrlInvalid
from coursemesh.integrations.domain.outcome import outcome_of
from coursemesh.integrations.domain.schedule import MAX_ATTEMPTS, SCHEDULE, retry_delay
from coursemesh.integrations.domain.secrets import new_secret, signature_header, signing_secrets
from coursemesh.integrations.domain.ssrf import (
    check_addresses,
    forbidden_reason,
    parse_endpoint_url,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_the_schedule_is_the_published_one() -> None:
    hours = 3600
    assert (
        0,
        5,
        300,
        1800,
        2 * hours,
        5 * hours,
        10 * hours,
        14 * hours,
        20 * hours,
        24 * hours,
    ) == SCHEDULE
    middle = [retry_delay(n, rand=lambda: 0.5) for n in range(MAX_ATTEMPTS)]
    assert middle == [float(s) for s in SCHEDULE]
    assert retry_delay(MAX_ATTEMPTS) is None


def test_jitter_stays_within_ten_percent_and_the_scale_compresses() -> None:
    assert retry_delay(1, rand=lambda: 0.0) == pytest.approx(4.5)
    assert retry_delay(1, rand=lambda: 1.0) == pytest.approx(5.5)
    assert retry_delay(9, scale=0.001, rand=lambda: 0.5) == pytest.approx(86.4)


def test_retry_after_is_honoured_only_when_longer_and_bounded() -> None:
    assert retry_delay(1, retry_after=60, rand=lambda: 0.5) == 60
    assert retry_delay(2, retry_after=60, rand=lambda: 0.5) == 300  # the schedule is longer
    assert retry_delay(1, retry_after=10 * 86400, rand=lambda: 0.5) == 5


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "10.1.1.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.1.1",
        "fd00:ec2::254",
        "fe80::1",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "240.0.0.1",
        "::",
        "2002:7f00:1::1",  # 6to4 around 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 around the metadata address
        "64:ff9b::10.0.0.1",  # NAT64 around a private address
        "64:ff9b::169.254.169.254",
        "64:ff9b:1::a00:1",  # NAT64's local-use prefix
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    ],
)
def test_addresses_inside_a_network_are_refused(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address), allow_loopback=False) is not None


def test_public_addresses_pass_and_loopback_only_when_allowed() -> None:
    assert forbidden_reason(ipaddress.ip_address("93.184.216.34"), allow_loopback=False) is None
    assert forbidden_reason(ipaddress.ip_address("2606:4700::1"), allow_loopback=False) is None
    # IPv6 forms of a public IPv4 address are judged as that address
    assert forbidden_reason(ipaddress.ip_address("2002:5db8:d822::1"), allow_loopback=False) is None
    nat64 = ipaddress.ip_address("64:ff9b::93.184.216.34")
    assert forbidden_reason(nat64, allow_loopback=False) is None
    assert forbidden_reason(ipaddress.ip_address("127.0.0.1"), allow_loopback=True) is None
    metadata = ipaddress.ip_address("169.254.169.254")
    assert forbidden_reason(metadata, allow_loopback=True) is not None


def test_one_forbidden_answer_among_several_refuses_the_host() -> None:
    good, bad = ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.1")
    assert check_addresses("h", [good], allow_loopback=False) == good
    with pytest.raises(EndpointAddressForbidden):
        check_addresses("h", [good, bad], allow_loopback=False)
    with pytest.raises(EndpointAddressForbidden):
        check_addresses("h", [], allow_loopback=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",
        "ftp://example.com",
        "https://",
        "https://u:p@example.com/",
        "https://example.com/#x",
        "https://example.com:99999/",
        "https://" + "a" * 3000,
    ],
)
def test_malformed_or_insecure_urls_are_refused(url: str) -> None:
    with pytest.raises(EndpointUrlInvalid):
        parse_endpoint_url(url, allow_insecure=False)


def test_development_accepts_http() -> None:
    target = parse_endpoint_url("http://127.0.0.1:9000/hooks", allow_insecure=True)
    assert (target.scheme, target.host, target.port) == ("http", "127.0.0.1", 9000)
    assert (target.host_header, target.path) == ("127.0.0.1:9000", "/hooks")


def test_an_internationalised_host_takes_its_ascii_form_everywhere() -> None:
    target = parse_endpoint_url("https://Bücher.example/in?a=1", allow_insecure=False)
    assert (target.host, target.port, target.path) == ("xn--bcher-kva.example", 443, "/in?a=1")
    assert target.host_header == "xn--bcher-kva.example"


def test_a_host_name_idna_refuses_is_an_invalid_url() -> None:
    with pytest.raises(EndpointUrlInvalid):
        parse_endpoint_url("https://a\u200db.example/", allow_insecure=False)


def test_the_host_header_keeps_only_a_port_that_is_not_the_default() -> None:
    assert parse_endpoint_url("https://h.example:443/", allow_insecure=False).host_header == (
        "h.example"
    )
    assert parse_endpoint_url("https://h.example:8443/", allow_insecure=False).host_header == (
        "h.example:8443"
    )
    assert parse_endpoint_url("https://[2606:4700::1]/", allow_insecure=False).host_header == (
        "[2606:4700::1]"
    )


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("120", 120.0),
        ("Sat, 05 Dec 2026 12:02:00 GMT", 120.0),
        ("Sat, 05 Dec 2026 11:00:00 GMT", 0.0),  # in the past: no extra wait
        ("soon", None),
    ],
)
def test_retry_after_reads_seconds_or_an_http_date(
    value: str | None, seconds: float | None
) -> None:
    assert retry_after_seconds(value, NOW) == seconds


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (410, "gone"),
        (429, "slow_down"),
        (502, "slow_down"),
        (504, "slow_down"),
        (500, "retry"),
        (301, "retry"),
        (404, "retry"),
        (None, "retry"),
    ],
)
def test_what_an_answer_means(status: int | None, outcome: str) -> None:
    assert outcome_of(status) == outcome


def test_the_signature_verifies_with_the_library_under_each_valid_secret() -> None:
    old, new = new_secret(), new_secret()
    assert old.startswith("whsec_")
    body = json.dumps({"type": "webhook.test", "timestamp": NOW.isoformat(), "data": {}})
    now = datetime.now(UTC)
    header = signature_header([new, old], "msg_1", now, body)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": header,
    }
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["type"] == "webhook.test"
    assert signing_secrets(new, old, NOW + timedelta(hours=1), NOW) == [new, old]
    assert signing_secrets(new, old, NOW - timedelta(seconds=1), NOW) == [new]


def test_internal_events_map_to_their_public_types() -> None:
    ent = commerce.EntitlementChangedV2(
        entitlement_id=uuid.uuid4(),
        user_id="u",
        course_id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        status="revoked",
        access_revoked_at=NOW,
        source_payment_transaction_id=None,
        membership_id=None,
        previous_status="active",
        cause="staff_revoked",
        reason="chargeback",
        changed_at=NOW,
    )
    revoked = public_event(ent)
    assert revoked is not None
    assert revoked.type == "enrollment.revoked"
    data = json.loads(body_of(revoked.type, revoked.data, NOW))["data"]
    assert (data["reason"], data["cause"]) == ("chargeback", "staff_revoked")
    pending = public_event(commerce.EntitlementChangedV2(**{**_fields(ent), "status": "pending"}))
    assert pending is None
    ready = customgen.CustomCourseReady(
        custom_course_id=uuid.uuid4(), user_id="u", checksum="0" * 32, file_size_bytes=10
    )
    assert public_event(ready) is None  # organization unknown: nothing to send
    org = uuid.uuid4()
    mapped = public_event(ready, org)
    assert mapped is not None
    assert (mapped.type, mapped.organization_id) == ("custom_course.ready", org)
    done = learning.CourseCompleted(
        entitlement_id=uuid.uuid4(),
        user_id="u",
        course_id=uuid.uuid4(),
        organization_id=org,
        completed_at=NOW,
    )
    assert public_event(done).type == "course.completed"  # type: ignore[union-attr]


def _fields(event: object) -> dict[str, object]:
    return {f: getattr(event, f) for f in event.__struct_fields__}  # type: ignore[attr-defined]


def test_a_body_over_the_limit_keeps_only_ids() -> None:
    big = {"leadId": "L1", "organizationId": "O1", "email": "x" * (MAX_BODY_BYTES + 10)}
    body = body_of("lead.created", big, NOW)
    assert len(body) < MAX_BODY_BYTES
    assert json.loads(body)["data"] == {"leadId": "L1", "organizationId": "O1", "truncated": True}


def test_every_public_type_has_a_schema() -> None:
    documented = schemas()
    assert set(documented["types"]) == {*EVENT_TYPES, "webhook.test"}
