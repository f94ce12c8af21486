"""The contract's pure pieces: what the `DealClient` search attribute holds."""

from __future__ import annotations

from dealflow.contract import client_search_value


def test_a_client_is_found_by_a_keyed_hash_of_the_address_never_the_address() -> None:
    value = client_search_value(" Ada@Client.Example ", "dcs_secret-one")
    assert value == client_search_value("ada@client.example", "dcs_secret-one")  # one client, one value
    assert value.startswith("client-") and len(value) == len("client-") + 32
    assert "ada" not in value
    assert client_search_value("ada@client.example", "dcs_secret-two") != value  # keyed
    assert client_search_value("bob@client.example", "dcs_secret-one") != value


def test_without_a_secret_the_attribute_is_the_address_as_before() -> None:
    assert client_search_value("Ada@Client.Example", None) == "ada@client.example"
