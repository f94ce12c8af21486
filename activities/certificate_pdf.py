"""The PDF of a signing certificate: who signed which version of the statement of work, how
and when, drawn as receipts are (`activities.receipt_pdf`: built-in Helvetica, Latin-1).

Everything printed comes from the certificate's input, and the PDF's creation date is the last
signature's time, so one deal's certificate renders to the same bytes (and SHA-256) every time.
"""

from __future__ import annotations

from fpdf import FPDF

from activities.receipt_pdf import print_lines, print_note, printable, utc
from dealflow.messages import CertificateInput, Signature


def certificate_lines(certificate: CertificateInput) -> list[tuple[str, str]]:
    """The document's labelled lines, in print order (also what tests read back)."""
    return [
        ("Deal", f"{certificate.deal_title} ({certificate.deal_id})"),
        ("Document", f"Statement of work, version {certificate.sow_version}"),
        ("Document SHA-256", certificate.sow_sha256),
        ("Completed at", utc(certificate.completed_at)),
    ]


def signature_lines(certificate: CertificateInput, signature: Signature) -> list[tuple[str, str]]:
    """One signature's evidence, as printed under its party."""
    party = next((p for p in certificate.parties if p.party == signature.party), None)
    return [
        ("Party", f"{signature.party}: {party.name} <{party.email}>" if party else signature.party),
        ("Signed as", signature.signer_name),
        ("Consent", "given: agreed to sign electronically" if signature.consent else "not given"),
        ("Signed at", utc(signature.signed_at)),
        ("IP address", signature.ip or "not recorded"),
        ("Browser", signature.user_agent or "not recorded"),
        ("Document SHA-256", signature.sow_sha256),
        ("Document version", str(signature.sow_version)),
    ]


def render_certificate_pdf(certificate: CertificateInput) -> bytes:
    """One A4 document: the document's lines, then each signature in the order given."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(certificate.completed_at)
    pdf.set_title(printable(f"Signing certificate {certificate.deal_id} v{certificate.sow_version}"))
    pdf.set_author("dealflow")
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=20)
    pdf.cell(text="Signing certificate", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    print_lines(pdf, certificate_lines(certificate), label_width=45, size=10)
    for number, signature in enumerate(certificate.signatures, start=1):
        pdf.ln(4)
        pdf.set_font("Helvetica", style="B", size=14)
        pdf.cell(text=f"Signature {number}", new_x="LMARGIN", new_y="NEXT")
        print_lines(pdf, signature_lines(certificate, signature), label_width=45, size=10)
    pdf.ln(6)
    print_note(
        pdf,
        "Each signer read the statement of work whose SHA-256 is shown, typed their name and "
        "consented to sign electronically; the IP address and browser are those of the "
        "connection that signed. The deal's ledger keeps this certificate and its SHA-256.",
    )
    return bytes(pdf.output())

