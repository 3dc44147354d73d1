"""The forms of a hosted HTML page (the sandbox's payment and onboarding pages), read as a
browser would before submitting one: method, action and the text of its button."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser


@dataclass
class Form:
    method: str  # lower case
    action: str
    button: str = ""


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None
        self._in_button = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self._current = Form(
                (values.get("method") or "get").lower(), values.get("action") or ""
            )
        elif tag == "button" and self._current is not None:
            self._in_button = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._current is not None:
            self.forms.append(self._current)
            self._current = None
        elif tag == "button":
            self._in_button = False

    def handle_data(self, data: str) -> None:
        if self._in_button and self._current is not None:
            self._current.button += data.strip()


def parse_forms(page: str) -> list[Form]:
    parser = _Forms()
    parser.feed(page)
    return parser.forms
