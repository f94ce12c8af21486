"""Stripe's objects of taking a payment: the Checkout Session and its line items, the
PaymentIntent, its charges (a card's or a bank debit's) and the PaymentMethod they were paid
with."""

from __future__ import annotations

from typing import Any

from stripe_sandbox.banks import BankAccount
from stripe_sandbox.cards import Card
from stripe_sandbox.objects import Obj, list_object, nulls


def checkout_session(
    *,
    id: str,
    created: int,
    expires_at: int,
    url: str,
    amount_total: int,
    currency: str,
    params: dict[str, Any],
    line_items: list[Obj],
) -> Obj:
    intent_data = params.get("payment_intent_data", {})
    return {
        "id": id,
        "object": "checkout.session",
        **nulls(
            "adaptive_pricing after_expiration allow_promotion_codes allowed_payment_method_types "
            "billing_address_collection branding_settings client_secret collected_information "
            "consent consent_collection currency_conversion customer_account discounts "
            "excluded_payment_method_types integration_identifier invoice invoice_creation "
            "managed_payments name_collection optional_items origin_context payment_link "
            "payment_method_configuration_details payment_method_options permissions "
            "presentment_details recovered_from redirect_on_completion return_url "
            "saved_payment_method_options setup_intent shipping_address_collection "
            "shipping_cost submit_type subscription tax_id_collection wallet_options"
        ),
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "created": created,
        "currency": currency,
        "custom_fields": [],
        "custom_text": nulls("after_submit shipping_address submit terms_of_service_acceptance"),
        "customer": params.get("customer"),
        "customer_creation": None if "customer" in params else "if_required",
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "expires_at": expires_at,
        "livemode": False,
        "locale": params.get("locale"),
        "metadata": params.get("metadata", {}),
        "mode": "payment",
        "payment_intent": None,
        "payment_method_collection": "if_required",
        "payment_method_types": params.get("payment_method_types", ["card"]),
        "payment_status": "unpaid",
        "phone_number_collection": {"enabled": False},
        "shipping_options": [],
        "status": "open",
        "success_url": params.get("success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted_page",
        "url": url,
        "_line_items": line_items,
        "_payment_intent_data": {
            "capture_method": intent_data.get("capture_method", "automatic"),
            "metadata": intent_data.get("metadata", {}),
            "description": intent_data.get("description"),
            "transfer_group": intent_data.get("transfer_group"),
            "receipt_email": intent_data.get("receipt_email"),
        },
    }


def line_items(session: Obj) -> Obj:
    """A session's line items as Stripe lists them (`expand[]=line_items`), each with the price
    its `price_data` made; ids are derived from the session's, so they read back the same."""
    items = []
    for index, item in enumerate(session["_line_items"]):
        price, quantity = item["price_data"], item["quantity"]
        suffix = f"{session['id'][8:32]}{index}"
        amount = price["unit_amount"] * quantity
        items.append(
            {
                "id": f"li_{suffix}",
                "object": "item",
                "adjustable_quantity": None,
                "amount_discount": 0,
                "amount_subtotal": amount,
                "amount_tax": 0,
                "amount_total": amount,
                "currency": price["currency"],
                "description": price["product_data"]["name"],
                "metadata": {},
                "price": {
                    "id": f"price_{suffix}",
                    "object": "price",
                    **nulls(
                        "custom_unit_amount lookup_key nickname recurring tiers_mode "
                        "transform_quantity"
                    ),
                    "active": False,
                    "billing_scheme": "per_unit",
                    "created": session["created"],
                    "currency": price["currency"],
                    "livemode": False,
                    "metadata": {},
                    "product": f"prod_{suffix}",
                    "tax_behavior": "unspecified",
                    "type": "one_time",
                    "unit_amount": price["unit_amount"],
                    "unit_amount_decimal": str(price["unit_amount"]),
                },
                "quantity": quantity,
            }
        )
    return list_object(
        items, has_more=False, url=f"/v1/checkout/sessions/{session['id']}/line_items"
    )


def payment_intent(
    *,
    id: str,
    created: int,
    amount: int,
    currency: str,
    capture_method: str,
    metadata: dict[str, str],
    description: str | None = None,
    transfer_group: str | None = None,
    receipt_email: str | None = None,
    checkout_session: str | None = None,
    customer: str | None = None,
    payment_method_types: list[str] | None = None,
) -> Obj:
    return {
        "id": id,
        "object": "payment_intent",
        **nulls(
            "allowed_payment_method_types amount_details application application_fee_amount "
            "automatic_payment_methods customer_account excluded_payment_method_types hooks "
            "managed_payments next_action on_behalf_of payment_details "
            "payment_method_configuration_details payment_method_options payment_record "
            "presentment_details processing review setup_future_usage shipping source "
            "statement_descriptor statement_descriptor_suffix transfer_data"
        ),
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "manual" if capture_method == "manual" else "automatic",
        "client_secret": f"{id}_secret_{id[3:]}",
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": customer,
        "description": description,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": metadata,
        "payment_method": None,
        "payment_method_types": payment_method_types or ["card"],
        "receipt_email": receipt_email,
        "status": "requires_payment_method",
        "transfer_group": transfer_group,
        "_checkout_session": checkout_session,
        "_authorized_at": None,
        #: A bank debit being collected: when it settles and the account that decides how.
        "_debit_due": None,
        "_debit_failure": None,
    }


def card_details(card: Card) -> Obj:
    return {
        "brand": card.brand,
        "last4": card.last4,
        "exp_month": 12,
        "exp_year": 2034,
        "funding": "credit",
    }


def payment_method_of(charge: Obj) -> Obj:
    """The PaymentMethod a charge was paid with, as a failed payment's `last_payment_error`
    carries it: the hash of its own type only (`card`, `sepa_debit`, ...)."""
    method = charge["payment_method_details"]["type"]
    return {
        "id": charge["payment_method"],
        "object": "payment_method",
        **nulls("allow_redisplay customer_account radar_options"),
        "billing_details": charge["billing_details"],
        "created": charge["created"],
        "customer": charge["customer"],
        "livemode": False,
        "metadata": {},
        "type": method,
        method: charge["payment_method_details"][method],
    }


def charge(*, id: str, created: int, intent: Obj, card: Card, payment_method: str) -> Obj:
    failure = card.failure
    declined = failure is not None
    return {
        **_charge_of(id=id, created=created, intent=intent, payment_method=payment_method),
        "failure_code": failure.code if failure else None,
        "failure_message": failure.message if failure else None,
        "outcome": {
            "network_status": "declined_by_network" if declined else "approved_by_network",
            "reason": failure.decline_code if failure else None,
            "risk_level": "normal",
            "seller_message": (
                "The bank did not return any further details with this decline."
                if declined
                else "Payment complete."
            ),
            "type": "issuer_declined" if declined else "authorized",
        },
        "paid": not declined,
        "payment_method_details": {"card": card_details(card), "type": "card"},
        "status": "failed" if declined else "succeeded",
    }


def debit_charge(
    *, id: str, created: int, intent: Obj, account: BankAccount, payment_method: str
) -> Obj:
    """A bank debit's charge: `pending` while the bank collects it (`settled_charge` then)."""
    return {
        **_charge_of(id=id, created=created, intent=intent, payment_method=payment_method),
        "failure_code": None,
        "failure_message": None,
        "outcome": {
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "not_assessed",
            "seller_message": "The payment is pending.",
            "type": "authorized",
        },
        "paid": False,
        "payment_method_details": {
            account.method: {"last4": account.last4},
            "type": account.method,
        },
        "status": "pending",
    }


def _charge_of(*, id: str, created: int, intent: Obj, payment_method: str) -> Obj:
    """What every charge of `intent` carries, however it was paid."""
    return {
        "id": id,
        "object": "charge",
        **nulls(
            "application application_fee application_fee_amount authorization_code "
            "calculated_statement_descriptor failure_balance_transaction fraud_details level3 "
            "on_behalf_of presentment_details radar_options receipt_number receipt_url review "
            "shipping source source_transfer statement_descriptor statement_descriptor_suffix "
            "transfer transfer_data"
        ),
        "amount": intent["amount"],
        "amount_captured": 0,
        "amount_refunded": 0,
        "balance_transaction": None,
        "billing_details": {
            "address": None,
            "email": intent["receipt_email"],
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "captured": False,
        "created": created,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "payment_intent": intent["id"],
        "payment_method": payment_method,
        "receipt_email": intent["receipt_email"],
        "refunded": False,
        "transfer_group": intent["transfer_group"],
        #: Refunded through refunds (amount_refunded also counts a released, uncaptured rest).
        "_refunds_total": 0,
    }
