"""What `dealflow dev` will run, decided from the settings and checked before anything starts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from dealflow.secret_rules import PAYLOAD_KEYS, SECRETS
from dealflow.serve import check_port_free
from dealflow.settings import ConfigError, Settings

HOST = "127.0.0.1"


class DevStackError(RuntimeError):
    """The dev stack cannot start as configured; the message says what to change."""


class DevPorts(BaseSettings):
    """The fixed ports of the dev stack, each movable by its own setting."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    bridge: int = Field(default=8000, ge=1, le=65535, alias="DEALFLOW_BRIDGE_PORT")
    sandbox: int = Field(default=12111, ge=1, le=65535, alias="DEALFLOW_SANDBOX_PORT")
    smtp: int = Field(default=1025, ge=1, le=65535, alias="DEALFLOW_SMTP_PORT")
    temporal: int = Field(default=7233, ge=1, le=65535, alias="DEALFLOW_TEMPORAL_PORT")
    temporal_ui: int = Field(default=8233, ge=1, le=65535, alias="DEALFLOW_TEMPORAL_UI_PORT")

    @classmethod
    def setting(cls, name: str) -> str:
        alias = cls.model_fields[name].alias
        assert alias is not None
        return alias


def load_ports() -> DevPorts:
    try:
        return DevPorts()
    except ValidationError as error:
        first = error.errors()[0]
        raise ConfigError(f"{first['loc'][0]}: {first['msg']}") from error


@dataclass(frozen=True)
class DevPlan:
    """What `dealflow dev` will run: each external setting replaces one embedded component."""

    home: Path
    ports: DevPorts
    settings: Settings
    public_url: str
    temporal_ui_url: str
    #: None: run the dev server; otherwise TEMPORAL_ADDRESS (connected through envconfig).
    temporal_address: str | None
    #: None: run the embedded Postgres.
    database_url: str | None
    #: None: run the sink.
    smtp_url: str | None

    @property
    def real_stripe(self) -> bool:
        return self.settings.stripe_api_key is not None

    @property
    def secrets(self) -> dict[str, str]:
        values = {name: str(getattr(self.settings, attribute)) for name, (attribute, _) in SECRETS.items()}
        if self.settings.payload_codec() is not None:
            values[PAYLOAD_KEYS] = self.settings.payload_keys
        return values

    def ports_to_bind(self) -> list[tuple[int, str]]:
        """(port, setting) of every server this plan starts on this machine."""
        wanted = [(self.ports.bridge, "bridge")]
        if not self.real_stripe:
            wanted.append((self.ports.sandbox, "sandbox"))
        if self.smtp_url is None:
            wanted.append((self.ports.smtp, "smtp"))
        if self.temporal_address is None:
            wanted += [(self.ports.temporal, "temporal"), (self.ports.temporal_ui, "temporal_ui")]
        return [(port, DevPorts.setting(name)) for port, name in wanted]


def make_plan(settings: Settings, ports: DevPorts, environ: Mapping[str, str] = os.environ) -> DevPlan:
    """Decide every component from the settings; refuse what dev must never do."""
    if not settings.dev:
        raise DevStackError("DEALFLOW_ENV=production: `dealflow dev` is for development only")
    if settings.stripe_mode == "live":
        raise DevStackError(
            "STRIPE_API_KEY is a live key: `dealflow dev` runs with a test key (sk_test_...) or, "
            "without STRIPE_API_KEY, the offline sandbox"
        )
    explicit = settings.model_fields_set
    public_url = settings.public_url if "public_url" in explicit else f"http://localhost:{ports.bridge}"
    if settings.stripe_api_key and not settings.stripe_webhook_secret:
        raise DevStackError(
            "STRIPE_API_KEY is set but STRIPE_WEBHOOK_SECRET is not. Run "
            f"`stripe listen --forward-to {public_url}/webhooks/stripe`, set STRIPE_WEBHOOK_SECRET to the "
            "whsec_... it prints, and start again (or unset STRIPE_API_KEY to use the offline sandbox)"
        )
    return DevPlan(
        home=settings.home,
        ports=ports,
        settings=settings,
        public_url=public_url,
        temporal_ui_url=(
            settings.temporal_ui_url if "temporal_ui_url" in explicit else f"http://localhost:{ports.temporal_ui}"
        ),
        temporal_address=environ.get("TEMPORAL_ADDRESS") or None,
        database_url=settings.database_url,
        smtp_url=settings.smtp_url if "smtp_url" in explicit else None,
    )


def check_ports(plan: DevPlan) -> None:
    """PortInUse (naming the setting) for the first taken port, before anything starts."""
    for port, setting in plan.ports_to_bind():
        check_port_free(HOST, port, setting)
