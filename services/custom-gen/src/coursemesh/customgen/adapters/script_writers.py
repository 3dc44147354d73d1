"""Script writers: the deterministic template (default) and an n8n webhook workflow.

n8n webhook contract (``deploy/n8n/custom-course-scripts.json`` implements it):

    POST <N8N_WEBHOOK_URL>
    {"customCourseId": "…", "courseCode": "X99ENB",
     "intake": {"goal": "…", "preferredName": "…", "focusAreas": […], "voice": "calm_female",
                "sessionCount": 3, "sessionLength": "standard"}}
    -> 200 {"sessions": [{"title": "…",
                          "sections": [{"kind": "induction|deepener|suggestions|emergence",
                                        "text": "…"}, …],
                          "reflectionPrompts": ["…", …]}, …]}

exactly ``sessionCount`` sessions, each with its four sections.
"""

from __future__ import annotations

from typing import Annotated

import httpx
import msgspec

from coursemesh.customgen.app.ports import ScriptRequest, ScriptWriterError
from coursemesh.customgen.domain.course import ScriptSection, SectionKind, SessionScript
from coursemesh.customgen.domain.template_scripts import write_template_scripts

_REQUIRED_SECTIONS: set[str] = {"induction", "deepener", "suggestions", "emergence"}


class TemplateScriptWriter:
    name = "template"

    async def write(self, request: ScriptRequest) -> list[SessionScript]:
        return write_template_scripts(request.intake)


Text = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]


class _Section(msgspec.Struct, frozen=True):
    kind: SectionKind
    text: Text


class _Session(msgspec.Struct, frozen=True, rename="camel"):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    sections: Annotated[list[_Section], msgspec.Meta(min_length=4, max_length=12)]
    reflection_prompts: Annotated[list[Text], msgspec.Meta(max_length=20)] = msgspec.field(
        default_factory=list
    )


class _Answer(msgspec.Struct, frozen=True):
    sessions: list[_Session]


class _Request(msgspec.Struct, frozen=True, rename="camel"):
    custom_course_id: str
    course_code: str
    intake: dict[str, object]


class N8nScriptWriter:
    name = "n8n"

    def __init__(self, webhook_url: str, *, timeout: float = 120.0) -> None:
        self.webhook_url = webhook_url
        self.timeout = timeout

    async def write(self, request: ScriptRequest) -> list[SessionScript]:
        body = msgspec.json.encode(
            _Request(
                custom_course_id=request.custom_course_id,
                course_code=request.course_code,
                intake=msgspec.to_builtins(request.intake),
            )
        )
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(
                    self.webhook_url,
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
        except httpx.HTTPError as exc:
            raise ScriptWriterError(f"n8n webhook unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise ScriptWriterError(f"n8n webhook answered {response.status_code}")
        try:
            answer = msgspec.json.decode(response.content, type=_Answer)
        except msgspec.ValidationError as exc:
            raise ScriptWriterError(f"n8n answer is malformed: {exc}") from exc
        if len(answer.sessions) != request.intake.session_count:
            raise ScriptWriterError(
                f"n8n wrote {len(answer.sessions)} sessions, "
                f"{request.intake.session_count} were asked for"
            )
        for session in answer.sessions:
            missing = _REQUIRED_SECTIONS - {s.kind for s in session.sections}
            if missing:
                raise ScriptWriterError(f"n8n session lacks {sorted(missing)}")
        return [
            SessionScript(
                title=s.title,
                sections=[ScriptSection(x.kind, x.text) for x in s.sections],
                reflection_prompts=list(s.reflection_prompts),
            )
            for s in answer.sessions
        ]
