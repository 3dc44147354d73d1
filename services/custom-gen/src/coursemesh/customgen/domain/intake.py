"""The buyer's intake: what the personalised course is shaped by."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Voice = Literal["calm_female", "calm_male", "neutral"]
SessionLength = Literal["brief", "standard", "extended"]
FocusArea = Annotated[str, msgspec.Meta(min_length=2, max_length=60)]

DEFAULT_SESSION_COUNT = 3
DEFAULT_SESSION_LENGTH: SessionLength = "standard"
DEFAULT_VOICE: Voice = "calm_female"


class Intake(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """``goal`` and ``preferredName`` are required; the rest have the documented defaults."""

    goal: Annotated[str, msgspec.Meta(min_length=3, max_length=500)]
    preferred_name: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
    focus_areas: Annotated[list[FocusArea], msgspec.Meta(max_length=5)] = msgspec.field(
        default_factory=list
    )
    voice: Voice = DEFAULT_VOICE
    session_count: Annotated[int, msgspec.Meta(ge=1, le=7)] = DEFAULT_SESSION_COUNT
    session_length: SessionLength = DEFAULT_SESSION_LENGTH
    """How much of each section is spoken: ``brief`` one sentence per section, ``standard``
    four, ``extended`` all of them."""

    def normalised(self) -> Intake:
        """Whitespace-trimmed copy; a goal or name that is only blanks is refused by the caller."""
        return msgspec.structs.replace(
            self,
            goal=" ".join(self.goal.split()),
            preferred_name=" ".join(self.preferred_name.split()),
            focus_areas=[" ".join(a.split()) for a in self.focus_areas if a.strip()],
        )

    @property
    def is_blank(self) -> bool:
        """A goal or name that is only blanks (checked on the :meth:`normalised` copy)."""
        return len(self.goal) < 3 or not self.preferred_name
