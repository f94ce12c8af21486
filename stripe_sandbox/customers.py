"""Customers: the person or business that pays, so one client's payments are linked and Stripe's
receipts go to one address. Created, retrieved, listed by exact email and deleted as in Stripe;
a Checkout Session may name one (`customer=cus_...`), and its payment intent and charge carry it.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from stripe_sandbox.core import SandboxCore
from stripe_sandbox.errors import invalid_request, resource_missing
from stripe_sandbox.indexes import Listing, Timeline
from stripe_sandbox.objects import Obj
from stripe_sandbox.store import new_id

#: What Stripe accepts as an email address: something, one @, a domain with a dot.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def customer(*, id: str, created: int, params: dict[str, Any]) -> Obj:
    """A new Customer with every field Stripe's object has, the unset ones null."""
    return {
        "id": id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "business_name": None,
        "created": created,
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": params.get("description"),
        "discount": None,
        "email": params.get("email"),
        "individual_name": None,
        "invoice_prefix": secrets.token_hex(4).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": params.get("metadata", {}),
        "name": params.get("name"),
        "next_invoice_sequence": 1,
        "phone": params.get("phone"),
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
        "_deleted": False,
    }


class Customers(SandboxCore):
    def create_customer(self, params: dict[str, Any]) -> Obj:
        email = params.get("email")
        if email is not None and not _EMAIL.match(email):
            raise invalid_request(
                f"Invalid email address: {email}", param="email", code="email_invalid"
            )
        created = customer(id=new_id("cus_", 14), created=self.now(), params=params)
        self._emit("customer.created", created)
        return created

    def live_customer(self, customer_id: str, param: str) -> Obj:
        """The customer `customer_id` names; a deleted one is as missing as one never made."""
        found = self.get(customer_id, "customer", param)
        if found["_deleted"]:
            raise resource_missing("customer", customer_id, param)
        return found

    def customers(self, filters: dict[str, Any]) -> Listing:
        """Customers not deleted, newest first; `email` matches exactly (case-sensitive, as
        Stripe's list filter does) and reads only that address's customers."""
        indexes = self.store.indexes
        timeline = (
            indexes.customers_by_email.get(filters["email"], Timeline())
            if "email" in filters
            else indexes.timelines["customer"]
        )
        return Listing.of(
            self.state.objects,
            timeline,
            lambda listed: not listed["_deleted"],
            filters.get("created"),
        )

    def delete_customer(self, customer_id: str) -> Obj:
        deleted = self.live_customer(customer_id, "id")
        deleted["_deleted"] = True
        self._emit("customer.deleted", deleted)
        return deleted

    def render_customer(self, found: Obj, expand: list[str]) -> Obj:
        """A deleted customer reads back as Stripe's stub: its id and `deleted: true`."""
        if found["_deleted"]:
            return {"id": found["id"], "object": "customer", "deleted": True}
        return self.render(found, expand)
