"""`dealflow dev` behaviour that is cheap to check: ports, secrets, the dev mailbox, and that its
servers stop without leaving processes behind (and resume their data on the next start)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from email.message import EmailMessage
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi import FastAPI
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import WorkflowExecutionStatus

from bridge.devmail import create_router
from dealflow.private_files import make_private, write_private
from dealflow.secret_rules import SECRETS, ensure_dev_secrets
from dealflow.serve import free_port
from dealflow.settings import Settings
from devstack.plan import DevStackError
from devstack.postgres import embedded_postgres
from devstack.run import enter_together
from devstack.temporal import DevServerConfig, DevServerFailed, temporal_dev_server

DEALFLOW = str(Path(sys.executable).parent / "dealflow")


def dev_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for a `dealflow dev` subprocess: its own home, every port free."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DEALFLOW_", "TEMPORAL_"))}
    env.update(
        DEALFLOW_HOME=str(home),
        DEALFLOW_BRIDGE_PORT=str(free_port()),
        DEALFLOW_SANDBOX_PORT=str(free_port()),
        DEALFLOW_SMTP_PORT=str(free_port()),
        DEALFLOW_TEMPORAL_PORT=str(free_port()),
        DEALFLOW_TEMPORAL_UI_PORT=str(free_port()),
        NO_COLOR="1",
    )
    env.update(extra)
    return env


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_taken_port_names_its_setting_and_secrets_are_made_once(tmp_path: Path, busy_port: int) -> None:
    home = tmp_path / "home"
    env = dev_env(home, DEALFLOW_SANDBOX_PORT=str(busy_port))
    runs = [
        subprocess.run([DEALFLOW, "dev"], check=False, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        for _ in range(2)
    ]
    secrets_file = home / "secrets.env"
    for run in runs:
        assert run.returncode == 2, run.stderr
        assert f"port {busy_port} on 127.0.0.1 is already in use; change it with DEALFLOW_SANDBOX_PORT" in run.stderr
        assert "Traceback" not in run.stderr + run.stdout
    # Generated on the first run, the same on the second, private, and accepted as real secrets.
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    values = dict(line.split("=", 1) for line in secrets_file.read_text().splitlines() if not line.startswith("#"))
    assert set(values) == set(SECRETS)
    Settings(_env_file=None, **values).check_secrets()
    assert len(set(values.values())) == len(values)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("sk_live_" + "4" * 30, "STRIPE_API_KEY is a live key"),
        ("sk_test_" + "4" * 30, "STRIPE_WEBHOOK_SECRET is not. Run `stripe listen --forward-to http://localhost:"),
    ],
)
def test_real_stripe_needs_a_test_key_and_its_webhook_secret(tmp_path: Path, key: str, message: str) -> None:
    env = dev_env(tmp_path / "home", STRIPE_API_KEY=key)
    run = subprocess.run([DEALFLOW, "dev"], check=False, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr


async def test_dev_server_stops_without_orphans_and_keeps_workflows(tmp_path: Path) -> None:
    config = DevServerConfig(db_file=tmp_path / "temporal.db", port=free_port(), ui_port=free_port())
    async with temporal_dev_server(config) as client:
        server = [p for p in psutil.Process().children() if str(config.db_file) in p.cmdline()]
        assert len(server) == 1
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        assert {"DealStage", "DealClient", "DealAmountCents", "DealCollectedCents"} <= set(listed.custom_attributes)
        # No worker polls this queue: the workflow stays open across the restart.
        await client.start_workflow("NoWorkerHere", id="survives-restart", task_queue="nobody")
    assert not server[0].is_running()

    async with temporal_dev_server(config) as client:
        description = await client.get_workflow_handle("survives-restart").describe()
        assert description.status == WorkflowExecutionStatus.RUNNING


async def test_a_dev_server_that_cannot_start_says_why(tmp_path: Path, busy_port: int) -> None:
    """The server's own last words are in the error (a port taken here), not only its exit code."""
    config = DevServerConfig(db_file=tmp_path / "temporal.db", port=free_port(), ui_port=busy_port)
    with pytest.raises(DevServerFailed, match=f"exited with code [1-9].*{busy_port}"):
        async with temporal_dev_server(config):
            pass


