"""The deterministic template script writer: a complete hypnotherapy session per day.

Each session follows the classic arc: induction (settle, breathe, relax the body), deepener
(a staircase count), suggestions (built from the buyer's goal and focus areas, with a theme
that progresses across sessions), emergence (count up, return alert). The same intake always
gives the same scripts, so tests and replays are stable. ``session_length`` chooses how many
sentences of each section are spoken.
"""

from __future__ import annotations

from typing import Final

from coursemesh.customgen.domain.course import ScriptSection, SessionScript
from coursemesh.customgen.domain.intake import Intake, SessionLength

# Sentences per section for each length; the first sentences carry the section's meaning,
# later ones lengthen it, so a brief session is still a whole session.
_SENTENCES: Final[dict[SessionLength, int]] = {"brief": 1, "standard": 4, "extended": 99}

_THEMES: Final = [
    ("Foundations of Calm", "a calm, safe place inside you that you can return to at any time"),
    ("Letting Go", "letting go of the old habits and worries that no longer serve you"),
    ("Rehearsing Success", "seeing yourself already living the change you want"),
    ("Inner Strength", "the steady strength you already carry within you"),
    ("Everyday Confidence", "carrying this new confidence into every part of your day"),
    ("Deep Renewal", "rest that renews your body and your mind"),
    ("Your New Normal", "how natural and easy these changes have become"),
]


def _induction(name: str) -> list[str]:
    return [
        f"{name}, find a comfortable position, and let your eyes gently close.",
        "Take a slow, deep breath in, hold it for a moment, and let it go.",
        "With every breath out, your shoulders soften and your jaw relaxes.",
        "Notice the weight of your body, fully supported, heavy and comfortable.",
        "Let a wave of relaxation flow from the top of your head down to the tips of your toes.",
        "There is nothing you need to do right now, nowhere you need to be.",
    ]


def _deepener() -> list[str]:
    return [
        "Now imagine a gentle staircase of ten steps, and with each step you go deeper.",
        "Ten, nine, eight, drifting down, more and more relaxed.",
        "Seven, six, five, each step doubling your comfort.",
        "Four, three, two, one, deeply relaxed, calm and open.",
        "At the bottom of the stairs is a quiet, peaceful place that is yours alone.",
    ]


def _suggestions(intake: Intake, theme: str, session: int, total: int) -> list[str]:
    goal = intake.goal.rstrip(".!?")
    lines = [
        f"In this session we focus on {theme}, and on your goal: {goal}.",
        "Your unconscious mind already knows how to make this change, and it is beginning now.",
    ]
    lines += [
        f"Whenever you think about {area}, you feel calm, capable, and in control."
        for area in intake.focus_areas
    ]
    lines += [
        "Every day, in small and natural ways, you notice yourself moving toward this goal.",
        "These suggestions settle deep within you, and they grow stronger each time you listen.",
    ]
    if session < total:
        lines.append("Tomorrow's session will build on everything you have gained today.")
    else:
        lines.append("Everything you have learned in these sessions now belongs to you.")
    return lines


def _emergence(name: str) -> list[str]:
    return [
        "In a moment I will count from one to five, and you will return feeling refreshed.",
        "One, two, energy flowing back into your arms and legs.",
        "Three, four, breathing a little deeper, aware of the room around you.",
        f"Five, eyes open, wide awake and feeling wonderful, {name}.",
    ]


def _reflection_prompts(intake: Intake, theme_title: str) -> list[str]:
    prompts = [
        f"What did you notice in your body during '{theme_title}'?",
        f"What is one small step toward '{intake.goal.rstrip('.!?')}' you can take today?",
    ]
    prompts += [f"How did you respond to {area} today?" for area in intake.focus_areas]
    return prompts


def write_template_scripts(intake: Intake) -> list[SessionScript]:
    keep = _SENTENCES[intake.session_length]
    name = intake.preferred_name
    sessions: list[SessionScript] = []
    for index in range(intake.session_count):
        title, theme = _THEMES[index % len(_THEMES)]
        number = index + 1
        suggestions = _suggestions(intake, theme, number, intake.session_count)
        # A brief session still speaks the goal and every focus area; longer ones speak all.
        spoken = suggestions
        if intake.session_length == "brief":
            spoken = suggestions[:1] + suggestions[2 : 2 + len(intake.focus_areas)]
        sessions.append(
            SessionScript(
                title=f"Session {number}: {title}",
                sections=[
                    ScriptSection("induction", " ".join(_induction(name)[:keep])),
                    ScriptSection("deepener", " ".join(_deepener()[:keep])),
                    ScriptSection("suggestions", " ".join(spoken)),
                    ScriptSection("emergence", " ".join(_emergence(name)[-keep:])),
                ],
                reflection_prompts=_reflection_prompts(intake, title),
            )
        )
    return sessions
