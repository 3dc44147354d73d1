"""Organizations and their members through the use cases, on the in-memory catalog."""

from __future__ import annotations

import uuid

from coursemesh.catalog.app import organizations
from coursemesh.catalog.domain.organization import OrganizationEdit
from coursemesh.contracts.catalog import MembershipChanged, OrganizationUpserted
from coursemesh.contracts.types import Role

from .fakes import FakeCatalog, refused

OWNER = "user_owner"


async def new_org(catalog: FakeCatalog, slug: str = "move-studio", owner: str = OWNER) -> uuid.UUID:
    view = await organizations.create_organization(
        catalog, actor=owner, name="Move Studio", slug=slug, logo_url=None, currency="EUR"
    )
    return view.id


async def with_member(catalog: FakeCatalog, org: uuid.UUID, user: str, role: Role) -> None:
    await organizations.add_member(
        catalog, actor=OWNER, organization_id=org, user_id=user, role=role
    )


async def test_the_creator_becomes_owner_and_both_are_announced_at_version_1() -> None:
    catalog = FakeCatalog()
    view = await organizations.create_organization(
        catalog,
        actor=OWNER,
        name="Move Studio",
        slug="move-studio",
        logo_url="https://cdn.example.com/logo.png",
        currency="EUR",
    )
    assert (view.name, view.slug, view.currency, view.role) == (
        "Move Studio",
        "move-studio",
        "EUR",
        "owner",
    )
    (org_event,) = catalog.published(OrganizationUpserted)
    (member_event,) = catalog.published(MembershipChanged)
    assert (org_event.aggregate_id, org_event.aggregate_version) == (str(view.id), 1)
    assert member_event.aggregate_id == f"{view.id}:{OWNER}"
    assert member_event.aggregate_version == 1
    assert isinstance(member_event.payload, MembershipChanged)
    assert (member_event.payload.role, member_event.payload.is_staff) == ("owner", True)
    members = await organizations.list_members(catalog, actor=OWNER, organization_id=view.id)
    assert [(m.user_id, m.role) for m in members] == [(OWNER, "owner")]


async def test_an_unknown_currency_or_a_taken_slug_is_refused_without_a_trace() -> None:
    catalog = FakeCatalog()
    await refused(
        catalog,
        422,
        "INVALID_CURRENCY",
        organizations.create_organization(
            catalog, actor=OWNER, name="X", slug="x-studio", logo_url=None, currency="XYZ"
        ),
    )
    org = await new_org(catalog)
    err = await refused(
        catalog,
        409,
        "SLUG_TAKEN",
        organizations.create_organization(
            catalog, actor="someone", name="X", slug="move-studio", logo_url=None, currency="EUR"
        ),
    )
    assert err.extra["errors"][0]["path"] == "$.slug"
    other = await new_org(catalog, slug="other-studio")
    await refused(
        catalog,
        409,
        "SLUG_TAKEN",
        organizations.update_organization(
            catalog, actor=OWNER, organization_id=other, edit=OrganizationEdit(slug="move-studio")
        ),
    )
    # The currency is checked before anything else, even who asks.
    await refused(
        catalog,
        422,
        "INVALID_CURRENCY",
        organizations.update_organization(
            catalog, actor="outsider", organization_id=org, edit=OrganizationEdit(currency="XYZ")
        ),
    )


async def test_outsiders_see_no_organization_and_members_see_their_role() -> None:
    catalog = FakeCatalog()
    org = await new_org(catalog)
    await with_member(catalog, org, "user_m", "member")
    for call in (
        organizations.get_organization(catalog, actor="outsider", organization_id=org),
        organizations.list_members(catalog, actor="outsider", organization_id=org),
        organizations.get_organization(catalog, actor=OWNER, organization_id=uuid.uuid4()),
    ):
        await refused(catalog, 404, "ORGANIZATION_NOT_FOUND", call)
    view = await organizations.get_organization(catalog, actor="user_m", organization_id=org)
    assert view.role == "member"


async def test_only_owners_and_admins_edit_the_profile_and_each_edit_is_a_version() -> None:
    catalog = FakeCatalog()
    org = await new_org(catalog)
    await with_member(catalog, org, "user_t", "trainer")
    await with_member(catalog, org, "user_a", "admin")
    await refused(
        catalog,
        403,
        "ADMIN_ROLE_REQUIRED",
        organizations.update_organization(
            catalog, actor="user_t", organization_id=org, edit=OrganizationEdit(name="Mine")
        ),
    )
    view = await organizations.update_organization(
        catalog, actor="user_a", organization_id=org, edit=OrganizationEdit(logo_url=None)
    )
    assert (view.name, view.logo_url, view.role) == ("Move Studio", None, "admin")
    versions = [e.aggregate_version for e in catalog.published(OrganizationUpserted)]
    assert versions == [1, 2]


