"""``.http`` request collections (the format of VS Code's REST Client), read and run.

The subset read here is what ``docs/coursemesh.http`` uses, and every piece of it means the same
in the REST Client:

- ``@name = value`` file variables; a value may use other variables;
- ``###`` between requests (the text after it is the request's title);
- ``# @name id`` names a request, so later ones can use ``{{id.response.body.$.path}}`` (a JSONPath
  of keys and ``[index]``) and ``{{id.response.headers.Header-Name}}``;
- ``# @no-redirect``: a redirect is the answer (without it, redirects are followed);
- the request line ``METHOD URL``, then headers, a blank line and the body.

Two comments are this runner's, ignored by the REST Client: ``# expect: <status>`` (the status
the request must get) and ``# until: <JSONPath> == <value> within <N>s``, which repeats the
request until the answer's JSON holds that value, for what is truly asynchronous (a payment
provider's webhook, audio generation), failing after N seconds.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_VARIABLE = re.compile(r"^@([A-Za-z_][\w-]*)\s*=\s*(.*?)\s*$")
_REFERENCE = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_UNTIL = re.compile(r"^(\$\S*)\s*==\s*(.+?)\s+within\s+(\d+(?:\.\d+)?)\s*s$")
_PATH_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


class HttpFileError(ValueError):
    """The file cannot be read or a reference in it cannot be resolved (names the line)."""


class CollectionFailed(Exception):
    """A request of the collection got another answer than the one it expects."""

    def __init__(self, request: HttpRequest, message: str) -> None:
        super().__init__(f"line {request.line} ({request.title or request.method}): {message}")
        self.request = request


@dataclass(frozen=True)
class Until:
    """Repeat the request until the JSON answer holds ``value`` at ``path``, at most ``within``
    seconds."""

    path: str
    value: str
    within: float


@dataclass(frozen=True)
class HttpRequest:
    line: int
    title: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    name: str | None = None
    expect: int | None = None
    until: Until | None = None
    follow_redirects: bool = True


@dataclass(frozen=True)
class HttpFile:
    variables: Mapping[str, str]
    requests: tuple[HttpRequest, ...]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class Exchange:
    """One request as sent (every reference resolved) and its answer."""

    request: HttpRequest
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: str | None
    answer: Answer
    attempts: int = 1
    seconds: float = 0.0


# --- reading ---------------------------------------------------------------------------------


@dataclass
class _Draft:
    line: int
    title: str
    comments: list[tuple[int, str]] = field(default_factory=list)
    lines: list[tuple[int, str]] = field(default_factory=list)


def parse(text: str) -> HttpFile:
    """Read a collection; raise :class:`HttpFileError` naming the line of what it cannot read."""
    variables: dict[str, str] = {}
    drafts: list[_Draft] = [_Draft(1, "")]
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        draft = drafts[-1]
        if line.startswith("###"):
            drafts.append(_Draft(number, line[3:].strip()))
        elif not draft.lines and (line.startswith("#") or line.startswith("//")):
            draft.comments.append((number, line.lstrip("#/").strip()))
        elif not draft.lines and (found := _VARIABLE.match(line)):
            variables[found.group(1)] = found.group(2)
        elif draft.lines or line.strip():
            draft.lines.append((number, line))
    return HttpFile(variables, tuple(r for d in drafts if (r := _request(d)) is not None))


def _request(draft: _Draft) -> HttpRequest | None:
    lines = draft.lines
    while lines and not lines[-1][1].strip():
        lines.pop()
    if not lines:
        return None
    number, request_line = lines[0]
    parts = request_line.split()
    if len(parts) not in (2, 3) or parts[0] not in METHODS:
        raise HttpFileError(f"line {number}: expected `METHOD URL`, got {request_line!r}")
    headers: list[tuple[str, str]] = []
    rest = lines[1:]
    while rest and rest[0][1].strip():
        header_line, header = rest.pop(0)
        if ":" not in header:
            raise HttpFileError(f"line {header_line}: expected `Name: value`, got {header!r}")
        name, value = header.split(":", 1)
        headers.append((name.strip(), value.strip()))
    body = "\n".join(text for _, text in rest).strip("\n") or None
    settings = _settings(draft.comments)
    return HttpRequest(
        line=number,
        title=draft.title,
        method=parts[0],
        url=parts[1],
        headers=tuple(headers),
        body=body,
        **settings,
    )


def _settings(comments: list[tuple[int, str]]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for number, comment in comments:
        if comment.startswith("@name "):
            settings["name"] = comment[len("@name ") :].strip()
        elif comment == "@no-redirect":
            settings["follow_redirects"] = False
        elif comment.startswith("expect:"):
            status = comment[len("expect:") :].split()
            if not status or not status[0].isdigit():
                raise HttpFileError(f"line {number}: expected `expect: <status>`")
            settings["expect"] = int(status[0])
        elif comment.startswith("until:"):
            found = _UNTIL.match(comment[len("until:") :].strip())
            if found is None:
                raise HttpFileError(f"line {number}: expected `until: $.path == value within <N>s`")
            settings["until"] = Until(found.group(1), found.group(2), float(found.group(3)))
    return settings


# --- resolving references ---------------------------------------------------------------------


def json_path(document: Any, path: str) -> Any:
    """The value at ``path`` (``$``, ``$.key``, ``$.list[0].key``) of a decoded JSON document;
    raise :class:`KeyError` when there is none."""
    if not path.startswith("$"):
        raise KeyError(path)
    value = document
    position = 1
    for step in _PATH_STEP.finditer(path, 1):
        if step.start() != position:
            raise KeyError(path)
        position = step.end()
        key, index = step.groups()
        if key is not None and isinstance(value, dict) and key in value:
            value = value[key]
        elif index is not None and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            raise KeyError(path)
    if position != len(path):
        raise KeyError(path)
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class Scope:
    """Variables (the file's, then the caller's overrides) and the named requests' answers."""

    def __init__(self, variables: Mapping[str, str], overrides: Mapping[str, str]) -> None:
        self.variables = {**variables, **overrides}
        self.answers: dict[str, Answer] = {}

    def expand(self, text: str, line: int) -> str:
        return _REFERENCE.sub(lambda m: self._lookup(m.group(1), line, depth=0), text)

    def _lookup(self, reference: str, line: int, depth: int) -> str:
        if depth > 16:
            raise HttpFileError(f"line {line}: {{{{{reference}}}}} refers to itself")
        if reference in self.variables:
            return _REFERENCE.sub(
                lambda m: self._lookup(m.group(1), line, depth + 1), self.variables[reference]
            )
        name, _, rest = reference.partition(".response.")
        if rest and name in self.answers:
            return self._from_answer(self.answers[name], rest, reference, line)
        raise HttpFileError(f"line {line}: {{{{{reference}}}}} is not defined")

    @staticmethod
    def _from_answer(answer: Answer, rest: str, reference: str, line: int) -> str:
        part, _, selector = rest.partition(".")
        if part == "headers":
            value = answer.header(selector)
            if value is None:
                raise HttpFileError(f"line {line}: {{{{{reference}}}}}: no such header")
            return value
        if part == "body":
            if selector in ("", "*"):
                return answer.body.decode("utf-8", "replace")
            try:
                return _as_text(json_path(answer.json(), selector))
            except (KeyError, ValueError):
                raise HttpFileError(
                    f"line {line}: {{{{{reference}}}}}: not in the answer "
                    f"({answer.body[:200].decode('utf-8', 'replace')})"
                ) from None
        raise HttpFileError(f"line {line}: {{{{{reference}}}}}: expected body or headers")


