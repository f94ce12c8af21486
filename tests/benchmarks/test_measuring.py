"""What the benchmarks read besides histories: the server's action counter, a process's CPU
seconds, the payment and portal links in the clients' mail."""

from __future__ import annotations

import os
from email.message import EmailMessage
from pathlib import Path

import pytest

from benchmarks.cpu import CpuMeter, Watched, process_seconds
from benchmarks.mail import MailIndex
from benchmarks.stack import parse_actions
from demo.http import DemoStepFailed
from devstack.mailsink import MailSink

METRICS = """\
# HELP action action counter
# TYPE action counter
action{action_type="command_ScheduleActivityTask",namespace="default",operation="RespondWorkflowTaskCompleted",service_name="frontend"} 28
action{action_type="grpc_QueryWorkflow",namespace="default",operation="QueryWorkflow",service_name="frontend"} 2
action{action_type="grpc_StartWorkflowExecution",namespace="temporal_system",operation="StartWorkflowExecution",service_name="frontend"} 5
service_requests{namespace="default",operation="QueryWorkflow",service_name="frontend"} 2
"""


def test_the_action_counter_of_one_namespace() -> None:
    assert parse_actions(METRICS) == {"command_ScheduleActivityTask": 28, "grpc_QueryWorkflow": 2}


def test_cpu_seconds_grow_with_work() -> None:
    meter = CpuMeter(
        {"this": Watched(os.getpid()), "this, as a tree": Watched(os.getpid(), tree=True)}
    )
    meter.start()
    before = process_seconds(os.getpid())
    while process_seconds(os.getpid()) - before < 0.05:
        sum(range(10_000))
    used = meter.stop()
    assert used["this"] >= 0.05 and used["this, as a tree"] >= 0.05


def _mail(deal_id: str, kind: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["X-Dealflow-Deal"], message["X-Dealflow-Kind"] = deal_id, kind
    message.set_content(text)
    return message


async def test_the_mail_index_finds_portal_and_payment_links(tmp_path: Path) -> None:
    index = MailIndex(MailSink(tmp_path))
    portal = "http://127.0.0.1:8000/portal/d-1?token=abc.DEF_1"
    index.read(_mail("d-1", "sow_sent", f"Sign here: {portal}\n"))
    index.read(
        _mail("d-1", "payment_link", f"{portal}\nPay: http://127.0.0.1:12111/c/pay/cs_test_A1\n")
    )
    index.read(_mail("d-1", "payment_link", "Pay: http://127.0.0.1:12111/c/pay/cs_test_B2\n"))
    assert await index.portal_link("d-1", timeout=1) == portal
    assert await index.checkout_session("d-1", 1, timeout=1) == "cs_test_B2"
    assert index.kinds["d-1"] == {"sow_sent": 1, "payment_link": 2}
    with pytest.raises(DemoStepFailed, match="payment link 3 for d-1"):
        await index.checkout_session("d-1", 2, timeout=0.1)
