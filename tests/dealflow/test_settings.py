"""Settings: secrets are never defaulted, placeholders are refused, and the money mode is known."""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from dealflow.secret_rules import estimated_entropy_bits
from dealflow.settings import ConfigError, Settings, load_settings
from tests.paths import ROOT

#: Random, as every production secret must be (secrets.token_urlsafe(32)).
GOOD = "qQ3vN0s-8yKcTz1JfWd7HbXr2LmE5gUa9pViOtYe4kA"
#: Every secret production needs, each random: the refusals below change one of them.
PRODUCTION = {
    "DEALFLOW_ENV": "production",
    "DATABASE_URL": "postgresql://dealflow@db.internal/dealflow",
    "STRIPE_API_KEY": "sk_live_51Hx4kQ2eZvKYlo2C8aTq0rN7wXyPmBdFj3sLh6Gu9VcE1tIo",
    "STRIPE_WEBHOOK_SECRET": "whsec_Jf83kVq0LmZx2TbN7yHd4WcR9pEs1gUa",
    "DEALFLOW_SECRET_KEY": GOOD,
    "DEALFLOW_ADMIN_TOKEN": "adm_Zr8Tq1wXe4Lc0VbN6yHm3KdP9sJf2GuA7oIi5",
    "DEALFLOW_DELIVERY_SECRET": "dlv_Hs5Ua8Ke1Xo4Ni7Wb0Yc3Qf6Tg9Rj2Lm",
    "DEALFLOW_CLIENT_SEARCH_SECRET": "dcs_Wq4Zt7Bn0Yr3Mx6Kc9Vh2Js5Pd8Lf1Ge",
    "DEALFLOW_PAYLOAD_KEYS": "k2026b:gfGr9WzHSbs/ZFplGZ6lyFVqx4Dw49kFXexTGe6J1x0=,k2026a:EAEcshPmN3Y7cR9Z5LMmDNg0du/8OoX96v2C9L6xsuo=",
}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean environment: no DEALFLOW_/STRIPE_ variables, no .env, a fresh home."""
    for name in list(os.environ):
        if name.startswith(("DEALFLOW_", "STRIPE_", "DATABASE_URL", "SMTP_URL")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEALFLOW_HOME", str(tmp_path / "home"))
    return monkeypatch


def test_production_refuses_a_missing_secret_by_name(production: pytest.MonkeyPatch) -> None:
    production.delenv("DEALFLOW_ADMIN_TOKEN")
    with pytest.raises(ConfigError, match="DEALFLOW_ADMIN_TOKEN is not set"):
        load_settings(need=("DEALFLOW_ADMIN_TOKEN",))


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("DEALFLOW_SECRET_KEY", "changeme-changeme-changeme", "looks like a placeholder"),
        ("DEALFLOW_ADMIN_TOKEN", "PLACEHOLDER_ADD_YOUR_KEY", "looks like a placeholder"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_short", "is too short"),
        ("DEALFLOW_VENDOR_TOKEN", "your_token_here_please", "looks like a placeholder"),
    ],
)
@pytest.mark.parametrize("env", ["dev", "production"])
def test_placeholder_and_short_secrets_are_refused_in_every_mode(
    environment: pytest.MonkeyPatch, env: str, name: str, value: str, problem: str
) -> None:
    environment.setenv("DEALFLOW_ENV", env)
    environment.setenv(name, value)
    with pytest.raises(ConfigError, match=f"{name} {problem}"):
        load_settings()


@pytest.fixture
def production(environment: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A production environment with every secret set and random."""
    for name, value in PRODUCTION.items():
        environment.setenv(name, value)
    return environment


def test_production_accepts_random_secrets_and_a_stripe_key(production: pytest.MonkeyPatch) -> None:
    settings = load_settings(need=tuple(name for name in PRODUCTION if name.startswith("DEALFLOW_") and name != "DEALFLOW_ENV"))
    assert settings.stripe_mode == "live"
    assert settings.admin_token == PRODUCTION["DEALFLOW_ADMIN_TOKEN"]


@pytest.mark.parametrize("base", ["http://127.0.0.1:12111", "http://sandbox:12111/"])
def test_production_refuses_the_offline_sandbox(production: pytest.MonkeyPatch, base: str) -> None:
    production.setenv("STRIPE_API_BASE", base)
    with pytest.raises(ConfigError, match=r"^STRIPE_API_BASE=.* is the offline sandbox"):
        load_settings()


