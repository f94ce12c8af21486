"""The receipts' and certificates' own line breaking: every line fits, nothing is lost."""

from __future__ import annotations

from fpdf import FPDF

from activities.receipt_pdf import wrap


def helvetica(size: float = 11) -> FPDF:
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("Helvetica", size=size)
    return pdf


def test_words_wrap_at_spaces_and_every_line_fits() -> None:
    pdf = helvetica()
    text = "The amount above was paid by the client through Stripe and released to the vendor. " * 4
    lines = wrap(pdf, text.strip(), 80)
    assert len(lines) > 4
    assert all(pdf.get_string_width(line) <= 80 for line in lines)
    assert " ".join(lines) == text.strip()


def test_a_word_wider_than_the_line_is_cut_where_it_must_be() -> None:
    pdf = helvetica()
    word = "pi_" + "x" * 200
    lines = wrap(pdf, f"id {word} end", 60)
    assert "".join(lines).replace(" ", "") == f"id{word}end"
    assert all(pdf.get_string_width(line) <= 60 for line in lines)


def test_line_breaks_in_the_text_are_kept_and_empty_text_is_one_empty_line() -> None:
    pdf = helvetica()
    assert wrap(pdf, "first\nsecond", 100) == ["first", "second"]
    assert wrap(pdf, "", 100) == [""]
