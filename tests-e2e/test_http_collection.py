"""``docs/coursemesh.http``, the request collection a client developer starts from, run through
the gateway as its own client would: one request after the other, each once the previous answer
is in, no retry. Every request must get the status its ``# expect:`` names, and together the
requests must reach every operation of ``docs/openapi.json``. Only the steps marked ``# until:``
(a payment provider's webhook, audio generation) are repeated until their state is reached.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from suite import Suite

from coursemesh.devstack.httpfile import (
    Exchange,
    collection_variables,
    parse,
    run,
    urllib_sender,
)
from coursemesh.devstack.openapi import default_path, operation_for, operations

pytestmark = pytest.mark.e2e

CONTRACT = default_path()
COLLECTION = CONTRACT.parent / "coursemesh.http"
#: The steps that wait for something truly asynchronous, and what for.
ASYNCHRONOUS = {
    "GET /organizations/{org_id}/payments/account": "the provider's account webhook",
    "GET /me/courses/{course_id}": "the provider's payment webhook",
    "GET /me/custom-courses/{course_id}": "audio generation",
}


def test_the_request_collection_runs_back_to_back_and_reaches_every_operation(
    suite: Suite,
) -> None:
    identity = suite.stack.identity
    variables = collection_variables(
        suite.base_url,
        lambda sub, email, name: identity.mint_token(sub, email=email, name=name),
    )
    collection = parse(COLLECTION.read_text())

    exchanges = run(collection, urllib_sender(), variables=variables)

    assert len(exchanges) == len(collection.requests)
    document = json.loads(CONTRACT.read_text())
    reached: dict[tuple[str, str], Exchange] = {}
    waited: set[str] = set()
    for exchange in exchanges:
        url = urlsplit(exchange.url)
        assert f"{url.scheme}://{url.netloc}" == suite.base_url, exchange.url  # all via gateway
        operation = operation_for(document, exchange.method, url.path)
        assert operation is not None, f"{exchange.method} {url.path} is in no operation"
        reached.setdefault(operation, exchange)
        if exchange.request.until is not None:
            waited.add(" ".join(operation))
    assert set(reached) == operations(document), sorted(operations(document) - set(reached))
    assert waited == set(ASYNCHRONOUS)
    # a refusal in the collection is the documented one, as problem+json with its code
    for (method, template), code in {
        ("POST", "/webhooks/payments/{org_id}"): "WEBHOOK_SIGNATURE_INVALID",
        ("POST", "/webhooks/stripe"): "WEBHOOK_ENDPOINT_NOT_IN_USE",
    }.items():
        answer = reached[(method, template)].answer
        assert answer.header("content-type") == "application/problem+json"
        assert answer.json()["code"] == code
