"""Stripe's objects of money moving after a payment: refunds, transfers and their reversals,
balance transactions, and disputes with the evidence they can hold."""

from __future__ import annotations

from typing import Any

from stripe_sandbox.objects import Obj, list_object, nulls


def refund(
    *, id: str, created: int, amount: int, charge: Obj, reason: str | None, metadata: dict[str, str]
) -> Obj:
    return {
        "id": id,
        "object": "refund",
        **nulls(
            "customer_account description destination_details failure_balance_transaction "
            "failure_reason instructions_email next_action pending_reason presentment_details "
            "source_transfer_reversal transfer_reversal"
        ),
        "amount": amount,
        "balance_transaction": None,
        "charge": charge["id"],
        "created": created,
        "currency": charge["currency"],
        "customer": charge["customer"],
        "metadata": metadata,
        "payment_intent": charge["payment_intent"],
        "payment_method": charge["payment_method"],
        "reason": reason,
        "receipt_number": None,
        "status": "succeeded",
    }


def transfer(*, id: str, created: int, params: dict[str, Any], destination_payment: str) -> Obj:
    return {
        "id": id,
        "object": "transfer",
        "amount": params["amount"],
        "amount_reversed": 0,
        "balance_transaction": None,
        "created": created,
        "currency": params["currency"],
        "description": params.get("description"),
        "destination": params["destination"],
        "destination_payment": destination_payment,
        "livemode": False,
        "metadata": params.get("metadata", {}),
        "reversals": list_object([], has_more=False, url=f"/v1/transfers/{id}/reversals"),
        "reversed": False,
        "source_transaction": params.get("source_transaction"),
        "source_type": "card",
        "transfer_group": params.get("transfer_group"),
    }


def transfer_reversal(
    *, id: str, created: int, transfer: Obj, amount: int, params: dict[str, Any]
) -> Obj:
    return {
        "id": id,
        "object": "transfer_reversal",
        "amount": amount,
        "balance_transaction": None,
        "created": created,
        "currency": transfer["currency"],
        "destination_payment_refund": None,
        "metadata": params.get("metadata", {}),
        "source_refund": None,
        "transfer": transfer["id"],
    }


#: Stripe's reporting category of a balance transaction type, where the two differ.
_REPORTING_CATEGORY = {"transfer_refund": "transfer_reversal"}


def balance_transaction(
    id: str, created: int, type: str, source: Obj, amount: int, fee: int, available_on: int
) -> Obj:
    """Money moving through the balance: `amount` signed (a charge or a transfer reversal in, a
    refund or a transfer out), `net` what it did to the balance after `fee`."""
    currency = source["currency"]
    fee_details = (
        [
            {
                "amount": fee,
                "application": None,
                "currency": currency,
                "description": "Stripe processing fees",
                "type": "stripe_fee",
            }
        ]
        if fee
        else []
    )
    return {
        "id": id,
        "object": "balance_transaction",
        "amount": amount,
        "available_on": available_on,
        "balance_type": "payments",
        "created": created,
        "currency": currency,
        "description": source.get("description"),
        "exchange_rate": None,
        "fee": fee,
        "fee_details": fee_details,
        "net": amount - fee,
        "reporting_category": _REPORTING_CATEGORY.get(type, type),
        "source": source["id"],
        "status": "available" if available_on <= created else "pending",
        "type": type,
    }


#: The evidence a dispute can hold, as Stripe names it; `FILE_EVIDENCE` name a file upload.
TEXT_EVIDENCE = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_tracking_number",
    "uncategorized_text",
)
FILE_EVIDENCE = (
    "cancellation_policy",
    "customer_communication",
    "customer_signature",
    "duplicate_charge_documentation",
    "receipt",
    "refund_policy",
    "service_documentation",
    "shipping_documentation",
    "uncategorized_file",
)


def dispute(*, id: str, created: int, charge: Obj, amount: int, reason: str) -> Obj:
    return {
        "id": id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge["id"],
        "created": created,
        "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": {
            **dict.fromkeys(sorted((*TEXT_EVIDENCE, *FILE_EVIDENCE))),
            "enhanced_evidence": {},
        },
        "evidence_details": {
            "due_by": created + 7 * 86400,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
            "submission_method": "not_submitted",
        },
        "intended_submission_method": None,
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "network_reason_code": None,
        "payment_intent": charge["payment_intent"],
        "payment_method_details": {
            "card": {
                "brand": charge["payment_method_details"]["card"]["brand"],
                "case_type": "chargeback",
                "network": charge["payment_method_details"]["card"]["brand"],
                "network_reason_code": None,
            },
            "type": "card",
        },
        "reason": reason,
        "status": "needs_response",
    }
