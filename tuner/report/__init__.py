"""What happened in a study, for people: comparison tables and a self-contained HTML report.

A lazy facade: the CLI names ``COMPARE_FORMATS`` at start-up, and the charts' plotly costs a
second to import, so nothing heavy is imported here until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner._lazy import lazy_exports

if TYPE_CHECKING:
    from tuner.report._compare import (
        COMPARE_FORMATS,
        ComparisonRow,
        compare,
        compare_snapshots,
        comparison_records,
        comparison_table,
        fmt_number,
        format_comparison,
    )
    from tuner.report._html import Plot, ReportContent, build_plots, render_html, write_pngs, write_report

_LAZY = {
    **dict.fromkeys(
        (
            "COMPARE_FORMATS",
            "ComparisonRow",
            "compare",
            "compare_snapshots",
            "comparison_records",
            "comparison_table",
            "fmt_number",
            "fmt_number",
            "format_comparison",
        ),
        "tuner.report._compare",
    ),
    **dict.fromkeys(
        ("Plot", "ReportContent", "build_plots", "render_html", "write_pngs", "write_report"), "tuner.report._html"
    ),
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "COMPARE_FORMATS",
    "ComparisonRow",
    "Plot",
    "ReportContent",
    "build_plots",
    "compare",
    "compare_snapshots",
    "comparison_records",
    "comparison_table",
    "fmt_number",
    "format_comparison",
    "render_html",
    "write_pngs",
    "write_report",
]
