"""One valid example payload for every registered event type.

Used by the contract tests (round trips), by ``docs/events.md`` and by service tests that need a
well-formed event of another service. Values are fixed, so examples are deterministic.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from coursemesh.contracts import catalog, commerce, customgen, demo, learning
from coursemesh.contracts.envelope import Event
from coursemesh.contracts.types import CurriculumDay, CurriculumItem

__all__ = ["EXAMPLE_TIME", "example_payloads"]

EXAMPLE_TIME = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)

ORG = uuid.UUID("0195f0a0-0000-7000-8000-000000000001")
COURSE = uuid.UUID("0195f0a0-0000-7000-8000-000000000002")
WORKOUT_A = uuid.UUID("0195f0a0-0000-7000-8000-000000000003")
WORKOUT_B = uuid.UUID("0195f0a0-0000-7000-8000-000000000004")
ITEM_A0 = uuid.UUID("0195f0a0-0000-7000-8000-000000000005")
ITEM_B0 = uuid.UUID("0195f0a0-0000-7000-8000-000000000006")
ITEM_A2 = uuid.UUID("0195f0a0-0000-7000-8000-000000000007")
MEMBERSHIP = uuid.UUID("0195f0a0-0000-7000-8000-000000000008")
PLAN = uuid.UUID("0195f0a0-0000-7000-8000-000000000009")
ENTITLEMENT = uuid.UUID("0195f0a0-0000-7000-8000-00000000000a")
TRANSACTION = uuid.UUID("0195f0a0-0000-7000-8000-00000000000b")
LEAD = uuid.UUID("0195f0a0-0000-7000-8000-00000000000c")
OFFER = uuid.UUID("0195f0a0-0000-7000-8000-00000000000d")
PURCHASE = uuid.UUID("0195f0a0-0000-7000-8000-00000000000e")
CUSTOM_COURSE = uuid.UUID("0195f0a0-0000-7000-8000-00000000000f")
AUDIO = uuid.UUID("0195f0a0-0000-7000-8000-000000000010")
REGEN = uuid.UUID("0195f0a0-0000-7000-8000-000000000011")
TRAINER = "user_2trainerAbc"
BUYER = "user_2buyerXyz"
CHECKSUM = "9e107d9d372bb6826bd81d3542a419d6"
AUDIO_CHECKSUM = "e4d909c290d0fb1ca068ffaddf22cbd0"


def _curriculum() -> list[CurriculumDay]:
    """Three days: two workouts, a rest day, and workout A again (the several-days case)."""
    return [
        CurriculumDay(
            day_offset=0,
            is_rest=False,
            items=[
                CurriculumItem(item_id=ITEM_A0, workout_id=WORKOUT_A, position=0),
                CurriculumItem(item_id=ITEM_B0, workout_id=WORKOUT_B, position=1),
            ],
        ),
        CurriculumDay(day_offset=1, is_rest=True, items=[]),
        CurriculumDay(
            day_offset=2,
            is_rest=False,
            items=[CurriculumItem(item_id=ITEM_A2, workout_id=WORKOUT_A, position=0)],
        ),
    ]


def example_payloads() -> dict[str, Event]:
    """Type name -> an example payload, for every event type defined by this package."""
    t = EXAMPLE_TIME
    examples: list[Event] = [
        catalog.OrganizationUpserted(
            organization_id=ORG,
            name="Peak Form Studio",
            slug="peak-form",
            logo_url="https://cdn.example.com/peak-form.png",
            currency="USD",
        ),
        catalog.MembershipChanged(
            organization_id=ORG,
            user_id=TRAINER,
            membership_id=MEMBERSHIP,
            role="trainer",
            is_staff=True,
        ),
        catalog.WorkoutUpserted(
            workout_id=WORKOUT_A,
            organization_id=ORG,
            title="Mobility flow",
            description="Twenty minutes of joint mobility.",
            duration_minutes=20,
            instructions="Move slowly; breathe through the nose.",
            media_urls=["https://cdn.example.com/mobility.mp4"],
        ),
        catalog.WorkoutDeleted(workout_id=WORKOUT_B, organization_id=ORG, deleted_at=t),
        catalog.CourseDetailsChanged(
            course_id=COURSE,
            organization_id=ORG,
            name="30-day reset",
            description="A gentle month of daily movement.",
            image_url=None,
            duration_days=3,
            preview_type="first_day",
            status="draft",
        ),
        catalog.CurriculumChanged(
            course_id=COURSE,
            organization_id=ORG,
            curriculum_version=3,
            duration_days=3,
            days=_curriculum(),
        ),
        catalog.CoursePublished(
            course_id=COURSE, organization_id=ORG, published_at=t, curriculum_version=3
        ),
        catalog.CourseArchived(course_id=COURSE, organization_id=ORG, archived_at=t),
        commerce.PlanPriced(
            plan_id=PLAN,
            course_id=COURSE,
            organization_id=ORG,
            price_in_cents=4900,
            currency="USD",
            is_active=True,
        ),
        commerce.EntitlementChanged(
            entitlement_id=ENTITLEMENT,
            user_id=BUYER,
            course_id=COURSE,
            organization_id=ORG,
            status="active",
            access_revoked_at=None,
            source_payment_transaction_id=TRANSACTION,
            membership_id=None,
            previous_status="pending",
            cause="payment_completed",
            reason=None,
            changed_at=t,
        ),
        commerce.EntitlementChangedV2(
            entitlement_id=ENTITLEMENT,
            user_id=BUYER,
            course_id=COURSE,
            organization_id=ORG,
            status="active",
            access_revoked_at=None,
            source_payment_transaction_id=TRANSACTION,
            membership_id=None,
            previous_status="pending",
            cause="payment_completed",
            reason=None,
            changed_at=t,
        ),
        commerce.PaymentCompleted(
            transaction_id=TRANSACTION,
            entitlement_id=ENTITLEMENT,
            custom_course_purchase_id=None,
            organization_id=ORG,
            user_id=BUYER,
            amount_in_cents=4900,
            currency="USD",
            provider="sandbox",
            provider_transaction_id="sbx_txn_0001",
            completed_at=t,
        ),
        commerce.PaymentFailed(
            transaction_id=TRANSACTION,
            entitlement_id=ENTITLEMENT,
            custom_course_purchase_id=None,
            organization_id=ORG,
            user_id=BUYER,
            amount_in_cents=4900,
            currency="USD",
            provider="stripe",
            provider_transaction_id="cs_test_a1b2c3",
            failure_reason="card_declined",
            failed_at=t,
        ),
        commerce.PaymentRefunded(
            transaction_id=TRANSACTION,
            entitlement_id=None,
            custom_course_purchase_id=PURCHASE,
            organization_id=ORG,
            user_id=BUYER,
            amount_in_cents=9900,
            currency="USD",
            provider="stripe",
            provider_transaction_id="pi_3abc",
            refunded_at=t,
        ),
        commerce.LeadCreated(
            lead_id=LEAD,
            organization_id=ORG,
            user_id=BUYER,
            email="buyer@example.com",
            source="course_purchase",
            created_at=t,
        ),
        commerce.CustomCoursePurchased(
            purchase_id=PURCHASE,
            offer_id=OFFER,
            user_id=BUYER,
            organization_id=ORG,
            course_code="X99ENB",
            offer_title="Your personal calm course",
            amount_in_cents=9900,
            currency="USD",
            transaction_id=TRANSACTION,
            purchased_at=t,
        ),
        learning.CourseStarted(
            entitlement_id=ENTITLEMENT,
            user_id=BUYER,
            course_id=COURSE,
            organization_id=ORG,
            start_date=date(2025, 3, 1),
            restart_count=0,
        ),
        learning.WorkoutCompleted(
            entitlement_id=ENTITLEMENT,
            user_id=BUYER,
            course_id=COURSE,
            organization_id=ORG,
            item_id=ITEM_A2,
            workout_id=WORKOUT_A,
            day_offset=2,
            curriculum_version=3,
            completed_at=t,
        ),
        learning.CourseCompleted(
            entitlement_id=ENTITLEMENT,
            user_id=BUYER,
            course_id=COURSE,
            organization_id=ORG,
            completed_at=t,
        ),
        learning.CourseRestarted(
            entitlement_id=ENTITLEMENT,
            user_id=BUYER,
            course_id=COURSE,
            organization_id=ORG,
            restart_count=1,
            start_date=date(2025, 4, 1),
        ),
        learning.EnrollmentPaused(
            entitlement_id=ENTITLEMENT,
            user_id=BUYER,
            course_id=COURSE,
            organization_id=ORG,
            paused_on=date(2025, 4, 3),
            paused_by=BUYER,
            run=1,
        ),
        learning.EnrollmentResumed(
            entitlement_id=ENTITLEMENT,
            user_id=BUYER,
            course_id=COURSE,
            organization_id=ORG,
            paused_on=date(2025, 4, 3),
            resumed_on=date(2025, 4, 6),
            paused_days=3,
            total_paused_days=3,
            resumed_by=BUYER,
            run=1,
        ),
        learning.EnrollmentUnlocked(
            entitlement_id=ENTITLEMENT,
            user_id=BUYER,
            course_id=COURSE,
            organization_id=ORG,
            unlocked_at=datetime(2025, 4, 6, 9, 30, tzinfo=UTC),
            unlocked_by=TRAINER,
            reason="travelling, wants the whole plan",
            run=1,
        ),
        customgen.CustomCourseRequested(
            custom_course_id=CUSTOM_COURSE,
            user_id=BUYER,
            organization_id=ORG,
            purchase_id=PURCHASE,
            course_code="X99ENB",
        ),
        customgen.CustomCourseReady(
            custom_course_id=CUSTOM_COURSE, user_id=BUYER, checksum=CHECKSUM, file_size_bytes=48213
        ),
        customgen.CustomCourseUpdated(
            custom_course_id=CUSTOM_COURSE,
            user_id=BUYER,
            checksum=CHECKSUM,
            file_size_bytes=48391,
            reason="audio_regenerated",
        ),
        customgen.CustomCourseContent(
            custom_course_id=CUSTOM_COURSE,
            user_id=BUYER,
            organization_id=ORG,
            version=3,
            checksum="bba5d68b53d71ec28ffa770b7a8bfe51",  # MD5 of the document
            file_size_bytes=111,
            document=(
                '{"audio_files":[{"id":"0195f0a0-0000-7000-8000-000000000010","session":1}],'
                '"metadata":{"course_code":"X99ENB"}}'
            ),
            files=[
                customgen.CourseFile(
                    file_id=str(AUDIO),
                    session=1,
                    md5=AUDIO_CHECKSUM,
                    sha256="2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
                    size_bytes=482133,
                    content_type="audio/mpeg",
                )
            ],
        ),
        customgen.AudioRegenerated(
            custom_course_id=CUSTOM_COURSE,
            user_id=BUYER,
            audio_id=AUDIO,
            regen_request_id=REGEN,
            checksum=CHECKSUM,
            file_size_bytes=48391,
            audio_checksum=AUDIO_CHECKSUM,
        ),
        customgen.RegenRequestDecided(
            regen_request_id=REGEN,
            custom_course_id=CUSTOM_COURSE,
            organization_id=ORG,
            user_id=BUYER,
            audio_id=AUDIO,
            decision="approved",
            decided_by=TRAINER,
            note="Re-recording it at a calmer pace.",
        ),
        demo.CounterSet(counter_id="c-1", value=42),
    ]
    return {type(e).event_type: e for e in examples}
