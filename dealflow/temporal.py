"""Connecting to Temporal the SDK's way, and the search attributes deals are found by."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfigProfile

DEAL_STAGE = SearchAttributeKey.for_keyword("DealStage")
DEAL_CLIENT = SearchAttributeKey.for_keyword("DealClient")
DEAL_AMOUNT_CENTS = SearchAttributeKey.for_int("DealAmountCents")
DEAL_COLLECTED_CENTS = SearchAttributeKey.for_int("DealCollectedCents")
SEARCH_ATTRIBUTES = (DEAL_STAGE, DEAL_CLIENT, DEAL_AMOUNT_CENTS, DEAL_COLLECTED_CENTS)


def search_attribute_flags() -> list[str]:
    """`--search-attribute Name=Type` arguments for `temporal server start-dev`."""
    kinds = {"KEYWORD": "Keyword", "INT": "Int"}
    return [
        arg
        for key in SEARCH_ATTRIBUTES
        for arg in ("--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}")
    ]


async def connect(*, lazy: bool = False) -> Client:
    """Connect using `temporalio.envconfig` (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, API key, TLS,
    or a profile in the config file), with the pydantic data converter every model needs.

    `lazy` connects on first use, for processes that must start while Temporal is down (the
    bridge keeps accepting webhooks into its inbox then)."""
    config = ClientConfigProfile.load().to_client_connect_config()
    config.setdefault("target_host", "localhost:7233")
    return await Client.connect(**config, data_converter=pydantic_data_converter, lazy=lazy)