def test_production_refuses_to_run_without_a_stripe_key(production: pytest.MonkeyPatch) -> None:
    production.delenv("STRIPE_API_KEY")
    with pytest.raises(ConfigError, match="^STRIPE_API_KEY is not set"):
        load_settings()


def test_production_encrypts_payloads_with_the_first_key(production: pytest.MonkeyPatch) -> None:
    codec = load_settings().payload_codec()
    assert codec is not None and codec.encrypting_key_id == "k2026b"


def test_production_refuses_to_run_without_payload_keys(production: pytest.MonkeyPatch) -> None:
    production.delenv("DEALFLOW_PAYLOAD_KEYS")
    with pytest.raises(ConfigError, match="^DEALFLOW_PAYLOAD_KEYS is not set: production encrypts"):
        load_settings()


def test_production_refuses_to_run_without_a_client_search_secret(production: pytest.MonkeyPatch) -> None:
    production.delenv("DEALFLOW_CLIENT_SEARCH_SECRET")
    with pytest.raises(ConfigError, match="^DEALFLOW_CLIENT_SEARCH_SECRET is not set: production keeps"):
        load_settings()


def test_production_refuses_to_turn_payload_encryption_off(production: pytest.MonkeyPatch) -> None:
    production.setenv("DEALFLOW_ENCRYPT_PAYLOADS", "false")
    with pytest.raises(ConfigError, match="^DEALFLOW_ENCRYPT_PAYLOADS=false: production always encrypts"):
        load_settings()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("k1:" + base64.b64encode(b"0123456789abcdef").decode(), "key 'k1' has 16 bytes; AES-256 needs 32"),
        ("k1:not base64!", "key 'k1' is not valid base64"),
        (base64.b64encode(bytes(32)).decode(), "entry 1 is not `key-id:base64-key`"),
        ("k1:{key},k1:{key}", "key id 'k1' is listed twice"),
    ],
)
@pytest.mark.parametrize("env", ["dev", "production"])
def test_malformed_payload_keys_are_refused_in_every_mode(
    production: pytest.MonkeyPatch, env: str, value: str, problem: str
) -> None:
    production.setenv("DEALFLOW_ENV", env)
    production.setenv("DEALFLOW_PAYLOAD_KEYS", value.format(key=base64.b64encode(bytes(range(32))).decode()))
    with pytest.raises(ConfigError, match=f"^DEALFLOW_PAYLOAD_KEYS: .*{re.escape(problem)}"):
        load_settings()


