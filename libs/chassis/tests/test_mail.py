"""The shared mail mechanics that need no server: the message's stable Message-ID and extra
headers, and a long header kept as one plain line on the wire."""

from __future__ import annotations

import pytest

from coursemesh.chassis.mail import WIRE_POLICY, check_smtp, compose

URL = "https://api.example.com/public/reminders/unsubscribe?token=" + "A" * 22 + "." + "B" * 43


def test_a_message_has_a_stable_message_id_on_the_senders_domain_and_its_extra_headers() -> None:
    message = compose(
        "Shop <mail@shop.example>",
        "b@buyer.example",
        "Hello <you>",
        "Line\n\n<script>",
        message_id="reminder-1",
        headers={"List-Unsubscribe": f"<{URL}>"},
    )
    assert message["Message-ID"] == "<reminder-1@shop.example>"
    assert message["List-Unsubscribe"] == f"<{URL}>"
    html = message.get_body(("html",))
    assert html is not None
    assert "&lt;script&gt;" in html.get_content()


def test_a_long_url_header_stays_one_plain_line_on_the_wire() -> None:
    message = compose(
        "m@shop.example",
        "b@buyer.example",
        "s",
        "t",
        message_id="x",
        headers={"List-Unsubscribe": f"<{URL}>"},
    )
    wire = message.as_bytes(policy=WIRE_POLICY).decode()
    assert f"\r\nList-Unsubscribe: <{URL}>\r\n" in wire
    assert "=?utf-8?" not in wire


def test_contradictory_smtp_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="go together"):
        check_smtp(587, "starttls", "user", None, None)
    with pytest.raises(ValueError, match="not sent over plain SMTP"):
        check_smtp(25, "none", "user", "secret", None)
    with pytest.raises(ValueError, match="between 1 and 65535"):
        check_smtp(0, "none", None, None, None)
