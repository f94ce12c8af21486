"""The offline Stripe sandbox: a stand-in for the part of Stripe's API dealflow calls.

The unmodified `stripe` library talks to it over HTTP (point its `api` base address here). It keeps
state, honours Idempotency-Key, answers with Stripe's shapes and errors, serves a hosted checkout
page, expires sessions, signs and retries webhooks as Stripe does, and injects faults on request.
Everything it moves is sandbox money: `livemode` is false, and the one `sk_test_` key it issued
(`SandboxConfig.api_key`, or one it generates) is the only key it accepts.
It imports nothing of dealflow, so anyone's tests can serve `create_app(SandboxConfig(...))`.
"""

from stripe_sandbox.app import create_app
from stripe_sandbox.config import DEFAULT_PORT, SandboxConfig

__all__ = [
    "DEFAULT_PORT",
    "SandboxConfig",
    "create_app",
]