# --- running ----------------------------------------------------------------------------------

#: Sends one request: (method, url, headers, body, follow_redirects) -> answer.
Send = Callable[[str, str, Mapping[str, str], bytes | None, bool], Answer]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: a 303 is an answer to read."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the redirect itself is the answer


def urllib_sender(timeout: float = 30.0) -> Send:
    """A :data:`Send` over the standard library's HTTP client."""
    following = urllib.request.build_opener()
    stopping = urllib.request.build_opener(NoRedirect())

    def send(
        method: str, url: str, headers: Mapping[str, str], body: bytes | None, follow: bool
    ) -> Answer:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
        opener = following if follow else stopping
        try:
            with opener.open(request, timeout=timeout) as response:
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, dict(exc.headers), exc.read())

    return send


def run(
    collection: HttpFile,
    send: Send,
    *,
    variables: Mapping[str, str] | None = None,
    on_exchange: Callable[[Exchange], None] | None = None,
    poll_interval: float = 0.25,
) -> list[Exchange]:
    """Send every request in order, each after the previous answer; raise
    :class:`CollectionFailed` at the first that gets another status than its ``expect`` (or,
    with ``until``, never holds its value in time)."""
    scope = Scope(collection.variables, variables or {})
    exchanges: list[Exchange] = []
    for request in collection.requests:
        exchange = _exchange(request, scope, send, poll_interval)
        if request.name:
            scope.answers[request.name] = exchange.answer
        exchanges.append(exchange)
        if on_exchange is not None:
            on_exchange(exchange)
    return exchanges


