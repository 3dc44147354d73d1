"""The ``.http`` collection runner: what it reads, how it resolves references, how it checks
answers, and the suite's own collection (``docs/coursemesh.http``) read without a stack."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from coursemesh.devstack.httpfile import (
    COLLECTION_USERS,
    Answer,
    CollectionFailed,
    HttpFileError,
    Until,
    collection_variables,
    json_path,
    parse,
    run,
    urllib_sender,
)
from coursemesh.devstack.openapi import default_path, operation_for, operations

COLLECTION = default_path().parent / "coursemesh.http"

SAMPLE = """\
# A comment before anything
@base = http://shop.test
@token = t-{{user}}
@user = ann

### Create a thing
# @name thing
# expect: 201
POST {{base}}/things
Authorization: Bearer {{token}}
Content-Type: application/json

{"name": "lamp",
 "size": 2}

### Read it
// expect: 200
GET {{base}}/things/{{thing.response.body.$.id}}?etag={{thing.response.headers.ETag}}

###
# @no-redirect
# expect: 303
# until: $.state == done within 5s
POST {{base}}/things/{{thing.response.body.$.parts[1].id}}/finish HTTP/1.1
"""


class Recorder:
    """A :data:`Send` answering from a script, recording what was sent."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, str, dict[str, str], bytes | None, bool]] = []

    def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, follow: bool
    ) -> Answer:
        self.sent.append((method, url, dict(headers), body, follow))
        return self.answers.pop(0)


def _json(status: int, value: object, **headers: str) -> Answer:
    return Answer(status, headers, json.dumps(value).encode())


def test_a_collection_is_read_with_its_variables_names_and_checks() -> None:
    collection = parse(SAMPLE)
    assert collection.variables == {
        "base": "http://shop.test",
        "token": "t-{{user}}",
        "user": "ann",
    }
    first, second, third = collection.requests
    assert (first.title, first.name, first.expect, first.method) == (
        "Create a thing",
        "thing",
        201,
        "POST",
    )
    assert first.headers == (
        ("Authorization", "Bearer {{token}}"),
        ("Content-Type", "application/json"),
    )
    assert first.body == '{"name": "lamp",\n "size": 2}'
    assert (second.expect, second.body, second.follow_redirects) == (200, None, True)
    assert third.follow_redirects is False
    assert third.until == Until("$.state", "done", 5.0)
    assert third.url.endswith("/finish")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("###\nFETCH http://x\n", "expected `METHOD URL`"),
        ("###\nGET http://x\nno colon here\n", "expected `Name: value`"),
        ("###\n# expect: soon\nGET http://x\n", "expected `expect: <status>`"),
        ("###\n# until: state is done\nGET http://x\n", "expected `until:"),
    ],
)
def test_what_cannot_be_read_is_refused_with_its_line(text: str, message: str) -> None:
    with pytest.raises(HttpFileError, match=message) as refused:
        parse(text)
    assert re.match(r"line \d+: ", str(refused.value))


def test_requests_run_in_order_with_earlier_answers_resolved() -> None:
    send = Recorder(
        _json(201, {"id": "t1", "parts": [{"id": "p0"}, {"id": "p1"}]}, ETag='"v1"'),
        _json(200, {"id": "t1"}),
        _json(303, {"state": "done"}),
    )
    exchanges = run(parse(SAMPLE), send)
    assert [e.answer.status for e in exchanges] == [201, 200, 303]
    (m1, u1, h1, b1, f1), (m2, u2, _, b2, _), (m3, u3, _, b3, f3) = send.sent
    assert (m1, u1, f1) == ("POST", "http://shop.test/things", True)
    assert h1["Authorization"] == "Bearer t-ann"  # a variable made of another one
    assert json.loads(b1 or b"") == {"name": "lamp", "size": 2}
    assert (m2, u2, b2) == ("GET", 'http://shop.test/things/t1?etag="v1"', None)
    assert (m3, u3, b3, f3) == ("POST", "http://shop.test/things/p1/finish", b"", False)


