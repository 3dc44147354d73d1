"""Reading a bulk grant's CSV, pure."""

from __future__ import annotations

import pytest

from coursemesh.commerce.domain.bulk_grants import CsvInvalid, parse_grant_csv


def test_columns_in_any_order_a_bom_blank_lines_and_the_default_reason() -> None:
    rows = parse_grant_csv(
        "\ufeffreason,userId\r\n,user_a\r\n\r\nvip,user_b\r\n".encode(), "cohort"
    )
    assert [(r.number, r.user_id, r.reason, r.problem) for r in rows] == [
        (1, "user_a", "cohort", None),
        (2, "user_b", "vip", None),
    ]


def test_a_bad_row_is_kept_with_its_problem() -> None:
    rows = parse_grant_csv(b"userId,reason\nuser_a\n,why\nuser_c,\n", None)
    assert [r.problem for r in rows] == [
        "the row has 1 cells, the header 2",
        "no userId or email",
        "no reason (give a reason column or the reason parameter)",
    ]


@pytest.mark.parametrize(
    "raw",
    [b"", b"userId\n", b"name\nx\n", b"userId\n\x00\n", b"userId\n\xc3\x28\n", b'userId\n"a\n'],
)
def test_an_unreadable_file_is_refused(raw: bytes) -> None:
    with pytest.raises(CsvInvalid):
        parse_grant_csv(raw, "r")
