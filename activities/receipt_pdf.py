"""The PDF of one receipt, drawn with fpdf2's built-in Helvetica so no font file is needed.

The built-in fonts cover Latin-1 only. Text outside it is simplified for print (accents dropped,
dashes and quotes made plain, anything else shown as '?'); the receipt's ledger row keeps the
exact text, so the PDF is a rendering of the record, not the record itself.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from fpdf import FPDF

from dealflow.messages import ReceiptInput
from dealflow.modes import NOT_REAL_MONEY, money_mode
from dealflow.money import format_money

_PLAIN = str.maketrans(
    {
        "\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
        "\u2026": "...", "\u0141": "L", "\u0142": "l", "\u0110": "D", "\u0111": "d",
        "\u0152": "OE", "\u0153": "oe", "\u20ac": "EUR",
    }
)  # fmt: skip


def printable(text: str) -> str:
    """`text` in the characters Helvetica can print (Latin-1)."""
    out = []
    for char in text.translate(_PLAIN):
        if ord(char) < 256:
            out.append(char)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if ord(c) < 256)
        out.append(base or "?")
    return "".join(out)


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    """`text` broken into lines no wider than `width` in the current font: at spaces, and
    inside a word only when the word alone is wider. Each word is measured once, where fpdf's
    own multi_cell measures the line again for every character (most of a receipt's time)."""
    lines: list[str] = []
    space = pdf.get_string_width(" ")
    for paragraph in text.split("\n"):
        line, line_width = "", 0.0
        for word in paragraph.split(" "):
            word_width = pdf.get_string_width(word)
            if line and line_width + space + word_width <= width:
                line, line_width = f"{line} {word}", line_width + space + word_width
                continue
            if line:
                lines.append(line)
            while word_width > width and len(word) > 1:
                cut = _fitting(pdf, word, width)
                lines.append(word[:cut])
                word = word[cut:]
                word_width = pdf.get_string_width(word)
            line, line_width = word, word_width
        lines.append(line)
    return lines


def _fitting(pdf: FPDF, word: str, width: float) -> int:
    """How many of the word's first characters fit in `width` (at least one)."""
    used = 0.0
    for count, char in enumerate(word):
        used += pdf.get_string_width(char)
        if used > width:
            return max(count, 1)
    return len(word)


def print_wrapped(pdf: FPDF, text: str, height: float) -> None:
    """`text` from the current position to the right margin, wrapped, every line starting where
    the first did; then on to the next line at the left margin (as multi_cell does)."""
    x = pdf.get_x()
    width = pdf.w - pdf.r_margin - x - 2 * pdf.c_margin
    for line in wrap(pdf, text, width):
        pdf.set_x(x)
        pdf.cell(w=0, h=height, text=line, new_x="LMARGIN", new_y="NEXT")


def print_lines(
    pdf: FPDF, lines: list[tuple[str, str]], *, label_width: float = 55, size: float = 11
) -> None:
    """Labelled lines, the label in bold on the left, long values wrapped beside it."""
    height = size * 8 / 11
    for label, value in lines:
        pdf.set_font("Helvetica", style="B", size=size)
        pdf.cell(w=label_width, h=height, text=printable(label))
        pdf.set_font("Helvetica", size=size)
        print_wrapped(pdf, printable(value), height)


def print_note(pdf: FPDF, text: str) -> None:
    """A paragraph in small print, as a document's closing note."""
    pdf.set_font("Helvetica", size=9)
    print_wrapped(pdf, text, 5)


def receipt_lines(
    receipt_number: str, receipt: ReceiptInput, issued_at: datetime
) -> list[tuple[str, str]]:
    """The labelled lines of the receipt, in print order (also what tests read back)."""
    lines = [
        ("Receipt number", receipt_number),
        ("Deal", f"{receipt.deal_title} ({receipt.deal_id})"),
        ("Milestone", f"{receipt.milestone_title} ({receipt.milestone_key})"),
        ("Paid by (client)", f"{receipt.client_name} <{receipt.client_email}>"),
        ("Paid to (vendor)", f"{receipt.vendor_name} <{receipt.vendor_email}>"),
        ("Amount released", format_money(receipt.amount, receipt.currency)),
        *(
            [("Of which late fee", format_money(receipt.late_fee, receipt.currency))]
            if receipt.late_fee
            else []
        ),
        *_split(receipt),
        ("Released at", utc(receipt.released_at)),
        ("Issued at", utc(issued_at)),
    ]
    stripe_ids = [
        ("Stripe payment intent", receipt.payment_intent_id),
        ("Stripe charge", receipt.charge_id),
        ("Stripe transfer", receipt.transfer_id),
    ]
    lines.extend((label, value) for label, value in stripe_ids if value)
    return lines


def _split(receipt: ReceiptInput) -> list[tuple[str, str]]:
    """Gross, platform fee and vendor share, when the platform kept a fee."""
    if not receipt.platform_fee:
        return []
    return [
        ("Platform fee", format_money(receipt.platform_fee, receipt.currency)),
        ("Vendor share", format_money(receipt.amount - receipt.platform_fee, receipt.currency)),
    ]


def render_receipt_pdf(receipt_number: str, receipt: ReceiptInput, issued_at: datetime) -> bytes:
    """One A4 page. The PDF's creation date is `issued_at`, so the same receipt renders the same."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(issued_at.astimezone(UTC))
    pdf.set_title(printable(f"Receipt {receipt_number}"))
    pdf.set_author("dealflow")
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=20)
    pdf.cell(text=f"Receipt {receipt_number}", new_x="LMARGIN", new_y="NEXT")
    warning = NOT_REAL_MONEY[money_mode(livemode=receipt.livemode, sandbox=receipt.sandbox)]
    if warning:
        pdf.set_text_color(170, 0, 0)
        pdf.set_font("Helvetica", style="B", size=12)
        pdf.cell(text=warning, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    pdf.ln(6)
    print_lines(pdf, receipt_lines(receipt_number, receipt, issued_at))
    pdf.ln(8)
    print_note(
        pdf,
        "The amount above was paid by the client through Stripe, confirmed by Stripe and "
        "released to the vendor for the milestone above. Receipts are numbered once and "
        "never altered.",
    )
    return bytes(pdf.output())