async def test_a_removed_member_comes_back_with_their_membership_id_and_version() -> None:
    catalog = FakeCatalog()
    org = await new_org(catalog)
    added = await organizations.add_member(
        catalog, actor=OWNER, organization_id=org, user_id="user_t", role="trainer"
    )
    await refused(
        catalog,
        409,
        "MEMBER_EXISTS",
        organizations.add_member(
            catalog, actor=OWNER, organization_id=org, user_id="user_t", role="member"
        ),
    )
    assert (
        await organizations.change_member(
            catalog, actor=OWNER, organization_id=org, user_id="user_t", role=None
        )
        is None
    )
    members = await organizations.list_members(catalog, actor=OWNER, organization_id=org)
    assert [m.user_id for m in members] == [OWNER]
    again = await organizations.add_member(
        catalog, actor=OWNER, organization_id=org, user_id="user_t", role="member"
    )
    assert again.membership_id == added.membership_id
    events = [
        e
        for e in catalog.published(MembershipChanged)
        if e.aggregate_id == f"{org}:user_t" and isinstance(e.payload, MembershipChanged)
    ]
    assert [(e.aggregate_version, e.payload.role, e.payload.is_staff) for e in events] == [
        (1, "trainer", True),
        (2, None, False),
        (3, "member", False),
    ]


async def test_the_owner_role_and_the_last_owner_are_protected() -> None:
    catalog = FakeCatalog()
    org = await new_org(catalog)
    await with_member(catalog, org, "user_a", "admin")
    await with_member(catalog, org, "user_t", "trainer")
    await refused(
        catalog,
        403,
        "OWNER_ROLE_REQUIRED",
        organizations.add_member(
            catalog, actor="user_a", organization_id=org, user_id="user_x", role="owner"
        ),
    )
    await refused(
        catalog,
        403,
        "OWNER_ROLE_REQUIRED",
        organizations.change_member(
            catalog, actor="user_a", organization_id=org, user_id=OWNER, role="admin"
        ),
    )
    await refused(
        catalog,
        403,
        "ADMIN_ROLE_REQUIRED",
        organizations.change_member(
            catalog, actor="user_t", organization_id=org, user_id="user_a", role="member"
        ),
    )
    for role in ("admin", None):
        await refused(
            catalog,
            409,
            "LAST_OWNER",
            organizations.change_member(
                catalog, actor=OWNER, organization_id=org, user_id=OWNER, role=role
            ),
        )
    # With a second owner, the first may step down.
    await organizations.change_member(
        catalog, actor=OWNER, organization_id=org, user_id="user_a", role="owner"
    )
    view = await organizations.change_member(
        catalog, actor=OWNER, organization_id=org, user_id=OWNER, role="member"
    )
    assert view is not None
    assert view.role == "member"


async def test_changing_someone_who_is_not_a_member_is_404_before_any_role_rule() -> None:
    catalog = FakeCatalog()
    org = await new_org(catalog)
    await with_member(catalog, org, "user_t", "trainer")
    for actor in (OWNER, "user_t"):
        await refused(
            catalog,
            404,
            "MEMBER_NOT_FOUND",
            organizations.change_member(
                catalog, actor=actor, organization_id=org, user_id="nobody", role="member"
            ),
        )
    await refused(
        catalog,
        404,
        "ORGANIZATION_NOT_FOUND",
        organizations.change_member(
            catalog, actor="outsider", organization_id=org, user_id="user_t", role=None
        ),
    )


async def test_my_organizations_are_mine_only_by_name_with_my_role_and_paged() -> None:
    catalog = FakeCatalog()

    async def found(name: str, slug: str, owner: str = OWNER) -> uuid.UUID:
        view = await organizations.create_organization(
            catalog, actor=owner, name=name, slug=slug, logo_url=None, currency="EUR"
        )
        return view.id

    zen = await found("Zen Yoga", "zen-yoga")
    barre = await found("Barre", "barre")
    pilates = await found("Pilates", "pilates", owner="user_other")
    await found("Aerial", "aerial", owner="user_other")  # not the caller's
    await organizations.add_member(
        catalog, actor="user_other", organization_id=pilates, user_id=OWNER, role="trainer"
    )
    commits = catalog.commits

    page = await organizations.list_my_organizations(catalog, actor=OWNER, limit=50, offset=0)
    assert [(o.id, o.name, o.role) for o in page.items] == [
        (barre, "Barre", "owner"),
        (pilates, "Pilates", "trainer"),
        (zen, "Zen Yoga", "owner"),
    ]
    assert (page.total, page.limit, page.offset) == (3, 50, 0)
    assert (page.items[0].slug, page.items[0].currency, page.items[0].logo_url) == (
        "barre",
        "EUR",
        None,
    )
    second = await organizations.list_my_organizations(catalog, actor=OWNER, limit=2, offset=2)
    assert ([o.id for o in second.items], second.total) == ([zen], 3)
    past = await organizations.list_my_organizations(catalog, actor=OWNER, limit=2, offset=9)
    assert (past.items, past.total) == ([], 3)
    nobody = await organizations.list_my_organizations(
        catalog, actor="user_new", limit=50, offset=0
    )
    assert (nobody.items, nobody.total) == ([], 0)

    # A removed membership no longer lists its organization; a read commits nothing.
    await organizations.change_member(
        catalog, actor="user_other", organization_id=pilates, user_id=OWNER, role=None
    )
    page = await organizations.list_my_organizations(catalog, actor=OWNER, limit=50, offset=0)
    assert [o.id for o in page.items] == [barre, zen]
    assert catalog.commits == commits + 1