def test_overrides_win_over_the_files_variables() -> None:
    send = Recorder(_json(201, {"id": "t1", "parts": []}))
    with pytest.raises(HttpFileError):  # stops at the third request: no parts[1]
        run(parse(SAMPLE), send, variables={"base": "http://other.test", "user": "bob"})
    assert send.sent[0][1] == "http://other.test/things"
    assert send.sent[0][2]["Authorization"] == "Bearer t-bob"


def test_an_unexpected_status_stops_the_run_naming_the_request() -> None:
    send = Recorder(_json(409, {"code": "TAKEN"}))
    with pytest.raises(CollectionFailed) as failed:
        run(parse(SAMPLE), send)
    message = str(failed.value)
    assert "Create a thing" in message
    assert "-> 409, expected 201" in message
    assert "TAKEN" in message
    assert len(send.sent) == 1


def test_an_undefined_reference_is_refused_before_anything_is_sent() -> None:
    send = Recorder()
    with pytest.raises(HttpFileError, match=r"\{\{nobody\}\} is not defined"):
        run(parse("###\nGET http://x/{{nobody}}\n"), send)
    assert send.sent == []


def test_an_asynchronous_step_is_repeated_until_it_holds_then_it_stops() -> None:
    text = "###\n# expect: 200\n# until: $.status == ready within 30s\nGET http://x/course\n"
    pending = _json(403, {"code": "PENDING"})
    generating = _json(200, {"status": "generating"})
    ready = _json(200, {"status": "ready"})
    send = Recorder(pending, generating, ready, ready)
    [exchange] = run(parse(text), send, poll_interval=0)
    assert exchange.attempts == 3
    assert exchange.answer.json() == {"status": "ready"}
    assert len(send.sent) == 3


def test_an_asynchronous_step_that_never_holds_fails_after_its_bound() -> None:
    text = "###\n# expect: 200\n# until: $.status == ready within 0s\nGET http://x/course\n"
    send = Recorder(_json(200, {"status": "generating"}))
    with pytest.raises(CollectionFailed, match="within 0s; last answer 200"):
        run(parse(text), send, poll_interval=0)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", {"a": [{"b": 1}, {"b": "two"}]}),
        ("$.a[1].b", "two"),
        ("$.a[0]", {"b": 1}),
    ],
)
def test_json_paths_select_keys_and_indexes(path: str, value: object) -> None:
    assert json_path({"a": [{"b": 1}, {"b": "two"}]}, path) == value


@pytest.mark.parametrize("path", ["a", "$.missing", "$.a[2]", "$.a.b", "$.a[0]x"])
def test_a_json_path_that_selects_nothing_is_a_key_error(path: str) -> None:
    with pytest.raises(KeyError):
        json_path({"a": [{"b": 1}]}, path)