def test_dev_leaves_payloads_in_clear_unless_asked(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert load_settings().payload_codec() is None
    assert "DEALFLOW_PAYLOAD_KEYS" not in (tmp_path / "home" / "secrets.env").read_text()


def test_dev_generates_payload_keys_once_when_asked_and_every_process_then_uses_them(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("DEALFLOW_ENCRYPT_PAYLOADS", "true")
    asked = load_settings()
    environment.delenv("DEALFLOW_ENCRYPT_PAYLOADS")
    later = load_settings()  # `dealflow status` in another shell of the same dev stack
    assert asked.payload_keys and later.payload_keys == asked.payload_keys
    assert later.payload_codec() is not None


#: A production setting and the refusal it meets; the first three are the issue's examples.
PRODUCTION_REFUSALS = {
    "DEALFLOW_SECRET_KEY=change-me-change-me-0123": "DEALFLOW_SECRET_KEY looks like a placeholder",
    "DEALFLOW_ADMIN_TOKEN=REPLACE_ME_REPLACE_ME_1234": "DEALFLOW_ADMIN_TOKEN looks like a placeholder",
    "STRIPE_API_KEY=sk_live_replace-me-later-0000": "STRIPE_API_KEY looks like a placeholder",
    "DEALFLOW_VENDOR_TOKEN=vnd_Pk2Wn9Ex4Qh7Rz0Mc3Ty6Lb1Vd8Js5Gf": "DEALFLOW_VENDOR_TOKEN is the legacy key",
    "STRIPE_WEBHOOK_SECRET=whsec_" + "1234567890" * 3: "STRIPE_WEBHOOK_SECRET has too little entropy",
    "DEALFLOW_DELIVERY_SECRET=dlv_" + "a" * 28: "DEALFLOW_DELIVERY_SECRET has too little entropy",
}


@pytest.mark.parametrize("setting", PRODUCTION_REFUSALS)
def test_production_refuses_placeholder_and_low_entropy_secrets_by_name(
    production: pytest.MonkeyPatch, setting: str
) -> None:
    production.setenv(*setting.split("=", 1))
    with pytest.raises(ConfigError, match=f"^{PRODUCTION_REFUSALS[setting]}"):
        load_settings()


@pytest.mark.parametrize(
    "value", ["change-me-change-me-0123", "REPLACE_ME_REPLACE_ME_1234", "sk_live_replace-me-later-0000"]
)
def test_the_examples_score_too_little_entropy_even_without_their_words(value: str) -> None:
    """The words are one guard; a phrase typed by hand fails the entropy estimate on its own."""
    assert estimated_entropy_bits(value) < 64 <= estimated_entropy_bits(secrets.token_urlsafe(16))


def test_dev_generates_each_secret_once_and_keeps_it_private(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    first = load_settings(need=("DEALFLOW_SECRET_KEY", "DEALFLOW_ADMIN_TOKEN", "DEALFLOW_VENDOR_TOKEN"))
    again = load_settings()
    assert first.secret_key == again.secret_key and first.admin_token == again.admin_token
    assert first.admin_token != first.vendor_token
    secrets_file = tmp_path / "home" / "secrets.env"
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    environment.setenv("DEALFLOW_ADMIN_TOKEN", GOOD)
    assert load_settings().admin_token == GOOD  # the environment wins over the generated one


@pytest.mark.parametrize(
    ("key", "base", "mode"),
    [
        (None, None, "unconfigured"),
        ("sk_live_" + "x1" * 12, None, "live"),
        ("rk_live_" + "x1" * 12, "https://api.stripe.com", "live"),
        ("sk_test_" + "x1" * 12, None, "test"),
        ("sk_test_" + "x1" * 12, "http://127.0.0.1:12111", "sandbox"),
    ],
)
def test_stripe_mode_says_which_money_moves(key: str | None, base: str | None, mode: str) -> None:
    settings = Settings(_env_file=None, STRIPE_API_KEY=key, STRIPE_API_BASE=base)
    assert settings.stripe_mode == mode


#: What production checks before it looks for the secrets each process needs.
STARTUP_KEYS = {
    name: PRODUCTION[name]
    for name in ("STRIPE_API_KEY", "DEALFLOW_PAYLOAD_KEYS", "DEALFLOW_CLIENT_SEARCH_SECRET")
}
WORKER = [sys.executable, str(ROOT / "worker.py")]
BRIDGE = [sys.executable, "-m", "dealflow.cli", "bridge", "--port", "0"]


@pytest.mark.parametrize(
    ("command", "extra", "message"),
    [
        (WORKER, {}, "STRIPE_API_KEY is not set"),
        (WORKER, STARTUP_KEYS, "DEALFLOW_SECRET_KEY is not set"),
        (WORKER, {**STARTUP_KEYS, "DEALFLOW_SECRET_KEY": GOOD}, "DATABASE_URL is not set"),
        (
            WORKER,
            {"DEALFLOW_WORKER_MAX_CACHED_WORKFLOWS": "-5"},
            "DEALFLOW_WORKER_MAX_CACHED_WORKFLOWS: Input should be greater than or equal to 0",
        ),
        (WORKER, {**PRODUCTION, "STRIPE_API_BASE": "http://127.0.0.1:12111"}, "is the offline sandbox"),
        (WORKER, {**PRODUCTION, "DEALFLOW_SECRET_KEY": "change-me-change-me-0123"}, "DEALFLOW_SECRET_KEY looks like a placeholder"),
        (BRIDGE, {**PRODUCTION, "STRIPE_API_KEY": ""}, "STRIPE_API_KEY is not set"),
        (WORKER, {**PRODUCTION, "DEALFLOW_PAYLOAD_KEYS": ""}, "DEALFLOW_PAYLOAD_KEYS is not set"),
        (BRIDGE, {**PRODUCTION, "STRIPE_API_BASE": "http://127.0.0.1:12111"}, "is the offline sandbox"),
        (BRIDGE, {**PRODUCTION, "DEALFLOW_ADMIN_TOKEN": "REPLACE_ME_REPLACE_ME_1234"}, "DEALFLOW_ADMIN_TOKEN looks like a placeholder"),
        (BRIDGE, {**PRODUCTION, "DEALFLOW_DELIVERY_SECRET": "dlv_" + "a" * 28}, "DEALFLOW_DELIVERY_SECRET has too little entropy"),
        (BRIDGE, {**PRODUCTION, "DEALFLOW_VENDOR_TOKEN": "vnd_Pk2Wn9Ex4Qh7Rz0Mc3Ty6Lb1Vd8Js5Gf"}, "DEALFLOW_VENDOR_TOKEN is the legacy key"),
    ],
)
def test_worker_and_bridge_in_production_stop_naming_what_is_missing_or_wrong(
    tmp_path: Path, command: list[str], extra: dict[str, str], message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEALFLOW_", "STRIPE_", "DATABASE_URL"))}
    result = subprocess.run(
        command,
        env={**env, "DEALFLOW_ENV": "production", "DEALFLOW_HOME": str(tmp_path), **extra},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_capacity_has_documented_defaults_and_reads_the_environment(environment: pytest.MonkeyPatch) -> None:
    defaults = load_settings()
    assert (defaults.worker_max_cached_workflows, defaults.worker_max_concurrent_workflow_tasks) == (500, 100)
    assert (defaults.worker_workflow_pollers, defaults.worker_activity_pollers) == (20, 20)
    assert defaults.worker_sticky_timeout_seconds == 2.0 and defaults.worker_sandbox_imports == "shared"

    environment.setenv("DEALFLOW_WORKER_MAX_CACHED_WORKFLOWS", "300")
    environment.setenv("DEALFLOW_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS", "50")
    environment.setenv("DEALFLOW_WORKER_MAX_CONCURRENT_ACTIVITIES", "40")
    environment.setenv("DEALFLOW_WORKER_WORKFLOW_POLLERS", "8")
    environment.setenv("DEALFLOW_WORKER_ACTIVITY_POLLERS", "4")
    environment.setenv("DEALFLOW_WORKER_STICKY_TIMEOUT_SECONDS", "0.5")
    environment.setenv("DEALFLOW_WORKER_SANDBOX_IMPORTS", "per-run")
    tuned = load_settings()
    assert (tuned.worker_max_cached_workflows, tuned.worker_max_concurrent_workflow_tasks) == (300, 50)
    assert (tuned.worker_max_concurrent_activities, tuned.worker_workflow_pollers, tuned.worker_activity_pollers) == (
        40,
        8,
        4,
    )
    assert tuned.worker_sticky_timeout_seconds == 0.5 and tuned.worker_sandbox_imports == "per-run"


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("DEALFLOW_WORKER_MAX_CACHED_WORKFLOWS", "-1", "greater than or equal to 0"),
        ("DEALFLOW_WORKER_MAX_CACHED_WORKFLOWS", "lots", "valid integer"),
        ("DEALFLOW_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS", "1", "greater than or equal to 2"),
        ("DEALFLOW_WORKER_MAX_CONCURRENT_ACTIVITIES", "0", "greater than or equal to 1"),
        ("DEALFLOW_WORKER_WORKFLOW_POLLERS", "1", "greater than or equal to 2"),
        ("DEALFLOW_WORKER_ACTIVITY_POLLERS", "100000", "less than or equal to 1000"),
        ("DEALFLOW_WORKER_STICKY_TIMEOUT_SECONDS", "0", "greater than 0"),
        ("DEALFLOW_WORKER_SANDBOX_IMPORTS", "none", "'shared' or 'per-run'"),
        ("DEALFLOW_WORKER_METRICS_ADDRESS", "9464", "expected host:port"),
        ("DEALFLOW_WORKER_METRICS_ADDRESS", "0.0.0.0:99999", "expected host:port"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "expected an http"),
        ("DEALFLOW_LOG_FORMAT", "xml", "'text' or 'json'"),
    ],
)
def test_bad_worker_and_telemetry_settings_are_refused_by_name(
    environment: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    environment.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^{name}: .*{problem}"):
        load_settings()


def test_more_workflow_tasks_than_cached_deals_is_refused(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("DEALFLOW_WORKER_MAX_CACHED_WORKFLOWS", "60")
    with pytest.raises(
        ConfigError,
        match=r"^DEALFLOW_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS \(100\) is more than DEALFLOW_WORKER_MAX_CACHED_WORKFLOWS \(60\)",
    ):
        load_settings()
    environment.setenv("DEALFLOW_WORKER_MAX_CACHED_WORKFLOWS", "0")  # no cache at all: every task replays
    assert load_settings().worker_max_cached_workflows == 0


def test_telemetry_is_off_unless_set_and_logs_are_json_in_production(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("DEALFLOW_WORKER_METRICS_ADDRESS", "")
    environment.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    dev = load_settings()
    assert dev.worker_metrics_address is None and dev.otlp_endpoint is None and not dev.json_logs
    assert Settings(_env_file=None, DEALFLOW_ENV="production").json_logs
    assert not Settings(_env_file=None, DEALFLOW_ENV="production", DEALFLOW_LOG_FORMAT="text").json_logs
    assert Settings(_env_file=None, DEALFLOW_LOG_FORMAT="json").json_logs
    tuned = Settings(_env_file=None, DEALFLOW_WORKER_METRICS_ADDRESS="0.0.0.0:9464")
    assert tuned.worker_metrics_address == "0.0.0.0:9464"


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ("DEALFLOW_WORKER_DEPLOYMENT_NAME", "DEALFLOW_WORKER_BUILD_ID"),
        ("DEALFLOW_WORKER_BUILD_ID", "DEALFLOW_WORKER_DEPLOYMENT_NAME"),
    ],
)
def test_worker_versioning_needs_the_deployment_and_the_build(
    environment: pytest.MonkeyPatch, given: str, missing: str
) -> None:
    environment.setenv(given, "dealflow-2026-12")
    with pytest.raises(ConfigError, match=f"{missing} is not set: Worker Versioning needs"):
        load_settings()
    environment.setenv(missing, "build-7")
    assert load_settings().worker_build_id is not None


def test_a_deployment_name_with_a_dot_is_refused(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("DEALFLOW_WORKER_DEPLOYMENT_NAME", "deal.flow")
    environment.setenv("DEALFLOW_WORKER_BUILD_ID", "b1")
    with pytest.raises(ConfigError, match=r"DEALFLOW_WORKER_DEPLOYMENT_NAME: String should match"):
        load_settings()


OTHER_GOOD = "Xb7Lw2Qe9Rt4Yu1Io8Pa5Sd3Fg6Hj0Kz-_mN"


def test_named_operators_sign_in_beside_the_admin_token(production: pytest.MonkeyPatch) -> None:
    production.setenv("DEALFLOW_OPERATORS", f" grace:{GOOD} , linus:{OTHER_GOOD}")
    settings = load_settings()
    assert settings.operators == {
        "admin": PRODUCTION["DEALFLOW_ADMIN_TOKEN"], "grace": GOOD, "linus": OTHER_GOOD,
    }
    assert OTHER_GOOD not in repr(settings)
    production.delenv("DEALFLOW_ADMIN_TOKEN")
    assert list(load_settings().operators) == ["grace", "linus"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (f"grace:{GOOD},linus:REPLACE_ME_REPLACE_ME_1234", "DEALFLOW_OPERATORS (linus) looks like a placeholder"),
        (f"grace:{GOOD},linus:" + "a1b2c3d4" * 4, "DEALFLOW_OPERATORS (linus) has too little entropy"),
        (f"grace:{GOOD},grace:{OTHER_GOOD}", "entry 2: operator 'grace' is named twice"),
        (f"grace:{GOOD},linus:{GOOD}", "entry 2: operator 'linus' has the token of 'grace'"),
        (f"admin:{GOOD}", "the name 'admin' is DEALFLOW_ADMIN_TOKEN's"),
        (f"grace{GOOD}", "entry 1: expected name:token"),
        (f"Grace Hopper:{GOOD}", "entry 1: operator name 'Grace Hopper' must be"),
        (" , ", "names no operator"),
    ],
)
def test_bad_operators_are_refused_by_entry_never_showing_a_token(
    production: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    production.setenv("DEALFLOW_OPERATORS", value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert problem in str(refused.value)
    assert GOOD not in str(refused.value) and OTHER_GOOD not in str(refused.value)