def _exchange(request: HttpRequest, scope: Scope, send: Send, poll_interval: float) -> Exchange:
    began = time.monotonic()
    method = request.method
    url = scope.expand(request.url, request.line)
    headers = tuple((k, scope.expand(v, request.line)) for k, v in request.headers)
    body = scope.expand(request.body, request.line) if request.body is not None else None
    data = (
        body.encode() if body is not None else (b"" if method in ("POST", "PUT", "PATCH") else None)
    )
    attempts = 0
    while True:
        attempts += 1
        answer = send(method, url, dict(headers), data, request.follow_redirects)
        expected = request.expect is None or answer.status == request.expect
        until = request.until
        if until is None:
            if not expected:
                raise CollectionFailed(
                    request,
                    f"{method} {url} -> {answer.status}, expected {request.expect}: "
                    f"{_excerpt(answer)}",
                )
            break
        # an asynchronous step: until it is done, the answer may be a refusal that says so
        if expected and _holds(answer, until):
            break
        if time.monotonic() - began >= until.within:
            raise CollectionFailed(
                request,
                f"{method} {url}: not {request.expect or 'any status'} with {until.path} == "
                f"{until.value} within {until.within:g}s; last answer {answer.status}: "
                f"{_excerpt(answer)}",
            )
        time.sleep(poll_interval)
    return Exchange(request, method, url, headers, body, answer, attempts, time.monotonic() - began)


def _excerpt(answer: Answer) -> str:
    return answer.body[:600].decode("utf-8", "replace")


def _holds(answer: Answer, until: Until) -> bool:
    try:
        return _as_text(json_path(answer.json(), until.path)) == until.value
    except (KeyError, ValueError):
        return False


# --- the suite's collection -------------------------------------------------------------------

#: The users of ``docs/coursemesh.http``, by the variable holding their token: (subject, email,
#: name).
COLLECTION_USERS: dict[str, tuple[str, str, str]] = {
    "owner": ("user_http_owner", "owner@example.com", "Olivia Owner"),
    "buyer": ("user_http_buyer", "buyer@example.com", "Ben Buyer"),
    "other": ("user_http_other", "other@example.com", "Omar Other"),
}


def collection_variables(base_url: str, mint: Callable[[str, str, str], str]) -> dict[str, str]:
    """The variables to run ``docs/coursemesh.http`` against a stack: its gateway, a new ``run``
    (five digits: the slug and the offer's code are new) and a token per user, minted by
    ``mint(sub, email, name)`` for subjects of this run (a buyer's daily limits start afresh)."""
    run_id = f"{secrets.randbelow(10**5):05d}"
    found: dict[str, str] = {"base": base_url.rstrip("/"), "run": run_id}
    for variable, (sub, email, name) in COLLECTION_USERS.items():
        found[variable] = mint(f"{sub}_{run_id}", email, name)
        found[f"{variable}Id"] = f"{sub}_{run_id}"
    return found