class _Redirecting(BaseHTTPRequestHandler):
    """A form posted here answers 303 to /landing, a JSON page."""

    def do_POST(self) -> None:
        self._answer(303, b"", Location="/landing")

    def do_GET(self) -> None:
        self._answer(200, b'{"page": "landing"}', **{"Content-Type": "application/json"})

    def _answer(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_the_http_sender_follows_redirects_unless_told_not_to(server: str) -> None:
    text = (
        f"@base = {server}\n"
        "### followed\n# expect: 200\nPOST {{base}}/form\n"
        "### the redirect itself\n# @name form\n# @no-redirect\n# expect: 303\nPOST {{base}}/form\n"
        "### where it leads\n# expect: 200\nGET {{base}}{{form.response.headers.location}}\n"
    )
    exchanges = run(parse(text), urllib_sender(timeout=5))
    assert [e.answer.status for e in exchanges] == [200, 303, 200]
    assert exchanges[0].answer.json() == {"page": "landing"}
    assert exchanges[2].url == f"{server}/landing"


# --- the suite's collection, read without a stack ---------------------------------------------


def test_the_suites_collection_checks_every_request_and_refers_only_backwards() -> None:
    collection = parse(COLLECTION.read_text())
    named: set[str] = set()
    for request in collection.requests:
        assert request.expect is not None, f"line {request.line}: no `# expect:`"
        texts = [request.url, request.body or "", *(v for _, v in request.headers)]
        for text in texts:
            for reference in re.findall(r"\{\{\s*([^{}]+?)\s*\}\}", text):
                name, _, rest = reference.partition(".response.")
                if rest:
                    assert name in named, f"line {request.line}: {name} is not an earlier request"
                else:
                    assert reference in collection.variables, f"line {request.line}: {reference}"
        if request.name:
            assert request.name not in named, f"line {request.line}: {request.name} twice"
            named.add(request.name)


def test_the_suites_collection_names_every_operation_of_the_contract() -> None:
    """Statically, by the URLs' templates (those built from an answer's URL are resolved by the
    run through the gateway: tests-e2e/test_http_collection.py)."""
    document = json.loads(default_path().read_text())
    collection = parse(COLLECTION.read_text())
    named = set()
    for request in collection.requests:
        path = re.sub(r"\{\{[^{}]+\}\}", "x", request.url.removeprefix("{{base}}")).split("?")[0]
        if request.url.startswith("{{base}}"):
            named.add(operation_for(document, request.method, path))
    missing = operations(document) - named
    # the sandbox's hosted pages are reached by the URLs the API answers with
    assert {template for _, template in missing} <= {
        "/pay/{session_id}",
        "/pay/{session_id}/pay",
        "/pay/{session_id}/decline",
        "/pay/accounts/{account_id}/onboarding",
        "/checkout/success",
        "/payments/onboarding/return",
    }, sorted(missing)


def test_the_collections_users_are_minted_for_the_run() -> None:
    minted: list[tuple[str, str, str]] = []

    def mint(sub: str, email: str, name: str) -> str:
        minted.append((sub, email, name))
        return f"token-of-{sub}"

    first = collection_variables("http://gw.test/", mint)
    assert first["base"] == "http://gw.test"
    assert re.fullmatch(r"\d{5}", first["run"])
    assert first["otherId"] == f"user_http_other_{first['run']}"
    assert first["owner"] == f"token-of-user_http_owner_{first['run']}"
    assert {sub for sub, _, _ in minted[:3]} == {
        f"{sub}_{first['run']}" for sub, _, _ in COLLECTION_USERS.values()
    }


def test_a_request_is_matched_to_its_operation_literal_segments_first() -> None:
    document = {
        "paths": {
            "/me/items/{item_id}": {"get": {}, "post": {}},
            "/me/items/handshake": {"post": {}},
            "/me/items": {"get": {}, "parameters": []},
        }
    }
    assert operations(document) == {
        ("GET", "/me/items/{item_id}"),
        ("POST", "/me/items/{item_id}"),
        ("POST", "/me/items/handshake"),
        ("GET", "/me/items"),
    }
    assert operation_for(document, "POST", "/me/items/handshake") == (
        "POST",
        "/me/items/handshake",
    )
    assert operation_for(document, "POST", "/me/items/42") == ("POST", "/me/items/{item_id}")
    assert operation_for(document, "get", "/me/items/") == ("GET", "/me/items")
    assert operation_for(document, "DELETE", "/me/items/42") is None
    assert operation_for(document, "GET", "/me/items/42/parts") is None


def test_variables_that_refer_to_each_other_are_refused() -> None:
    send = Recorder()
    with pytest.raises(HttpFileError, match="refers to itself"):
        run(parse("@a = {{b}}\n@b = {{a}}\n###\nGET http://x/{{a}}\n"), send)
    assert send.sent == []
