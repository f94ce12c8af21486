"""The offline Stripe sandbox: a stand-in for the part of Stripe's API dealflow calls.

The unmodified `stripe` library talks to it over HTTP (point its `api` base address here). It keeps
state, honours Idempotency-Key, answers with Stripe's shapes and errors, serves a hosted checkout
page, expires sessions, signs and retries webhooks as Stripe does, and injects faults on request.
Everything it moves is sandbox money: `livemode` is false and only `sk_test_` keys are accepted.
"""

from dealflow.sandbox.app import create_app
from dealflow.sandbox.config import DEFAULT_PORT, SandboxConfig
from dealflow.sandbox.server import SANDBOX_API_KEY, run_sandbox, serve_sandbox

__all__ = [
    "DEFAULT_PORT",
    "SANDBOX_API_KEY",
    "SandboxConfig",
    "create_app",
    "run_sandbox",
    "serve_sandbox",
]