async def test_embedded_postgres_stops_even_after_a_killed_run(tmp_path: Path) -> None:
    pgdata = tmp_path / "pg"
    async with embedded_postgres(pgdata):
        pass
    assert not (pgdata / "postmaster.pid").exists()

    # A run killed with SIGKILL leaves its pid in the library's handle list.
    killed = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await killed.wait()
    (pgdata / ".handle_pids.json").write_text(json.dumps([killed.pid]))
    async with embedded_postgres(pgdata) as url:
        assert url.startswith("postgresql://")
        assert (pgdata / "postmaster.pid").exists()
    assert not (pgdata / "postmaster.pid").exists()


async def test_a_component_failing_to_start_stops_those_starting_beside_it(tmp_path: Path) -> None:
    """`dealflow dev` starts Temporal and Postgres at once: when one fails, the other must not stay."""

    @asynccontextmanager
    async def failing_after_a_moment() -> AsyncIterator[None]:
        await asyncio.sleep(0.3)  # the others are half-way: the server spawned, initdb running
        raise DevStackError("this component cannot start")
        yield

    config = DevServerConfig(db_file=tmp_path / "temporal.db", port=free_port(), ui_port=free_port())
    pgdata = tmp_path / "pg"
    with pytest.raises(DevStackError, match="this component cannot start"):
        async with AsyncExitStack() as resources:
            await enter_together(
                resources, temporal_dev_server(config), embedded_postgres(pgdata), failing_after_a_moment()
            )
    leftovers = [p for p in psutil.Process().children(recursive=True) if str(config.db_file) in p.cmdline()]
    assert not [p for p in leftovers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not (pgdata / "postmaster.pid").exists()

    # Both come up together when nothing fails, and the second start finds them as they were left.
    async with AsyncExitStack() as resources:
        client, url = await enter_together(resources, temporal_dev_server(config), embedded_postgres(pgdata))
        assert await client.service_client.check_health()
        assert url.startswith("postgresql://")


def _mail(subject: str, html: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "dealflow <deals@dealflow.localhost>"
    message["To"] = "dana@acme.example"
    message["Subject"] = subject
    message.set_content("Sign here: http://localhost:8000/portal/d1?token=abc")
    message.add_alternative(html, subtype="html")
    message.add_attachment(b"%PDF-1.4 receipt", maintype="application", subtype="pdf", filename="receipt R-1.pdf")
    return message


async def test_dev_mailbox_lists_mails_and_shows_html_without_running_it(tmp_path: Path) -> None:
    (tmp_path / "1700000000000000000-00000.eml").write_bytes(
        bytes(_mail("Please sign: Acme", '<p onclick="x()">Hi</p><script>alert(1)</script><a href="http://e/">go</a>'))
    )
    (tmp_path / "1700000000000000001-00001.eml").write_bytes(bytes(_mail("Receipt", "<p>paid</p>")))
    (tmp_path / "notes.txt").write_text("not a mail")
    app = FastAPI()
    app.include_router(create_router(tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bridge") as http:
        listing = await http.get("/dev/mail")
        assert listing.status_code == 200
        assert listing.text.index("Receipt") < listing.text.index("Please sign: Acme")  # newest first
        assert "notes.txt" not in listing.text
        assert "Receipt" not in (await http.get("/dev/mail", params={"q": "sign"})).text

        page = await http.get("/dev/mail/1700000000000000000-00000.eml")
        assert page.status_code == 200
        assert "script-src" not in page.headers["content-security-policy"]
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page.text
        assert "<script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "http://localhost:8000/portal/d1?token=abc" in page.text  # the text part, escaped as text

        raw = await http.get("/dev/mail/1700000000000000000-00000.eml/raw")
        assert raw.headers["content-type"].startswith("text/plain") and "Subject: Please sign: Acme" in raw.text
        attachment = await http.get("/dev/mail/1700000000000000000-00000.eml/attachments/0")
        assert attachment.content == b"%PDF-1.4 receipt"
        assert attachment.headers["content-disposition"] == 'attachment; filename="receipt_R-1.pdf"'

        for bad in ("notes.txt", "..%2Fsecrets.env", "1700000000000000000-00000.eml/attachments/5"):
            assert (await http.get(f"/dev/mail/{bad}")).status_code == 404


def open_to_others(home: Path) -> list[str]:
    """What under `home` (itself included) its owner's group or anyone else may read or change
    (passing through the home is no reading: see the test below)."""
    paths = [p for p in (home, *home.rglob("*")) if not p.is_symlink()]
    return [f"{oct(p.stat().st_mode & 0o777)} {p}" for p in paths if p.stat().st_mode & 0o066]


def test_the_home_stays_passable_for_a_postgres_run_as_its_own_user(tmp_path: Path) -> None:
    """Run as root, the embedded Postgres runs as a user of its own and opens the home to pass
    through (0755). Made private again while it runs (a first start writes secrets after
    Postgres is up), the home must keep letting it pass, or Postgres stops at its next
    checkpoint: unlisted, unreadable, passable."""
    home = tmp_path / "home"
    (home / "pg").mkdir(parents=True)
    home.chmod(0o755)
    ensure_dev_secrets(home)
    assert home.stat().st_mode & 0o777 == 0o711
    make_private(home)
    assert home.stat().st_mode & 0o777 == 0o711
    assert open_to_others(home) == []
    fresh = tmp_path / "fresh"
    ensure_dev_secrets(fresh)
    assert fresh.stat().st_mode & 0o777 == 0o700


def test_an_old_home_is_made_private_and_new_files_are_private_from_the_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "mail").mkdir(parents=True)
    (home / "mail" / "1-00000.eml").write_text("portal link")
    (home / "sandbox.json").write_text("{}")
    for path in (home, home / "mail"):
        path.chmod(0o755)
    for path in (home / "mail" / "1-00000.eml", home / "sandbox.json"):
        path.chmod(0o644)
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    (home / "elsewhere").symlink_to(outside)

    make_private(home)
    write_private(home / "dev-stack.json", "{}")
    ensure_dev_secrets(home)

    assert open_to_others(home) == []
    assert sorted(p.name for p in home.iterdir()) == [
        "dev-stack.json", "elsewhere", "mail", "sandbox.json", "secrets.env"
    ]
    assert outside.stat().st_mode & 0o777 == 0o755, "a link's target is not the home's"


async def test_dealflow_dev_stops_cleanly_on_sigint(tmp_path: Path, postgres_server_url: str) -> None:
    """The whole stack as a user runs it; Ctrl-C leaves no process behind and keeps the home."""
    home = tmp_path / "home"
    env = dev_env(home, DATABASE_URL=postgres_server_url)
    process = await asyncio.create_subprocess_exec(
        DEALFLOW, "dev", env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert process.stdout is not None
    output: list[str] = []

    async def read_until(marker: str) -> None:
        while not any(marker in line for line in output):
            line = await process.stdout.readline()
            assert line, "dealflow dev exited early:\n" + "".join(output)
            output.append(line.decode())

    try:
        await asyncio.wait_for(read_until("Try, in another terminal"), timeout=90)
        descendants = psutil.Process(process.pid).children(recursive=True)
        assert any("start-dev" in p.cmdline() for p in descendants)
        bridge = f"http://127.0.0.1:{env['DEALFLOW_BRIDGE_PORT']}"
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{bridge}/healthz")).status_code == 200
            assert (await http.get(f"{bridge}/dev/mail")).status_code == 200
        runtime = json.loads((home / "dev-stack.json").read_text())
        assert runtime["pid"] == process.pid and runtime["bridge_url"] == bridge
        text = "".join(output)
        for component in ("temporal |", "postgres |", "sandbox |", "smtp |", "worker |", "bridge |"):
            assert component in text
        assert str(home / "secrets.env") in text

        process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, "".join(output) + rest.decode()
    assert not [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not (home / "dev-stack.json").exists()
    assert (home / "temporal.db").exists()
    assert open_to_others(home) == []
