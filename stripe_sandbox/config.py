"""How one sandbox instance is set up."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: The port `dealflow sandbox` listens on by default (stripe-mock's, so it is easy to remember).
DEFAULT_PORT = 12111
#: What Stripe's secret test keys look like.
TEST_KEY = re.compile(r"^sk_test_[!-~]{1,247}$")


@dataclass(frozen=True)
class SandboxConfig:
    #: Base URL of the hosted checkout links in `session.url`; None: the URL the API was called on.
    public_url: str | None = None
    #: Where events are POSTed; None: events are only stored (and listed by /v1/events).
    webhook_url: str | None = None
    #: The whsec_ secret webhooks are signed with; None: generated once (and kept in state_file).
    webhook_secret: str | None = None
    #: The bearer token every `/_sandbox/` control but its description requires (they pay,
    #: dispute, move the clock and read the webhook secret); None: generated for this app and
    #: found in `app.state.control_token`.
    control_token: str | None = None
    #: The sk_test_ key the sandbox issues and accepts, alone; None: generated once (and kept
    #: in state_file). Any other key is answered 401, as Stripe answers a key it did not issue.
    api_key: str | None = None
    #: JSON snapshot that keeps the sandbox's objects across restarts, with its journal next to
    #: it (`<state_file>.journal`); None: memory only.
    state_file: Path | None = None
    #: First webhook retry delay; each later one doubles, up to retry_max_seconds.
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 6 * 3600.0
    webhook_max_attempts: int = 16
    webhook_timeout_seconds: float = 10.0
    #: Deliveries in flight at once (Stripe sends many at a time and promises no order).
    webhook_concurrency: int = 16
    #: How often sessions past `expires_at` are expired without anyone asking.
    sweep_interval_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.webhook_secret is not None and not self.webhook_secret.startswith("whsec_"):
            raise ValueError(
                "webhook_secret must start with whsec_, as Stripe's signing secrets do"
            )
        if self.api_key is not None and not TEST_KEY.match(self.api_key):
            raise ValueError("api_key must be a test secret key: sk_test_ and 1 to 247 characters")
        if self.retry_base_seconds <= 0 or self.webhook_max_attempts < 1:
            raise ValueError("retry_base_seconds must be > 0 and webhook_max_attempts >= 1")
        if self.webhook_concurrency < 1:
            raise ValueError("webhook_concurrency must be >= 1")
        if self.control_token is not None and len(self.control_token) < 16:
            raise ValueError("control_token must be at least 16 characters")
