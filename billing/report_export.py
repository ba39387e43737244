"""Energy and revenue reports as files: CSV (amounts as exact decimal strings) and PDF (a
reportlab table with the totals per currency)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

from django.http import StreamingHttpResponse
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from .reports import GROUP_BY_CHOICES, Row

CSV_HEADER = [
    "group_by",
    "key",
    "label",
    "currency",
    "sessions",
    "energy_kwh",
    "revenue_net",
    "revenue_tax",
    "revenue_total",
]


def _csv_line(group_by: str, row: Row) -> list[str]:
    return [
        group_by,
        "" if row["key"] is None else str(row["key"]),
        row["label"],
        row["currency"],
        str(row["sessions"]),
        str(row["energy_kwh"]),
        str(row["revenue_net"]),
        str(row["revenue_tax"]),
        str(row["revenue_total"]),
    ]


def csv_lines(rows: Iterable[Row], totals: Iterable[Row], *, group_by: str = "") -> Iterator[list[str]]:
    """The header, a line per row, then a ``total`` line per currency."""
    yield CSV_HEADER
    for row in rows:
        yield _csv_line(group_by, row)
    for row in totals:
        yield _csv_line("total", row)


class _Echo:
    """A file-like object whose ``write`` hands the line back, for streaming with csv.writer."""

    def write(self, value: str) -> str:
        return value


def stream_csv(rows: Iterable[Row], totals: Iterable[Row], *, group_by: str, filename: str):
    """A streamed CSV download (rows are written as the client reads them)."""
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(line) for line in csv_lines(rows, totals, group_by=group_by)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def csv_bytes(rows: Iterable[Row], totals: Iterable[Row], *, group_by: str = "") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(csv_lines(rows, totals, group_by=group_by))
    return buffer.getvalue().encode()


def pdf_bytes(*, title: str, group_by: str, rows: Sequence[Row], totals: Sequence[Row]) -> bytes:
    """A landscape A4 document: the title, a table of the rows and the totals per currency."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        title=title,
        author="ChargeDesk",
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
    )
    styles = getSampleStyleSheet()
    by = dict(GROUP_BY_CHOICES).get(group_by, group_by)
    header = [by, "Currency", "Sessions", "Energy (kWh)", "Net", "Tax", "Total"]

    def line(row: Row) -> list[str]:
        return [
            row["label"],
            row["currency"],
            str(row["sessions"]),
            str(row["energy_kwh"]),
            str(row["revenue_net"]),
            str(row["revenue_tax"]),
            str(row["revenue_total"]),
        ]

    data = [header, *(line(r) for r in rows)]
    first_total = len(data)
    data.extend(line(r) for r in totals)
    if not rows:
        data.insert(1, ["No sessions in this period.", "", "", "", "", "", ""])
        first_total += 1
    table = Table(
        data, repeatRows=1, colWidths=[90 * mm, 22 * mm, 24 * mm, 32 * mm, 30 * mm, 30 * mm, 30 * mm]
    )
    style = [
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e2e8f0")),
        ("ALIGN", (2, 0), (-1, -1), "RIGHT"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.HexColor("#334155")),
        ("ROWBACKGROUNDS", (0, 1), (-1, first_total - 1), [colors.white, colors.HexColor("#f8fafc")]),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    if totals:
        style += [
            ("LINEABOVE", (0, first_total), (-1, first_total), 0.75, colors.HexColor("#334155")),
            ("FONTNAME", (0, first_total), (-1, -1), "Helvetica-Bold"),
        ]
    table.setStyle(TableStyle(style))
    story = [
        Paragraph(title, styles["Title"]),
        Paragraph(
            "Sessions count in the period they started in; revenue as priced, per currency.", styles["Normal"]
        ),
        Spacer(1, 6 * mm),
        table,
    ]
    doc.build(story)
    return buffer.getvalue()
