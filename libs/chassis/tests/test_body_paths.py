"""The JSON path of a body's validation error is read from msgspec's message by its stable
format, whatever the message itself holds (unit: no I/O)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
import pytest
from litestar.exceptions import ClientException, ValidationException

from coursemesh.chassis.body import decode_json_body, validation_error_path


class Item(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    kind: Literal["a - at `$.x`", "b"]
    label: Annotated[str, msgspec.Meta(pattern="^[a-z]+ - at$")] = "x - at"


class Order(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    order_id: Annotated[int, msgspec.Meta(ge=1)]
    items: list[Item] = []


ORDER = msgspec.json.Decoder(Order, strict=True)


def _error(body: bytes, decoder: msgspec.json.Decoder[Any] = ORDER) -> dict[str, Any]:
    with pytest.raises(ValidationException) as caught:
        decode_json_body(body, decoder)
    (error,) = caught.value.extra  # type: ignore[misc]
    assert isinstance(error, dict)
    return error


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        (b'{"orderId": 0}', "$.orderId", "Expected `int` >= 1"),
        (b'{"orderId": "1"}', "$.orderId", "Expected `int`, got `str`"),
        (b"{}", "$", "Object missing required field `orderId`"),
        (b'{"orderId": 1, "x": 1}', "$", "Object contains unknown field `x`"),
        (
            b'{"orderId": 1, "items": [{"kind": "c"}]}',
            "$.items[0].kind",
            "Invalid enum value 'c'",
        ),
        (
            b'{"orderId": 1, "items": [{"kind": "b", "label": "no"}]}',
            "$.items[0].label",
            "Expected `str` matching regex '^[a-z]+ - at$'",
        ),
        (b"[]", "$", "Expected `object`, got `array`"),
        (b"null", "$", "Expected `object`, got `null`"),
    ],
)
def test_each_error_names_its_member(body: bytes, path: str, message: str) -> None:
    assert _error(body) == {"message": message, "key": path, "source": "body"}


def test_an_element_of_a_top_level_array_is_named_as_litestar_names_it() -> None:
    error = _error(b'[{"orderId": 1}, {"orderId": 0}]', msgspec.json.Decoder(list[Order]))
    assert (error["key"], error["message"]) == ("$", "Expected `int` >= 1")


def test_a_message_without_a_path_is_kept_whole() -> None:
    exc = msgspec.ValidationError("Expected `str` - at the end")
    assert validation_error_path(exc) == ("Expected `str` - at the end", "$")


def test_text_that_is_not_json_is_malformed_before_it_is_invalid() -> None:
    with pytest.raises(ClientException) as caught:
        decode_json_body(b'{"orderId": "x', ORDER)
    assert caught.value.status_code == 400
