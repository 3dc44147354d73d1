"""The Clerk buyer directory against a local server speaking Clerk's Backend API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clerk_support import SECRET_KEY, FakeClerk, clerk_user, fake_clerk
from commerce_support import free_port

from coursemesh.commerce.adapters.identity import ClerkDirectory, DevDirectory, NoDirectory
from coursemesh.commerce.app.ports import DirectoryUnavailable


@pytest.fixture
def clerk() -> Iterator[FakeClerk]:
    with fake_clerk() as server:
        yield server


async def test_the_primary_address_is_the_one_named_by_primary_email_address_id(
    clerk: FakeClerk,
) -> None:
    clerk.users["user_2ab/c"] = clerk_user("user_2ab/c", "ada@buyer.example", "old@x.example")
    directory = ClerkDirectory(SECRET_KEY, clerk.base_url)
    assert await directory.email_of("user_2ab/c") == "ada@buyer.example"
    # the user id is one path segment, and the secret key the bearer token
    assert clerk.requests == [("/v1/users/user_2ab%2Fc", f"Bearer {SECRET_KEY}")]


async def test_an_unknown_user_is_none(clerk: FakeClerk) -> None:
    assert await ClerkDirectory(SECRET_KEY, clerk.base_url).email_of("user_nobody") is None


async def test_a_user_without_a_primary_address_is_none(clerk: FakeClerk) -> None:
    user = clerk_user("user_1", "a@b.example")
    user["primary_email_address_id"] = None
    clerk.users["user_1"] = user
    assert await ClerkDirectory(SECRET_KEY, clerk.base_url).email_of("user_1") is None


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_a_server_error_or_rate_limit_is_unavailable_not_none(
    clerk: FakeClerk, status: int
) -> None:
    clerk.users["user_1"] = clerk_user("user_1", "a@b.example")
    clerk.failures.append(status)
    directory = ClerkDirectory(SECRET_KEY, clerk.base_url)
    with pytest.raises(DirectoryUnavailable, match=str(status)):
        await directory.email_of("user_1")
    assert await directory.email_of("user_1") == "a@b.example"  # answered once it recovers


async def test_a_refused_key_is_unavailable(clerk: FakeClerk) -> None:
    clerk.users["user_1"] = clerk_user("user_1", "a@b.example")
    with pytest.raises(DirectoryUnavailable, match="401"):
        await ClerkDirectory("sk_test_wrong", clerk.base_url).email_of("user_1")


async def test_an_answer_that_is_not_a_user_is_unavailable(clerk: FakeClerk) -> None:
    clerk.users["user_1"] = {"primary_email_address_id": "idn_1", "email_addresses": "nope"}
    with pytest.raises(DirectoryUnavailable, match="malformed"):
        await ClerkDirectory(SECRET_KEY, clerk.base_url).email_of("user_1")


async def test_no_server_is_unavailable() -> None:
    directory = ClerkDirectory(SECRET_KEY, f"http://127.0.0.1:{free_port()}", timeout=2.0)
    with pytest.raises(DirectoryUnavailable):
        await directory.email_of("user_1")


async def test_an_empty_user_id_is_refused_before_any_request(clerk: FakeClerk) -> None:
    with pytest.raises(ValueError, match="user id"):
        await ClerkDirectory(SECRET_KEY, clerk.base_url).email_of("")
    assert clerk.requests == []


async def test_the_dev_directory_derives_an_address_and_none_knows_nobody() -> None:
    dev = DevDirectory("users.dev.example")
    assert await dev.email_of("user_2abc") == "user_2abc@users.dev.example"
    assert await dev.email_of("a b<c>@d") == "a_b_c__d@users.dev.example"
    assert await NoDirectory().email_of("user_2abc") is None


async def test_a_user_is_found_by_address_only_when_exactly_one_has_it(clerk: FakeClerk) -> None:
    clerk.users["user_1"] = clerk_user("user_1", "ada@buyer.example")
    clerk.users["user_2"] = clerk_user("user_2", "bo@buyer.example", "shared@x.example")
    clerk.users["user_3"] = clerk_user("user_3", "cy@buyer.example", "shared@x.example")
    directory = ClerkDirectory(SECRET_KEY, clerk.base_url)
    assert await directory.user_with_email("Ada@Buyer.example") == "user_1"
    assert await directory.user_with_email("nobody@x.example") is None
    assert await directory.user_with_email("shared@x.example") is None  # two users have it
    assert clerk.requests[0] == (
        "/v1/users?email_address=Ada%40Buyer.example&limit=2",
        f"Bearer {SECRET_KEY}",
    )


async def test_the_user_list_failing_is_unavailable(clerk: FakeClerk) -> None:
    clerk.failures.append(503)
    with pytest.raises(DirectoryUnavailable):
        await ClerkDirectory(SECRET_KEY, clerk.base_url).user_with_email("a@b.example")


async def test_the_development_directory_reads_its_own_addresses_back() -> None:
    dev = DevDirectory("users.coursemesh.local")
    address = await dev.email_of("user_guest")
    assert address == "user_guest@users.coursemesh.local"
    assert await dev.user_with_email(address) == "user_guest"
    assert await dev.user_with_email("user_guest@elsewhere.example") is None
    assert await NoDirectory().user_with_email(address) is None
