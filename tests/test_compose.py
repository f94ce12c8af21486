"""docker-compose.yml, read as Docker Compose reads it (no engine here): what it exposes, and where."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.paths import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each port the service publishes; an
    address left out is every interface (0.0.0.0)."""
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):  # the long syntax
            ports.append(
                (entry.get("host_ip", "0.0.0.0"), int(entry["published"]), int(entry["target"]))
            )
            continue
        *address, host_port, container_port = str(entry).rsplit(":", 2)
        ports.append((address[0] if address else "0.0.0.0", int(host_port), int(container_port)))
    return ports


def test_only_the_bridge_is_published_on_every_interface() -> None:
    everywhere = {
        name: ports
        for name, service in SERVICES.items()
        if (ports := [p for p in published(service) if p[0] != "127.0.0.1"])
    }
    assert everywhere == {"bridge": [("0.0.0.0", 8000, 8000)]}


@pytest.mark.parametrize(("name", "port"), [("temporal-ui", 8080), ("mailpit", 8025)])
def test_consoles_without_a_login_listen_on_localhost_only(name: str, port: int) -> None:
    assert published(SERVICES[name]) == [("127.0.0.1", port, port)]


def test_mailpit_runs_only_in_the_dev_profile_and_production_mail_needs_smtp_url() -> None:
    assert SERVICES["mailpit"]["profiles"] == ["dev"]
    dev_only = {name for name, service in SERVICES.items() if "profiles" in service}
    assert dev_only == {"mailpit"}
    for service in SERVICES.values():
        assert not dev_only & set(service.get("depends_on", {}))
    smtp_url = COMPOSE["x-dealflow-env"]["SMTP_URL"]
    assert smtp_url.startswith("${SMTP_URL:?"), smtp_url


def test_worker_and_bridge_run_in_production_mode() -> None:
    for name in ("worker", "bridge"):
        assert SERVICES[name]["environment"]["DEALFLOW_ENV"] == "production"
        assert "STRIPE_API_BASE" not in SERVICES[name]["environment"]
