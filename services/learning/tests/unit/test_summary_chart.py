"""The summary's SVG chart: well-formed, every text escaped, bars to scale (unit: no I/O)."""

from __future__ import annotations

from xml.etree import ElementTree

from coursemesh.learning.app.staff import CourseSummary
from coursemesh.learning.http.summary import summary_svg

NS = "{http://www.w3.org/2000/svg}"


def _summary(**figures: object) -> CourseSummary:
    base: dict[str, object] = {
        "course_name": "30-day reset",
        "enrolled": 4,
        "started": 3,
        "active_last_7_days": 2,
        "completed": 1,
        "median_adherence_percent": 66,
    }
    return CourseSummary(**{**base, **figures})  # type: ignore[arg-type]


def test_bars_are_to_scale_against_enrolled_and_100_percent() -> None:
    chart = ElementTree.fromstring(summary_svg(_summary()))
    widths = [int(r.attrib["width"]) for r in chart.iter(f"{NS}rect")]
    assert widths == [200, 150, 100, 50, 132]
    texts = [t.text for t in chart.iter(f"{NS}text")]
    assert "66 %" in texts


def test_a_hostile_course_name_is_text_not_markup() -> None:
    name = '</title><script>alert(1)</script><text x="0">&'
    svg = summary_svg(_summary(course_name=name))
    chart = ElementTree.fromstring(svg)
    assert not list(chart.iter(f"{NS}script"))
    assert chart.find(f"{NS}title") is not None
    assert chart.find(f"{NS}title").text == f"{name}: buyers and adherence"  # type: ignore[union-attr]


def test_no_buyer_draws_empty_bars_and_no_median() -> None:
    chart = ElementTree.fromstring(
        summary_svg(
            _summary(
                course_name=None,
                enrolled=0,
                started=0,
                active_last_7_days=0,
                completed=0,
                median_adherence_percent=None,
            )
        )
    )
    assert {int(r.attrib["width"]) for r in chart.iter(f"{NS}rect")} == {0}
    assert "n/a" in [t.text for t in chart.iter(f"{NS}text")]
