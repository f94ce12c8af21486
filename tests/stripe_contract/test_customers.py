"""Stripe's Customers, as dealflow uses them (one per client, named by every Checkout Session),
against the sandbox and, when STRIPE_TEST_API_KEY is set, real Stripe test mode."""

from __future__ import annotations

import uuid

import pytest
import stripe

from tests.stripe_contract.harness import session_params
from tests.stripe_contract.targets import Target, key


def unique_email() -> str:
    return f"contract-{uuid.uuid4().hex[:12]}@example.com"


async def listed_ids(target: Target, **params: object) -> list[str]:
    listed = await target.client.v1.customers.list_async(params)
    return [customer.id for customer in listed.data]


async def test_a_customer_is_created_retrieved_and_listed_by_its_exact_email(
    target: Target,
) -> None:
    email = unique_email()
    customers = target.client.v1.customers
    created = await customers.create_async(
        {"email": email, "name": "Ana Client", "metadata": {"dealflow_client": email}}
    )
    assert created.id.startswith("cus_")
    assert (created.object, created.livemode, created.email, created.name) == (
        "customer",
        False,
        email,
        "Ana Client",
    )
    assert created.metadata.to_dict() == {"dealflow_client": email}
    assert isinstance(created.created, int)
    assert isinstance(created.invoice_prefix, str)
    unset = {
        name: created[name]
        for name in (
            "address",
            "currency",
            "default_source",
            "description",
            "discount",
            "phone",
            "shipping",
            "test_clock",
        )
    }
    assert unset == dict.fromkeys(unset)
    assert (created.balance, created.delinquent, created.tax_exempt) == (0, False, "none")
    assert (created.preferred_locales, created.next_invoice_sequence) == ([], 1)

    retrieved = await customers.retrieve_async(created.id)
    assert retrieved.to_dict() == created.to_dict()
    assert await listed_ids(target, email=email) == [created.id]
    assert await listed_ids(target, email=email.upper()) == [], "the email filter is exact"


async def test_customers_with_one_email_list_newest_first_a_page_at_a_time(
    target: Target,
) -> None:
    email = unique_email()
    made = [(await target.client.v1.customers.create_async({"email": email})).id for _ in range(3)]
    first = await target.client.v1.customers.list_async({"email": email, "limit": 2})
    assert ([c.id for c in first.data], first.has_more) == ([made[2], made[1]], True)
    assert first.url == "/v1/customers"
    rest = await target.client.v1.customers.list_async(
        {"email": email, "limit": 2, "starting_after": made[1]}
    )
    assert ([c.id for c in rest.data], rest.has_more) == ([made[0]], False)


async def test_a_customer_create_replays_for_its_idempotency_key(target: Target) -> None:
    params = {"email": unique_email()}
    idempotency_key = key()
    customers = target.client.v1.customers
    first = await customers.create_async(params, {"idempotency_key": idempotency_key})
    again = await customers.create_async(params, {"idempotency_key": idempotency_key})
    assert again.id == first.id
    assert again.last_response.headers.get("idempotent-replayed") == "true"
    assert await listed_ids(target, email=params["email"]) == [first.id]


async def test_a_malformed_email_is_refused_naming_it(target: Target) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await target.client.v1.customers.create_async({"email": "not-an-address"})
    assert (raised.value.http_status, raised.value.param, raised.value.code) == (
        400,
        "email",
        "email_invalid",
    )


async def test_an_unknown_customer_is_404_resource_missing(target: Target) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await target.client.v1.customers.retrieve_async("cus_doesnotexist")
    assert (raised.value.http_status, raised.value.code) == (404, "resource_missing")


# --------------------------------------------------------------------------- checkout sessions


async def test_a_checkout_session_names_its_customer(target: Target) -> None:
    customer = await target.client.v1.customers.create_async({"email": unique_email()})
    session = await target.client.v1.checkout.sessions.create_async(
        session_params(customer=customer.id)
    )
    assert (session.customer, session.customer_email) == (customer.id, None)
    retrieved = await target.client.v1.checkout.sessions.retrieve_async(session.id)
    assert retrieved.customer == customer.id


async def test_a_session_takes_a_customer_or_a_customer_email_not_both(target: Target) -> None:
    email = unique_email()
    customer = await target.client.v1.customers.create_async({"email": email})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await target.client.v1.checkout.sessions.create_async(
            session_params(customer=customer.id, customer_email=email)
        )
    assert raised.value.http_status == 400
    assert "customer_email" in str(raised.value.user_message)


async def test_a_session_for_an_unknown_customer_names_the_param(target: Target) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await target.client.v1.checkout.sessions.create_async(
            session_params(customer="cus_doesnotexist")
        )
    assert (raised.value.code, raised.value.param) == ("resource_missing", "customer")
    assert "No such customer: 'cus_doesnotexist'" in str(raised.value.user_message)


async def test_a_deleted_customer_reads_back_deleted_and_can_pay_no_more(target: Target) -> None:
    email = unique_email()
    customers = target.client.v1.customers
    customer = await customers.create_async({"email": email})
    deleted = await customers.delete_async(customer.id)
    assert (deleted.id, deleted.deleted) == (customer.id, True)
    again = await customers.retrieve_async(customer.id)
    assert (again.id, again.deleted) == (customer.id, True)
    assert await listed_ids(target, email=email) == []
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await target.client.v1.checkout.sessions.create_async(session_params(customer=customer.id))
    assert (raised.value.code, raised.value.param) == ("resource_missing", "customer")


async def test_a_paid_session_links_its_payment_to_the_customer(target: Target) -> None:
    control, receiver = target.sandbox(
        "paying a Checkout Session needs Stripe's hosted page in a browser"
    )
    email = unique_email()
    customer = await target.client.v1.customers.create_async({"email": email})
    created = await receiver.wait_for(customer.id, "customer.created")
    assert created.data.object.email == email
    session = await target.client.v1.checkout.sessions.create_async(
        session_params(customer=customer.id)
    )
    outcome = await control.pay(session.id)
    intent = await target.client.v1.payment_intents.retrieve_async(outcome["payment_intent"]["id"])
    charge = await target.client.v1.charges.retrieve_async(intent.latest_charge)
    assert (intent.customer, charge.customer) == (customer.id, customer.id)
    paid = await target.client.v1.checkout.sessions.retrieve_async(session.id)
    assert (paid.customer, paid.customer_details.email) == (customer.id, email)
    completed = await receiver.wait_for(session.id, "checkout.session.completed")
    assert completed.data.object.customer == customer.id
