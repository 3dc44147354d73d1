"""A JSON request body decoded straight into a Struct, for handlers that declare no ``data``.

Litestar decodes a declared ``data: JSONBody[T]`` twice (JSON to builtins, then builtins to
``T``) and resolves it through the handler's signature model; for a busy route that was more
than the route's own work. :func:`decode_json_body` decodes once with msgspec and refuses the
body with the exceptions Litestar raises for a declared one, so the error mapping
(``errors.py``) answers exactly as it does elsewhere: ``MALFORMED_JSON``, or
``VALIDATION_FAILED`` with each error's JSON path. One difference, on purpose: a body that is not
UTF-8 is ``MALFORMED_JSON`` too (Litestar let it through as a 500).
"""

from __future__ import annotations

from typing import NoReturn, TypeVar

import msgspec
from litestar.exceptions import ClientException, SerializationException, ValidationException

T = TypeVar("T")

#: What msgspec puts between a validation error's message and the JSON path of the value it is
#: about (``Expected `int`, got `str` - at `$.courses[0].size```); an error about the whole
#: value has no path.
_AT = " - at `"


def decode_json_body(body: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """``body`` as ``T``; an empty body is ``null``, as for a declared ``data`` parameter."""
    try:
        return decoder.decode(body or b"null")
    except msgspec.ValidationError as exc:
        # msgspec validates while it parses, so a body that is not JSON at all may first break
        # a type rule: it is malformed, not invalid.
        _refuse_unless_json(body or b"null")
        message, path = validation_error_path(exc)
        error = {"message": message, "key": path, "source": "body"}
        raise ValidationException("The request body is invalid", extra=[error]) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # not JSON, or not UTF-8
        _malformed(exc)


def validation_error_path(exc: msgspec.ValidationError) -> tuple[str, str]:
    """The message of a msgspec validation error and the JSON path of the member it names, as
    a declared ``data`` reports them: ``$`` for the whole value and for an element of a
    top-level array (Litestar names only members, ``$.…``). The path is the text after the
    last " - at `" (a message may hold backquotes and dashes of its own, never that marker
    followed by a path that ends the text)."""
    text = str(exc)
    message, marker, at = text.rpartition(_AT)
    if not (marker and at.endswith("`")):
        return text, "$"
    path = at[:-1]
    return message, path if path.startswith("$.") else "$"


def _refuse_unless_json(body: bytes) -> None:
    try:
        msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        _malformed(exc)


def _malformed(exc: Exception) -> NoReturn:
    # The error mapping tells a body that is not JSON by this cause.
    raise ClientException("The request body is not valid JSON") from SerializationException(
        str(exc)
    )
