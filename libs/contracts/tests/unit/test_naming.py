"""Type names, the registry, subjects and streams."""

from __future__ import annotations

import importlib
import re

import pytest

from coursemesh.contracts import (
    DEAD_LETTER_STREAM,
    Event,
    dead_letter_subject,
    event,
    registry,
    source_of,
    stream_for_source,
    stream_for_type,
    stream_subjects,
    subject_for,
)
from coursemesh.contracts.envelope import SOURCES

TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.v[1-9][0-9]*$")
PRODUCERS = ("catalog", "commerce", "learning", "customgen")

EXPECTED = {
    "catalog": {
        "catalog.organization.upserted.v1",
        "catalog.membership.changed.v1",
        "catalog.workout.upserted.v1",
        "catalog.workout.deleted.v1",
        "catalog.course.details_changed.v1",
        "catalog.course.curriculum_changed.v1",
        "catalog.course.published.v1",
        "catalog.course.archived.v1",
    },
    "commerce": {
        "commerce.plan.priced.v1",
        "commerce.entitlement.changed.v1",
        "commerce.entitlement.changed.v2",
        "commerce.payment.completed.v1",
        "commerce.payment.failed.v1",
        "commerce.payment.refunded.v1",
        "commerce.lead.created.v1",
        "commerce.custom_course.purchased.v1",
    },
    "learning": {
        "learning.course.started.v1",
        "learning.workout.completed.v1",
        "learning.course.completed.v1",
        "learning.course.restarted.v1",
        "learning.enrollment.paused.v1",
        "learning.enrollment.resumed.v1",
        "learning.enrollment.unlocked.v1",
    },
    "customgen": {
        "customgen.custom_course.requested.v1",
        "customgen.custom_course.ready.v1",
        "customgen.custom_course.updated.v1",
        "customgen.custom_course.content.v1",
        "customgen.audio.regenerated.v1",
        "customgen.regen_request.decided.v1",
    },
}


@pytest.mark.parametrize("type_name", sorted(registry()))
def test_type_names_are_well_formed(type_name: str) -> None:
    assert TYPE_NAME.match(type_name), type_name
    assert source_of(type_name) in SOURCES


def test_type_names_and_classes_are_unique() -> None:
    reg = registry()
    classes = list(reg.values())
    assert len(set(classes)) == len(classes), "a class is registered under two names"
    assert len({c.__name__ for c in classes}) == len(classes), "two event classes share a name"
    for name, cls in reg.items():
        assert cls.event_type == name


@pytest.mark.parametrize("source", PRODUCERS)
def test_each_module_defines_exactly_its_source_events(source: str) -> None:
    module = importlib.import_module(f"coursemesh.contracts.{source}")
    defined = {
        obj.event_type
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, Event) and obj is not Event
    }
    assert defined == EXPECTED[source]
    assert {n for n in registry() if source_of(n) == source} == EXPECTED[source]


def test_registry_is_complete_after_importing_the_package() -> None:
    expected = set().union(*EXPECTED.values()) | {"demo.counter.set.v1"}
    assert set(registry()) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "catalog.course.v1",  # no verb
        "catalog.course.published",  # no version
        "catalog.course.published.v0",
        "catalog.course.published.1",
        "Catalog.course.published.v1",
        "catalog.course-x.published.v1",
        "catalog.course.published.extra.v1",
        "catalog.course.*.v1",
        "catalog..published.v1",
        "billing.course.published.v1",  # unknown source
    ],
)
def test_event_decorator_rejects_bad_type_names(bad: str) -> None:
    with pytest.raises(ValueError):
        event(bad)


def test_event_decorator_refuses_a_second_class_for_a_name() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @event("catalog.course.published.v1")
        class Impostor(Event, frozen=True, kw_only=True):
            pass


def test_event_decorator_refuses_non_events() -> None:
    with pytest.raises(TypeError):
        event("demo.thing.happened.v1")(int)  # type: ignore[type-var]


def test_subjects_and_streams() -> None:
    assert subject_for("catalog.course.published.v1") == "catalog.course.published.v1"
    assert stream_for_type("catalog.course.published.v1") == "CATALOG"
    assert stream_for_type("customgen.custom_course.ready.v1") == "CUSTOMGEN"
    assert stream_for_source("commerce") == "COMMERCE"
    assert stream_subjects("learning") == ["learning.>"]
    assert dead_letter_subject("learning", "CATALOG") == "deadletter.CATALOG.learning"
    assert DEAD_LETTER_STREAM == "DEADLETTER"


@pytest.mark.parametrize("type_name", sorted(registry()))
def test_every_subject_is_captured_by_its_stream_only(type_name: str) -> None:
    subject = subject_for(type_name)
    tokens = subject.split(".")
    assert all(t and not set(t) & set("*> \t") for t in tokens)
    matching = [s for s in sorted(SOURCES) if any(_matches(f, subject) for f in stream_subjects(s))]
    assert matching == [source_of(type_name)]
    assert stream_for_type(type_name) == stream_for_source(source_of(type_name))


def _matches(subject_filter: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, a trailing ``>`` one or more."""
    f, s = subject_filter.split("."), subject.split(".")
    for i, token in enumerate(f):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(f) == len(s)


def test_event_catalogue_documents_every_type() -> None:
    from pathlib import Path

    catalogue = Path(__file__).resolve().parents[4] / "docs" / "events.md"
    text = catalogue.read_text(encoding="utf-8")
    undocumented = [
        n for n in sorted(registry()) if source_of(n) != "demo" and f"#### `{n}`" not in text
    ]
    assert not undocumented, f"add these types to docs/events.md: {undocumented}"
