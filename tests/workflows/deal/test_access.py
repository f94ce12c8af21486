"""The signer's access code: above `policy.access_code_above` the client signs only with the code
mailed on its own; wrong codes count and lock signing; an operator's resend opens it again."""

from __future__ import annotations

import base64
import re

from temporalio.testing import WorkflowEnvironment

from dealflow.access_codes import access_code
from dealflow.messages import (
    OPERATOR_MAILBOX,
    DealStage,
    EmailKind,
    ResendAccessCode,
    SignSow,
)
from tests.deal_harness import DealRun, make_spec, running_deal
from tests.fakes import FAKE_SECRET_KEY
from workflows.deal import DealWorkflow


def signing(code: str | None) -> SignSow:
    return SignSow(signer_name="Ada Client", consent=True, access_code=code)


async def mailed_codes(deal: DealRun, count: int) -> list[str]:
    # The SOW and its code go out as two activities of one task: either may land first.
    await deal.wait_calls(
        f"the SOW and {count} access code mail(s)",
        lambda f: bool(f.mails(EmailKind.SOW_SENT)) and len(f.mails(EmailKind.ACCESS_CODE)) >= count,
    )
    return [mail.context["access_code"] for mail in deal.fake.mails(EmailKind.ACCESS_CODE)]


async def test_above_the_amount_the_client_signs_with_the_code_mailed_on_its_own(
    env: WorkflowEnvironment,
) -> None:
    # 1,000.00 + 2,000.00 = 3,000.00 is above 1,000.00.
    async with running_deal(env, make_spec(milestones=2, access_code_above=100_000)) as deal:
        [code] = await mailed_codes(deal, 1)
        assert len(code) == 6 and code.isdigit()
        [sow_mail] = deal.fake.mails(EmailKind.SOW_SENT)
        [code_mail] = deal.fake.mails(EmailKind.ACCESS_CODE)
        assert code not in sow_mail.model_dump_json() and code not in code_mail.subject
        assert code_mail.to == "Ada@client.example" and code_mail.message_key == "access_code:1"

        assert "enter the access code" in await deal.rejected("sign_sow", signing(None))
        wrong = "000000" if code != "000000" else "111111"
        assert await deal.rejected("sign_sow", signing(wrong)) == (
            "access_code: wrong access code; 4 tries left"
        )
        status = await deal.status()
        assert status.stage is DealStage.SOW_SENT
        assert status.access_code is not None and status.access_code.wrong_attempts == 1
        assert status.access_code.attempts_left == 4 and not status.access_code.locked

        result = await deal.update("sign_sow", signing(f"{code[:3]} {code[3:]}"))
        assert result.stage is DealStage.SIGNED
        status = await deal.status()
        summary = await deal.summary()
        history = (await deal.handle.fetch_history()).to_json()
        await deal.replay()

    # The worker made the code from its secret key; the deal's history holds neither it nor
    # anything that gives it away (before ACCESS_CODES_FROM_WORKER it came from the seeded
    # random: tests/histories/v8_access_code.json replays that path).
    [made] = deal.fake.args("send_access_code")
    assert made.issue == 1 and made.email.context["access_code"] is None
    assert code == access_code(FAKE_SECRET_KEY, made.email.deal_id, 1)
    assert code not in history and code not in base64_payloads(history)
    assert status.signature is not None and status.signature.access_code_checked
    kinds = [e.kind for e in status.timeline]
    assert kinds[:4] == ["sow_sent", "access_code_sent", "access_code_wrong", "signed"]
    # Neither the code nor anything of it shows in a query.
    assert code not in status.model_dump_json() and code not in summary.model_dump_json()


