"""The PDF of an invoice, receipt or credit note, drawn with reportlab's platypus from the
document's frozen data only (its copied parties and lines), so the same document always
renders the same, whatever changed in the network since."""

from __future__ import annotations

import io
from decimal import Decimal
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import KeepTogether

from billing.models import Invoice, InvoiceKind

CENT = Decimal("0.01")
# Debian's fonts-dejavu-core: names and addresses beyond Latin-1 (Ł, Ş, Greek, Cyrillic) print.
FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu")]
TITLES = {
    InvoiceKind.RECEIPT: "Receipt",
    InvoiceKind.INVOICE: "Invoice",
    InvoiceKind.CREDIT_NOTE: "Credit note",
}


@cache
def fonts() -> tuple[str, str]:
    """The regular and bold font: DejaVu Sans where the system has it (embedded in the PDF),
    else Helvetica, whose Latin-1 shows other letters as boxes."""
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            pdfmetrics.registerFont(TTFont("DejaVuSans", str(regular)))
            pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
            pdfmetrics.registerFontFamily(
                "DejaVuSans",
                normal="DejaVuSans",
                bold="DejaVuSans-Bold",
                italic="DejaVuSans",
                boldItalic="DejaVuSans-Bold",
            )
            return "DejaVuSans", "DejaVuSans-Bold"
    return "Helvetica", "Helvetica-Bold"


def money(amount: Decimal, currency: str = "") -> str:
    text = f"{Decimal(amount).quantize(CENT):,.2f}"
    return f"{text} {currency}".strip()


def number(value: Decimal, places: int = 4) -> str:
    """A quantity or unit price without trailing zeros beyond two decimals."""
    text = f"{Decimal(value):.{places}f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _date(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "tzinfo"):
        value = timezone.localtime(value)
    return value.strftime("%Y-%m-%d")


def _text(value: str) -> str:
    """Plain text for a Paragraph (which reads a small markup language)."""
    return escape(value or "").replace("\n", "<br/>")


def _party(title: str, details: dict, style) -> list:
    rows = [f"<b>{_text(title)}</b>"]
    name = details.get("legal_name") or details.get("name")
    for value in (name, details.get("address"), details.get("country")):
        if value:
            rows.append(_text(value))
    if details.get("vat_number"):
        rows.append(f"VAT number: {_text(details['vat_number'])}")
    if details.get("email"):
        rows.append(_text(details["email"]))
    return [Paragraph("<br/>".join(rows), style)]


def _status(invoice: Invoice) -> str:
    if invoice.kind == InvoiceKind.CREDIT_NOTE:
        corrected = invoice.corrects.number if invoice.corrects_id else ""
        return f"This credit note corrects {corrected}; the amounts shown are credited to you."
    if invoice.paid_at:
        return f"Paid on {_date(invoice.paid_at)}. Thank you."
    if invoice.due_at:
        return f"Unpaid: please pay {money(invoice.total, invoice.currency)} by {_date(invoice.due_at)}."
    return "Unpaid."


def render(invoice: Invoice) -> bytes:
    """The document as PDF bytes (A4)."""
    regular, bold = fonts()
    styles = getSampleStyleSheet()
    heading = ParagraphStyle("heading", parent=styles["Title"], fontName=bold)
    body = ParagraphStyle("body", parent=styles["BodyText"], fontName=regular, fontSize=9, leading=12)
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=10)
    right = ParagraphStyle("right", parent=body, alignment=TA_RIGHT)
    title = TITLES.get(invoice.kind, invoice.get_kind_display())
    currency = invoice.currency

    story: list = [Paragraph(f"{title} {_text(invoice.number)}", heading)]

    parties = Table(
        [[_party("From", invoice.seller, body), _party("To", invoice.buyer, body)]],
        colWidths=[90 * mm, 90 * mm],
    )
    parties.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story += [parties, Spacer(1, 6 * mm)]

    facts = [f"Number: {_text(invoice.number)}", f"Issued: {_date(invoice.issued_at)}"]
    if invoice.period_start and invoice.period_end:
        facts.append(f"Period: {_date(invoice.period_start)} to {_date(invoice.period_end)}")
    if invoice.due_at and invoice.kind == InvoiceKind.INVOICE:
        facts.append(f"Due: {_date(invoice.due_at)}")
    if invoice.corrects_id:
        facts.append(f"Corrects: {_text(invoice.corrects.number)} of {_date(invoice.corrects.issued_at)}")
    story.append(Paragraph("<br/>".join(facts), body))
    note = (invoice.seller or {}).get("note")
    if invoice.kind == InvoiceKind.CREDIT_NOTE and note:
        story.append(Paragraph(f"Reason: {_text(note)}", body))
    story.append(Spacer(1, 6 * mm))

    header = ["Description", "Qty", "Unit", "Unit price", "Net", "Tax %", "Tax", "Total"]
    rows: list[list] = [header]
    for line in invoice.lines.all():
        rows.append(
            [
                Paragraph(_text(line.description), small),
                number(line.quantity, 4),
                line.unit,
                number(line.unit_price, 5),
                money(line.net),
                f"{line.tax_rate:.2f}",
                money(line.tax),
                money(line.total),
            ]
        )
    table = Table(
        rows,
        colWidths=[62 * mm, 16 * mm, 14 * mm, 19 * mm, 18 * mm, 13 * mm, 16 * mm, 20 * mm],
        repeatRows=1,
    )
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), regular),
                ("FONTNAME", (0, 0), (-1, 0), bold),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f3f4f6")]),
            ]
        )
    )
    story += [table, Spacer(1, 4 * mm)]

    totals = Table(
        [
            ["Net", money(invoice.net, currency)],
            ["Tax", money(invoice.tax, currency)],
            ["Total", money(invoice.total, currency)],
        ],
        colWidths=[30 * mm, 40 * mm],
        hAlign="RIGHT",
    )
    totals.setStyle(
        TableStyle(
            [
                ("ALIGN", (0, 0), (-1, -1), "RIGHT"),
                ("FONTNAME", (0, 0), (-1, -1), regular),
                ("FONTNAME", (0, 2), (-1, 2), bold),
                ("LINEABOVE", (0, 2), (-1, 2), 0.5, colors.black),
            ]
        )
    )
    story.append(KeepTogether([totals, Spacer(1, 6 * mm), Paragraph(_text(_status(invoice)), right)]))

    seller = invoice.seller or {}
    footer = " · ".join(
        value for value in (seller.get("legal_name"), seller.get("vat_number"), seller.get("email")) if value
    )

    def page_footer(canvas, doc):
        canvas.saveState()
        canvas.setFont(regular, 7)
        canvas.drawString(15 * mm, 10 * mm, footer)
        canvas.drawRightString(A4[0] - 15 * mm, 10 * mm, f"{invoice.number}, page {doc.page}")
        canvas.restoreState()

    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=18 * mm,
        title=f"{title} {invoice.number}",
        author=seller.get("legal_name") or seller.get("name") or "",
        invariant=1,  # the same document renders to the same bytes
    )
    document.build(story, onFirstPage=page_footer, onLaterPages=page_footer)
    return buffer.getvalue()
