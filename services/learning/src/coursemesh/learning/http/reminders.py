"""Reminder e-mails: the learner's setting (``/me/courses/:id/reminders``) and the anonymous
one-click unsubscribe of the mailed link (``/public/reminders/unsubscribe``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from coursemesh.chassis.auth import Principal, authenticated
from coursemesh.chassis.errors import Conflict
from coursemesh.chassis.openapi import problems
from coursemesh.learning.adapters.reminders import SqlReminderStorage
from coursemesh.learning.app import reminders
from coursemesh.learning.bootstrap import runtime
from coursemesh.learning.domain.reminders import ReminderSetting, verify_unsubscribe_token
from coursemesh.learning.http.player import NOT_OWNED
from coursemesh.learning.http.schemas import ReminderOut, ReminderRequest, UnsubscribeOut

Token = Annotated[str, QueryParameter(name="token", max_length=256, description="From the link")]
INVALID_SETTING = ((422, "INVALID_LOCAL_TIME"), (422, "INVALID_TIME_ZONE"))
CANNOT_SEND = ((409, "REMINDERS_UNAVAILABLE"), (422, "REMINDER_EMAIL_UNKNOWN"))
BAD_LINK = ((400, "INVALID_UNSUBSCRIBE_TOKEN"), (409, "REMINDERS_UNAVAILABLE"))


def _out(setting: ReminderSetting | None) -> ReminderOut:
    if setting is None:
        return ReminderOut(enabled=False, local_time=None, time_zone=None, email=None)
    return ReminderOut(
        enabled=setting.enabled,
        local_time=setting.local_time.strftime("%H:%M"),
        time_zone=setting.time_zone,
        email=setting.email,
    )


def _storage(request: Request[Any, Any, Any]) -> SqlReminderStorage:
    return SqlReminderStorage(runtime(request).database)


class ReminderController(Controller):
    path = "/me/courses/{course_id:uuid}/reminders"
    guards = [authenticated]

    @get("/", opt=problems(*NOT_OWNED))
    async def read_reminders(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        course_id: FromPath[uuid.UUID],
    ) -> ReminderOut:
        """The learner's reminder e-mails for the course (off when never set)."""
        return _out(await reminders.read_setting(_storage(request), principal.sub, course_id))

    @put("/", status_code=200, opt=problems(*NOT_OWNED, *INVALID_SETTING, *CANNOT_SEND))
    async def set_reminders(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        course_id: FromPath[uuid.UUID],
        data: JSONBody[ReminderRequest],
    ) -> ReminderOut:
        """Opt in or out of a daily e-mail at ``localTime`` in ``timeZone``, sent to the address
        of the caller's token."""
        found = runtime(request)
        setting = await reminders.save_setting(
            _storage(request),
            principal.sub,
            course_id,
            enabled=data.enabled,
            local_time=data.local_time,
            time_zone=data.time_zone,
            email=principal.email,
            key=found.settings.reminder_signing_key,
            now=found.clock(),
        )
        return _out(setting)


def _verified(request: Request[Any, Any, Any], token: str) -> uuid.UUID:
    key = runtime(request).settings.reminder_signing_key
    if key is None:
        raise Conflict("Reminder e-mails are not configured", code="REMINDERS_UNAVAILABLE")
    return verify_unsubscribe_token(token, key)


class UnsubscribeController(Controller):
    """Anonymous: the signed token of the mailed link is the only credential, and it can only
    turn that course's reminders off."""

    path = "/public/reminders/unsubscribe"

    @get("/", opt=problems(*BAD_LINK))
    async def unsubscribe_status(
        self, request: Request[Any, Any, Any], token: Token
    ) -> UnsubscribeOut:
        """Whether the link's reminders are on; changes nothing (mail scanners follow links)."""
        entitlement_id = _verified(request, token)
        return UnsubscribeOut(enabled=await reminders.subscribed(_storage(request), entitlement_id))

    @post("/", status_code=200, opt=problems(*BAD_LINK))
    async def unsubscribe(self, request: Request[Any, Any, Any], token: Token) -> UnsubscribeOut:
        """One-click unsubscribe (RFC 8058): the body (``List-Unsubscribe=One-Click``) is not
        read; a repeat answers the same."""
        entitlement_id = _verified(request, token)
        await reminders.unsubscribe(_storage(request), entitlement_id, runtime(request).clock())
        return UnsubscribeOut(enabled=False)