async def test_wrong_codes_lock_signing_until_an_operator_sends_a_new_code(
    env: WorkflowEnvironment,
) -> None:
    spec = make_spec(milestones=1, access_code_above=0, access_code_attempts=3)
    async with running_deal(env, spec) as deal:
        [first] = await mailed_codes(deal, 1)
        wrong = "000000" if first != "000000" else "111111"
        # A signal (the Temporal UI) counts as well as an update does.
        await deal.handle.signal(DealWorkflow.sign_sow_signal, signing(wrong))
        await deal.wait_for("the first wrong code", lambda s: s.access_code.wrong_attempts == 1)
        assert "1 try left" in await deal.rejected("sign_sow", signing(wrong))
        assert "signing is now locked" in await deal.rejected("sign_sow", signing(wrong))
        # Locked: even the right code is refused, and it no longer counts.
        assert "signing is locked after 3 wrong" in await deal.rejected("sign_sow", signing(first))
        await deal.wait_calls(
            "the lock mails", lambda f: len(f.mails(EmailKind.SIGNING_LOCKED)) == 2
        )
        locked_mails = deal.fake.mails(EmailKind.SIGNING_LOCKED)
        by_recipient = {m.to: m.context["for_operator"] for m in locked_mails}
        assert by_recipient == {"Ada@client.example": False, OPERATOR_MAILBOX: True}

        resent = await deal.update("resend_access_code", ResendAccessCode(operator="grace"))
        assert resent.message == "Access code 2 sent to the client in a mail of its own"
        [_, second] = await mailed_codes(deal, 2)
        status = await deal.status()
        assert status.access_code is not None and not status.access_code.locked
        assert status.access_code.codes_sent == 2 and status.access_code.attempts_left == 3
        if second != first:  # the first code no longer works
            assert "2 tries left" in await deal.rejected("sign_sow", signing(first))
        await deal.update("sign_sow", signing(second))
        assert "already signed" in await deal.rejected("resend_access_code", ResendAccessCode())
        status = await deal.status()
        await deal.replay()

    sent = [e for e in status.timeline if e.kind == "access_code_sent"]
    assert [e.operator for e in sent] == [None, "grace"]
    assert [e.kind for e in status.timeline].count("signing_locked") == 1
    assert first not in status.model_dump_json() and second not in status.model_dump_json()


async def test_at_or_below_the_amount_no_code_is_asked_for(env: WorkflowEnvironment) -> None:
    # 1,000.00 + 2,000.00 is not above 3,000.00.
    async with running_deal(env, make_spec(milestones=2, access_code_above=300_000)) as deal:
        await deal.wait_calls("the SOW mail", lambda f: f.mails(EmailKind.SOW_SENT))
        assert "needs no access code" in await deal.rejected(
            "resend_access_code", ResendAccessCode(operator="grace")
        )
        status = await deal.sign()

    assert status.access_code is None and status.signature is not None
    assert not status.signature.access_code_checked
    assert not deal.fake.mails(EmailKind.ACCESS_CODE)


async def test_when_the_vendor_signs_first_the_code_goes_with_the_clients_request_and_the_vendor_needs_none(
    env: WorkflowEnvironment,
) -> None:
    spec = make_spec(milestones=2, access_code_above=100_000)
    spec = spec.model_copy(update={"signing_order": ["vendor", "client"]})
    async with running_deal(env, spec) as deal:
        await deal.wait_calls("the vendor's sign request", lambda f: f.mails(EmailKind.VENDOR_SIGN_REQUEST))
        assert deal.fake.mails(EmailKind.ACCESS_CODE) == []
        vendor = SignSow(signer_name="Vera Vendor", consent=True, party="vendor")
        answer = await deal.update("sign_sow", vendor)
        assert answer.stage is DealStage.SOW_SENT
        [code] = await mailed_codes(deal, 1)
        status = await deal.status()
        assert status.awaiting_signature == "client" and status.signatures[0].access_code_checked is False

        assert "enter the access code" in await deal.rejected("sign_sow", signing(None))
        result = await deal.update("sign_sow", signing(code))
        assert result.stage is DealStage.SIGNED
        status = await deal.status()
        await deal.replay()

    assert [(s.party, s.access_code_checked) for s in status.signatures] == [("vendor", False), ("client", True)]
    kinds = [e.kind for e in status.timeline]
    assert kinds[:4] == ["sow_sent", "signature", "access_code_sent", "signature"]


def base64_payloads(history_json: str) -> str:
    """Every payload of a history as the text it encodes (JSON histories keep them in base64)."""
    found = re.findall(r'"data":\s*"([A-Za-z0-9+/=]+)"', history_json)
    return "\n".join(base64.b64decode(data).decode("utf-8", "replace") for data in found)
