"""Settings from the environment (and `.env`), validated when a process starts.

Secrets are never defaulted. In dev mode (`DEALFLOW_ENV=dev`, the default) a missing secret is
generated once and kept in `<DEALFLOW_HOME>/secrets.env`, so every process of one dev stack
shares it; in production a missing or placeholder-looking secret stops the process with a
message that names the setting.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dealflow.codec import EncryptionCodec, parse_payload_keys
from dealflow.links import PortalLinks
from dealflow.operators import ADMIN_OPERATOR, OPERATORS, parse_operators
from dealflow.secret_rules import (
    MIN_SECRET_BITS,
    SECRETS,
    ensure_dev_secrets,
    estimated_entropy_bits,
    secret_problem,
)

StripeMode = Literal["live", "test", "sandbox", "unconfigured"]

def is_offline_sandbox(stripe_api_base: str | None) -> bool:
    """A base address other than Stripe's is the offline sandbox: its money is never real."""
    return bool(stripe_api_base) and urlparse(stripe_api_base).hostname != "api.stripe.com"


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message names it. Processes exit on it at startup."""


class Settings(BaseSettings):
    # No populate_by_name: pydantic-settings would then also read each field by its bare name,
    # so `home` would come from $HOME and `env` from $ENV.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    env: Literal["dev", "production"] = Field(default="dev", alias="DEALFLOW_ENV")
    home: Path = Field(default=Path(".dealflow"), alias="DEALFLOW_HOME")
    task_queue: str = Field(default="deals", alias="DEALFLOW_TASK_QUEUE", min_length=1)
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    stripe_api_key: str | None = Field(default=None, alias="STRIPE_API_KEY")
    stripe_webhook_secret: str | None = Field(default=None, alias="STRIPE_WEBHOOK_SECRET")
    stripe_api_base: str | None = Field(default=None, alias="STRIPE_API_BASE")
    smtp_url: str = Field(default="smtp://127.0.0.1:1025", alias="SMTP_URL")
    mail_from: str = Field(default="dealflow <deals@dealflow.localhost>", alias="DEALFLOW_MAIL_FROM")
    #: Where mails for the platform's operator go (chargebacks and their evidence); unset: to
    #: DEALFLOW_MAIL_FROM's address.
    operator_email: str | None = Field(default=None, alias="DEALFLOW_OPERATOR_EMAIL")
    public_url: str = Field(default="http://localhost:8000", alias="DEALFLOW_PUBLIC_URL")
    temporal_ui_url: str = Field(default="http://localhost:8233", alias="DEALFLOW_TEMPORAL_UI_URL")
    secret_key: str | None = Field(default=None, alias="DEALFLOW_SECRET_KEY")
    admin_token: str | None = Field(default=None, alias="DEALFLOW_ADMIN_TOKEN")
    #: Legacy, dev only: one vendor key for every deal (production refuses it; vendors have keys).
    vendor_token: str | None = Field(default=None, alias="DEALFLOW_VENDOR_TOKEN")
    #: Named operators, `name:token,...` (dealflow.operators); DEALFLOW_ADMIN_TOKEN is one more.
    operator_tokens: str | None = Field(default=None, alias=OPERATORS, repr=False)
    #: Signs work orders POSTed to vendors (X-Dealflow-Signature); vendors verify with it.
    delivery_secret: str | None = Field(default=None, alias="DEALFLOW_DELIVERY_SECRET")
    #: Bearer token of the dev sandbox's `/_sandbox/` controls (pay, dispute, move its clock).
    sandbox_token: str | None = Field(default=None, alias="DEALFLOW_SANDBOX_TOKEN")
    #: Keys the `DealClient` search attribute (`dealflow.contract.client_search_value`), so
    #: Temporal's visibility store finds a client's deals without holding their e-mail address.
    #: Keep it for good: deals started under another secret are found by that secret's value.
    client_search_secret: str | None = Field(default=None, alias="DEALFLOW_CLIENT_SEARCH_SECRET")
    #: Fetch vendor artifacts from private addresses (this machine, the LAN)? Unset: only in dev.
    allow_private_artifact_hosts: bool | None = Field(
        default=None, alias="DEALFLOW_ALLOW_PRIVATE_ARTIFACT_HOSTS"
    )
    #: Stripe events the bridge's relay signals at once (each deal's events still go one by one).
    relay_concurrency: int = Field(default=32, ge=1, le=1000, alias="DEALFLOW_RELAY_CONCURRENCY")
    #: How long a portal link in a mail stays valid.
    portal_link_days: int = Field(default=30, ge=1, le=365, alias="DEALFLOW_PORTAL_LINK_DAYS")

    # The worker's capacity (worker.py). Defaults measured with `python -m benchmarks.memory`
    # on 2 cores; the README's "Memory and start-up" section has the figures.
    #: Deals kept in memory between their tasks. A deal out of the cache replays its history on
    #: its next task (milliseconds); each cached deal costs about 200 KB of RSS, so this bounds
    #: the worker's memory whatever the number of open deals (10,000 open: about 240 MB). It holds
    #: 100 deals in flight five times over.
    worker_max_cached_workflows: int = Field(
        default=500, ge=0, le=100_000, alias="DEALFLOW_WORKER_MAX_CACHED_WORKFLOWS"
    )
    #: Workflow tasks run at once; never more than the cache holds.
    worker_max_concurrent_workflow_tasks: int = Field(
        default=100, ge=2, le=10_000, alias="DEALFLOW_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS"
    )
    #: Activities run at once (they wait on Postgres, SMTP, Stripe: I/O, not CPU).
    worker_max_concurrent_activities: int = Field(
        default=100, ge=1, le=10_000, alias="DEALFLOW_WORKER_MAX_CONCURRENT_ACTIVITIES"
    )
    #: Long polls for workflow tasks (sticky and normal queue together). The SDK's default leaves
    #: one on the normal queue, which starves under a backlog on the dev server; 20 keeps up.
    worker_workflow_pollers: int = Field(default=20, ge=2, le=1000, alias="DEALFLOW_WORKER_WORKFLOW_POLLERS")
    #: Long polls for activity tasks.
    worker_activity_pollers: int = Field(default=20, ge=1, le=1000, alias="DEALFLOW_WORKER_ACTIVITY_POLLERS")
    #: How long a deal's task waits for the worker that has the deal cached before any worker
    #: takes it: after a crash the deal stalls this long (the SDK's default is 10 s); see worker.py.
    worker_sticky_timeout_seconds: float = Field(
        default=2.0, gt=0, le=600, alias="DEALFLOW_WORKER_STICKY_TIMEOUT_SECONDS"
    )
    #: `shared`: every module is imported once and passed through the workflow sandbox to every
    #: deal; `per-run`: the SDK's default, each deal's sandbox imports the workflows package again
    #: and checks what its modules call (more memory per cached deal; the tests' workers and the
    #: replay tests run that way, so workflow code is still held to the sandbox's rules).
    worker_sandbox_imports: Literal["shared", "per-run"] = Field(
        default="shared", alias="DEALFLOW_WORKER_SANDBOX_IMPORTS"
    )

    # What operators see (dealflow.telemetry, dealflow.logs; the README's "Observability").
    #: `host:port` where the worker serves Temporal's SDK metrics for Prometheus (/metrics).
    #: Unset: not served, so several workers on one machine (the chaos run) never compete for it.
    worker_metrics_address: str | None = Field(default=None, alias="DEALFLOW_WORKER_METRICS_ADDRESS")
    #: Worker Versioning (README: "Deploying new workflow code"): the worker deployment (no `.`:
    #: Temporal writes a version `name.build`) and this build, both or neither; unset: unversioned.
    worker_deployment_name: str | None = Field(default=None, alias="DEALFLOW_WORKER_DEPLOYMENT_NAME", pattern=r"^[^.]+$")
    worker_build_id: str | None = Field(default=None, alias="DEALFLOW_WORKER_BUILD_ID")
    #: An OpenTelemetry collector's OTLP/HTTP base address (`http://collector:4318`): the worker,
    #: the bridge and the starter send their traces there. Unset: no traces.
    otlp_endpoint: str | None = Field(default=None, alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    #: `json`: one object a line with the deal, workflow and trace ids, for a log pipeline;
    #: `text`: for people. Unset: json in production, text in dev.
    log_format: Literal["text", "json"] | None = Field(default=None, alias="DEALFLOW_LOG_FORMAT")

    # What Temporal's store holds (dealflow.codec; the README's "Encrypted payloads").
    #: `key-id:base64-key,...` (32-byte keys): the first encrypts every payload, all decrypt.
    #: Required in production; in dev, generated into secrets.env when DEALFLOW_ENCRYPT_PAYLOADS.
    payload_keys: str | None = Field(default=None, alias="DEALFLOW_PAYLOAD_KEYS", repr=False)
    #: Encrypt payloads? Unset: always in production; in dev only when DEALFLOW_PAYLOAD_KEYS is
    #: set (or a dev stack generated it once). `true` in dev generates the keys.
    encrypt_payloads: bool | None = Field(default=None, alias="DEALFLOW_ENCRYPT_PAYLOADS")

    @field_validator("worker_metrics_address", "otlp_endpoint", "payload_keys", "worker_deployment_name",
                     "worker_build_id", "operator_tokens", mode="before")  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("worker_metrics_address")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port (like 127.0.0.1:9464), not {value!r}")
        return value

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and urlparse(value).scheme not in ("http", "https"):
            raise ValueError(f"expected an http(s) URL (like http://collector:4318), not {value!r}")
        return value

    @field_validator("payload_keys")
    @classmethod
    def _payload_keys(cls, value: str | None) -> str | None:
        if value is not None:
            parse_payload_keys(value)  # its PayloadKeyError (a ValueError) names the entry
        return value

    @field_validator("operator_tokens")
    @classmethod
    def _operators(cls, value: str | None) -> str | None:
        if value is not None:
            parse_operators(value)  # its ValueError names the entry
        return value

    @model_validator(mode="after")
    def _workflow_tasks_fit_the_cache(self) -> Settings:
        cached, tasks = self.worker_max_cached_workflows, self.worker_max_concurrent_workflow_tasks
        if 0 < cached < tasks:
            raise ValueError(
                f"DEALFLOW_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS ({tasks}) is more than "
                f"DEALFLOW_WORKER_MAX_CACHED_WORKFLOWS ({cached}): a workflow task needs its deal in the cache"
            )
        return self

    @model_validator(mode="after")
    def _deployment_and_build_together(self) -> Settings:
        if (self.worker_deployment_name is None) != (self.worker_build_id is None):
            missing = "DEALFLOW_WORKER_BUILD_ID" if self.worker_build_id is None else "DEALFLOW_WORKER_DEPLOYMENT_NAME"
            raise ValueError(f"{missing} is not set: Worker Versioning needs the deployment name and the build id")
        return self

    @property
    def dev(self) -> bool:
        return self.env == "dev"

    @property
    def json_logs(self) -> bool:
        return self.log_format == "json" if self.log_format else not self.dev

    @property
    def private_artifact_hosts_allowed(self) -> bool:
        if self.allow_private_artifact_hosts is None:
            return self.dev
        return self.allow_private_artifact_hosts

    @cached_property
    def stripe_mode(self) -> StripeMode:
        """Which money this key moves. The sandbox's money is never live and never Stripe's test."""
        if not self.stripe_api_key:
            return "unconfigured"
        if is_offline_sandbox(self.stripe_api_base):
            return "sandbox"
        if self.stripe_api_key.startswith(("sk_live_", "rk_live_")):
            return "live"
        return "test"

    @property
    def operators(self) -> dict[str, str]:
        """Each operator's token by name: DEALFLOW_ADMIN_TOKEN's `admin`, then DEALFLOW_OPERATORS."""
        admin = {ADMIN_OPERATOR: self.admin_token} if self.admin_token else {}
        return {**admin, **(parse_operators(self.operator_tokens) if self.operator_tokens else {})}

    def payload_codec(self) -> EncryptionCodec | None:
        """The codec of every Temporal client of this process; None: payloads stay in clear."""
        if not self.payload_keys or self.encrypt_payloads is False:
            return None
        return EncryptionCodec(parse_payload_keys(self.payload_keys))

    def portal_links(self) -> PortalLinks:
        """The portal links mails and Stripe's return URLs carry (needs DEALFLOW_SECRET_KEY)."""
        return PortalLinks(
            self.public_url, self.require("DEALFLOW_SECRET_KEY"), days=self.portal_link_days
        )

    def require(self, env_name: str) -> str:
        """The value of a required setting, or a ConfigError naming it."""
        attribute = _ATTRIBUTES[env_name]
        value = getattr(self, attribute)
        if not value:
            raise ConfigError(f"{env_name} is not set; set it in the environment or in .env")
        return str(value)

    def check_secrets(self) -> None:
        """Refuse placeholder or short secrets, in every mode."""
        for env_name, value in self._secret_values().items():
            if problem := secret_problem(env_name, value):
                raise ConfigError(problem)

    def check_production(self) -> None:
        """Refuse what production must never run with: sandbox money, no Stripe, guessable secrets.

        The sandbox would take "payments" that are never real; without a key no deal can be
        paid; a secret typed by hand (`change-me-change-me-0123`) signs portal links and opens
        the admin API to whoever guesses it."""
        if not self.stripe_api_key:
            raise ConfigError(
                "STRIPE_API_KEY is not set: production takes its payments through Stripe"
            )
        if is_offline_sandbox(self.stripe_api_base):
            raise ConfigError(
                f"STRIPE_API_BASE={self.stripe_api_base} is the offline sandbox, whose money is never "
                "real; production calls Stripe (unset STRIPE_API_BASE)"
            )
        if self.vendor_token:
            raise ConfigError(
                "DEALFLOW_VENDOR_TOKEN is the legacy key that reaches every vendor's deals; "
                "production gives each vendor their own key (`dealflow vendors add`): unset it"
            )
        if self.encrypt_payloads is False:
            raise ConfigError(
                "DEALFLOW_ENCRYPT_PAYLOADS=false: production always encrypts its payloads (unset it)"
            )
        if not self.payload_keys:
            raise ConfigError(
                "DEALFLOW_PAYLOAD_KEYS is not set: production encrypts every Temporal payload; "
                "make a key with `dealflow payload-key`"
            )
        if not self.client_search_secret:
            raise ConfigError(
                "DEALFLOW_CLIENT_SEARCH_SECRET is not set: production keeps clients' e-mail "
                "addresses out of Temporal's search attributes"
            )
        for env_name, value in self._secret_values().items():
            if value and estimated_entropy_bits(value) < MIN_SECRET_BITS:
                raise ConfigError(
                    f"{env_name} has too little entropy to be a secret; generate one with "
                    '`python -c "import secrets; print(secrets.token_urlsafe(32))"`'
                )

    def _secret_values(self) -> dict[str, str | None]:
        return {
            **{env_name: getattr(self, attribute) for env_name, (attribute, _) in SECRETS.items()},
            "STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret,
            "STRIPE_API_KEY": self.stripe_api_key,
            **{
                f"{OPERATORS} ({name})": token
                for name, token in self.operators.items()
                if name != ADMIN_OPERATOR
            },
        }


_ATTRIBUTES = {
    field.alias: name for name, field in Settings.model_fields.items() if field.alias is not None
}


def load_settings(*, need: tuple[str, ...] = ()) -> Settings:
    """Load and validate settings; `need` names the secrets this process cannot run without.

    In dev mode the missing secrets come from (or are created in) `<home>/secrets.env`.
    Raises ConfigError with the setting's name; entry points turn it into a message and exit 2.
    """
    try:
        settings = Settings()
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        if not name:  # a check across settings: its message names them
            raise ConfigError(str(first["ctx"]["error"])) from error
        raise ConfigError(f"{name}: {first['msg']}") from error
    if settings.dev:
        generated = ensure_dev_secrets(settings.home, payload_keys=bool(settings.encrypt_payloads))
        overrides = {
            _ATTRIBUTES[name]: value
            for name, value in generated.items()
            if name in _ATTRIBUTES and not getattr(settings, _ATTRIBUTES[name])
        }
        settings = settings.model_copy(update=overrides)
    settings.check_secrets()
    if not settings.dev:
        settings.check_production()
    for env_name in need:
        settings.require(env_name)
    return settings
