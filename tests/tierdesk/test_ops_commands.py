"""The operations commands: `history`, `replay`, `explain --vendor` and `worker`.

The store is filled directly (SqliteStore + a dry-run Worker on a fixed clock), then
read and changed through click's CliRunner on `tierdesk.cli.main`, configured only by
the environment a test passes. `tierdesk worker` runs as a real process, stopped by
SIGTERM as a service manager would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from entitlements.tickets import OrganizationRef, Ticket
from pipeline.worker import Worker
from store import NewEvent, SqliteStore
from tests.shared import VENDOR
from tierdesk.cli import main
from webhooks.events import TicketEvent, Worklog
from webhooks.live_mappings import LiveMappings
from webhooks.settings import Settings, Tenant

T0 = datetime(2026, 3, 6, 16, 31, tzinfo=UTC).timestamp()
AT = "2026-03-06T16:31:00Z"  # T0 as the commands print it
CREATED = datetime(2026, 3, 6, 16, 30, tzinfo=UTC)
PAYLOADS = VENDOR
ZENDESK_CREATED = PAYLOADS / "zendesk/payloads/dust-event-webhook-ticket.created.json"
JSM_CUSTOM_FIELDS = PAYLOADS / "jsm/payloads/jira-issue_created_with_custom_fields.json"
TENANTS = {
    "acme-zd": Tenant(id="acme-zd", vendor="zendesk"),
    "globex-zd": Tenant(id="globex-zd", vendor="zendesk"),
    "acme-jsm": Tenant(id="acme-jsm", vendor="jsm"),
}
ROOT = Path(__file__).resolve().parents[2]

# -- helpers ------------------------------------------------------------------------


def zendesk_event(
    event_id: str, tenant: str, *, ticket_id: str = "123", kind: str = "ticket.updated", **t: Any
) -> TicketEvent:
    fields: dict[str, Any] = {
        "requester": "alice@acme.example",
        "organization": OrganizationRef("zendesk", "360001"),
        "severity": 1,
        "product": "jira-software",
        "environment": "production",
        **t,
    }
    ticket = Ticket(id=ticket_id, created_at=CREATED, vendor="zendesk", **fields)
    return TicketEvent(tenant, "zendesk", event_id, kind, ticket_id, ticket_id, CREATED, ticket)


def jsm_ticket_event(event_id: str) -> TicketEvent:
    # Jira's stable id is the issue id; people (and `history --ticket`) use the key.
    ticket = Ticket(id="KAN-3", created_at=CREATED, priority="Medium", vendor="jsm")
    return TicketEvent(
        "acme-jsm", "jsm", event_id, "ticket.created", "10033", "KAN-3", CREATED, ticket
    )


def worklog_event(event_id: str) -> TicketEvent:
    return TicketEvent(
        "acme-jsm",
        "jsm",
        event_id,
        "worklog.created",
        "10014",
        "10014",
        CREATED,
        worklog=Worklog("10066", 3600),
    )


def put(store: SqliteStore, event: TicketEvent, now: float) -> int:
    assert store.put(
        NewEvent(
            event.tenant,
            event.event_id,
            event.vendor,
            event.kind,
            event.ticket_id,
            event.ticket_key,
            b"{}",
            event.to_json(),
        ),
        now,
    )
    return max(row.id for row in store.events())


@dataclass(frozen=True)
class Filled:
    db: Path
    ids: dict[str, int]  # event_id → inbox row id


# Received one second apart from T0 - 10, in this order; processed at T0.
EVENTS = [
    zendesk_event("ev-1", "acme-zd", kind="ticket.created"),
    zendesk_event("ev-2", "acme-zd", severity=9),  # undecidable: dead letter
    zendesk_event("ev-3", "globex-zd", requester="bob@globex.example", organization=None),
    jsm_ticket_event("ev-4"),
    worklog_event("wl-1"),
    zendesk_event("ev-5", "gone", ticket_id="789"),  # a tenant since removed: dead letter
]
DEAD = ("ev-2", "ev-5")


@pytest.fixture(scope="module")
def bundled() -> LiveMappings:
    return LiveMappings(None)


@pytest.fixture
def filled(tmp_path: Path, bundled: LiveMappings) -> Filled:
    db = tmp_path / "t.sqlite3"
    store = SqliteStore(db)
    worker = Worker(store, bundled, Settings(tenants=TENANTS), clock=lambda: T0, name="w")
    ids = {}
    for i, event in enumerate(EVENTS):
        # One at a time: queued together, one ticket's events would coalesce (each is
        # still decided, but only the newest written), which is not what these test.
        ids[event.event_id] = put(store, event, T0 - 10 + i)
        while worker.run_once() is not None:
            pass
    assert store.counts() == {"done": 4, "dead": 2}
    store.close()
    return Filled(db, ids)


def run(args: list[str], db: Path, **env: str) -> Result:
    # Only what the test sets: nothing from the developer's shell leaks in.
    environment: dict[str, str | None] = {
        "TIERDESK_MAPPINGS": None,
        "TIERDESK_CONFIG": None,
        "TIERDESK_TENANTS": None,
        "TIERDESK_DATABASE": str(db),
        **env,
    }
    return CliRunner().invoke(main, args, env=environment)


def states(db: Path) -> dict[str, tuple[str, int]]:
    store = SqliteStore(db)
    try:
        return {r.event_id: (r.state, r.attempts) for r in store.events()}
    finally:
        store.close()


# -- history ----------------------------------------------------------------------------

DUE = "2026-03-06T17:00:00Z"
ACME_LINES = [
    f"{AT}  acme-zd/123  ticket.created   decided     tier=premier sev=1 due={DUE}"
    " reasons=- write=dry_run",
    f"{AT}  acme-zd/123  ticket.updated   dead_letter  undecidable: severity: 9 is not a"
    " severity level",
]
GLOBEX_LINE = (
    f"{AT}  globex-zd/123  ticket.updated   decided     tier=saas-24x7 sev=1"
    " due=2026-03-06T17:30:00Z reasons=- write=dry_run"
)

# Without a decision, the note says what happened.
RECORDED_LINE = (
    f"{AT}  acme-jsm/10014  worklog.created  recorded     worklog.created: no ticket state"
    " to decide on"
)
GONE_LINE = f"{AT}  gone/789  ticket.updated   dead_letter  tenant 'gone' is no longer configured"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["--ticket", "123"], [*ACME_LINES, GLOBEX_LINE], id="both-tenants"),
        pytest.param(["--ticket", "123", "--tenant", "acme-zd"], ACME_LINES, id="acme"),
        pytest.param(["--ticket", "123", "--tenant", "globex-zd"], [GLOBEX_LINE], id="globex"),
        pytest.param(["--ticket", "10014"], [RECORDED_LINE], id="recorded"),
        pytest.param(["--ticket", "789"], [GONE_LINE], id="gone-tenant"),
    ],
)
def test_history_prints_one_line_per_audit_row(
    filled: Filled, args: list[str], expected: list[str]
) -> None:
    result = run(["history", *args], filled.db)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == len(expected)
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start), f"\n{line}\n{start}"


@pytest.mark.parametrize("ticket", ["KAN-3", "10033"])
def test_history_finds_a_jira_issue_by_key_or_id(filled: Filled, ticket: str) -> None:
    result = run(["history", "--ticket", ticket], filled.db)

    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{AT}  acme-jsm/KAN-3  ticket.created   decided     tier=select sev=3")
    assert "reasons=unknown_account" in line


def test_history_json_gives_decision_and_written(filled: Filled) -> None:
    result = run(["history", "--ticket", "123", "--tenant", "acme-zd", "--json"], filled.db)

    assert result.exit_code == 0, result.output
    decided, dead = (json.loads(line) for line in result.stdout.splitlines())
    assert set(decided) == {
        "at",
        "tenant",
        "ticket",
        "event_id",
        "kind",
        "outcome",
        "decision",
        "written",
        "note",
    }
    assert (decided["at"], decided["tenant"], decided["ticket"], decided["event_id"]) == (
        AT,
        "acme-zd",
        "123",
        "ev-1",
    )
    assert decided["outcome"] == "decided"
    assert decided["decision"]["tier"] == "premier"
    assert decided["decision"]["first_response_due"] == DUE
    assert decided["written"]["outcome"] == "dry_run"
    assert decided["written"]["update"]["tier"] == "premier"
    assert (dead["event_id"], dead["outcome"], dead["decision"], dead["written"]) == (
        "ev-2",
        "dead_letter",
        None,
        None,
    )
    assert dead["note"].startswith("undecidable: severity: 9 ")


@pytest.mark.parametrize(
    "args",
    [["--ticket", "999"], ["--ticket", "123", "--tenant", "acme-jsm"]],
    ids=["unknown-ticket", "other-tenant"],
)
def test_history_of_an_unknown_ticket_exits_1(filled: Filled, args: list[str]) -> None:
    result = run(["history", *args], filled.db)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"no history for ticket {args[1]}" in result.stderr


# -- replay -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "requeued"),
    [
        pytest.param(["--dead"], set(DEAD), id="dead"),
        pytest.param(["--event", "acme-zd:ev-1"], {"ev-1"}, id="tenant:event_id"),
        # An unknown --event is an error now: tests/tierdesk/test_first_use_review.py.
        # received_at >= since: inclusive, ev-4 was received at exactly T0 - 7.
        pytest.param(
            ["--since", "2026-03-06T16:30:53Z"], {"ev-4", "wl-1", "ev-5"}, id="since-inclusive"
        ),
        pytest.param(["--since", "2026-01-01T00:00:00Z"], {e.event_id for e in EVENTS}, id="all"),
        pytest.param(["--since", "2026-03-06T17:31:00+01:00"], set(), id="since-offset"),
    ],
)
def test_replay_requeues_and_prints_the_count(
    filled: Filled, args: list[str], requeued: set[str]
) -> None:
    before = states(filled.db)

    result = run(["replay", *args], filled.db)

    assert result.exit_code == 0, result.output
    assert result.stdout == f"{len(requeued)} event(s) queued again\n"
    after = states(filled.db)
    for event_id, state in after.items():
        expected = ("pending", 0) if event_id in requeued else before[event_id]
        assert state == expected, event_id


def test_replay_by_inbox_row_id(filled: Filled) -> None:
    result = run(["replay", "--event", str(filled.ids["ev-3"])], filled.db)

    assert result.exit_code == 0, result.output
    assert result.stdout == "1 event(s) queued again\n"
    assert states(filled.db)["ev-3"] == ("pending", 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([], "give exactly one of", id="none"),
        pytest.param(["--dead", "--event", "1"], "give exactly one of", id="dead+event"),
        pytest.param(["--dead", "--since", "2026-01-01T00:00:00Z"], "exactly one", id="two"),
        pytest.param(["--since", "yesterday"], "--since", id="not-a-time"),
        pytest.param(["--since", "2026-01-01T00:00:00"], "UTC offset", id="naive"),
    ],
)
def test_replay_usage_errors_exit_2_and_change_nothing(
    filled: Filled, args: list[str], message: str
) -> None:
    before = states(filled.db)

    result = run(["replay", *args], filled.db)

    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert states(filled.db) == before


def test_replay_of_an_event_named_neither_way_exits_1(filled: Filled) -> None:
    result = run(["replay", "--event", "ev-1"], filled.db)

    assert result.exit_code == 1
    assert "give an inbox row id or tenant:event_id" in result.stderr


# -- explain --vendor ------------------------------------------------------------------


def explain(*args: str, env: dict[str, str] | None = None) -> Result:
    return run(["explain", "--now", AT, *args], Path("unused.sqlite3"), **(env or {}))


def test_explain_a_zendesk_event_webhook_is_refused_as_partial() -> None:
    # An event webhook has no requester email and no custom fields: deciding from it
    # would downgrade a Premier ticket to its fallback, so explain says so instead.
    result = explain("--vendor", "zendesk", str(ZENDESK_CREATED))

    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "carries no requester or custom fields" in result.stderr
    assert "trigger body" in result.stderr


def test_explain_a_zendesk_trigger_body(tmp_path: Path) -> None:
    body = {
        "schema": "tierdesk.zendesk.trigger/1",
        "event": "ticket.created",
        "ticket": {
            "id": "5158",
            "created_at": "2026-03-06T16:30:00Z",
            "requester": "alice@acme.example",
            "organization_id": "360001",
            "priority": "urgent",
            "product": "jira-software",
        },
        "updated_by": "alice@acme.example",
    }
    source = tmp_path / "trigger.json"
    source.write_text(json.dumps(body))
    result = explain("--vendor", "zendesk", str(source))

    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert (decision["ticket"], decision["account"], decision["tier"]) == (
        "5158",
        "acme",
        "premier",
    )
    assert decision["named_contact"] == {"status": "valid", "reason": None}


def test_explain_a_jira_issue_event() -> None:
    result = explain("--vendor", "jsm", str(JSM_CUSTOM_FIELDS))

    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert decision["ticket"] == "KAN-3"  # the key, as people call it
    assert (decision["tier"], decision["severity"], decision["covered"]) == ("select", 3, True)
    assert decision["reasons"] == ["unknown_account"]


@pytest.mark.parametrize(
    ("vendor", "payload", "message"),
    [
        pytest.param(
            "jsm",
            "jsm/payloads/jira-comment_created.json",
            "jsm comment.created event for ZUL-1 carries no ticket to decide",
            id="comment",
        ),
        pytest.param(
            "jsm",
            "jsm/payloads/jira-example_anomalous_payload.json",
            "jsm payload: field webhookEvent: required",
            id="anomalous",
        ),
        pytest.param(
            "zendesk",
            "zendesk/payloads/aaronellington-event-webhook-user.group_membership_created.json",
            "zendesk payload ignored: zen:event-type:user.group_membership_created",
            id="zendesk-not-a-ticket",
        ),
        pytest.param(
            "zendesk",
            "jsm/payloads/jira-issue_created.json",
            "zendesk payload: field type: required",
            id="wrong-vendor",
        ),
    ],
)
def test_explain_vendor_payloads_that_cannot_be_decided_exit_2(
    vendor: str, payload: str, message: str
) -> None:
    result = explain("--vendor", vendor, str(PAYLOADS / payload))

    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert message in result.stderr


KAN_CONFIG = """
[tenants.kan-jsm]
vendor = "jsm"
base_url = "https://kan.atlassian.net"
[tenants.kan-jsm.fields]
product = "customfield_10070"
severity = "customfield_10071"
[tenants.kan-jsm.fields.values.product]
Testing = "trello"
[tenants.kan-jsm.fields.values.severity]
medium = "1"

[tenants.kan-zd]
vendor = "zendesk"
"""


def test_explain_reads_custom_fields_as_the_tenant_does(tmp_path: Path) -> None:
    config = tmp_path / "tierdesk.toml"
    config.write_text(KAN_CONFIG, encoding="utf-8")

    result = explain(
        "--vendor",
        "jsm",
        "--tenant",
        "kan-jsm",
        str(JSM_CUSTOM_FIELDS),
        env={"TIERDESK_CONFIG": str(config)},
    )

    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    # customfield_10070 "Testing" → product trello, which Select does not cover;
    # customfield_10071 {"value": "Medium"} → severity 1 (values match case-insensitively).
    assert decision["covered"] is False
    assert "product_not_covered" in decision["reasons"]
    assert decision["severity"] == 1
    assert any("Trello" in why for why in decision["explanation"])


@pytest.mark.parametrize(
    ("tenant", "message"),
    [("nope", "no jsm tenant called 'nope'"), ("kan-zd", "no jsm tenant called 'kan-zd'")],
    ids=["unknown", "other-vendor"],
)
def test_explain_with_a_tenant_not_configured_for_the_vendor_exits_2(
    tmp_path: Path, tenant: str, message: str
) -> None:
    config = tmp_path / "tierdesk.toml"
    config.write_text(KAN_CONFIG, encoding="utf-8")

    result = explain(
        "--vendor",
        "jsm",
        "--tenant",
        tenant,
        str(JSM_CUSTOM_FIELDS),
        env={"TIERDESK_CONFIG": str(config)},
    )

    assert result.exit_code == 2, result.output
    assert message in result.stderr


# -- worker ------------------------------------------------------------------------------


def test_worker_process_drains_the_inbox_and_stops_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite3"
    store = SqliteStore(db)
    # The worker decides by the real clock: these events are already due.
    now = time.time()
    for i, event in enumerate(
        [zendesk_event("ev-1", "acme-zd"), worklog_event("wl-1"), zendesk_event("ev-2", "acme-zd")]
    ):
        put(store, event, now - 10 + i)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERDESK_")}
    env |= {"TIERDESK_DATABASE": str(db), "TIERDESK_TENANTS": "acme-zd=zendesk,acme-jsm=jsm"}
    log = (tmp_path / "worker.log").open("w+", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "tierdesk", "worker", "--threads", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20  # start-up (imports, mappings) takes about a second
        while store.counts() != {"done": 3} and time.monotonic() < deadline:
            assert process.poll() is None, "the worker exited by itself"
            time.sleep(0.05)
        assert store.counts() == {"done": 3}

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.seek(0)
        output = log.read()
        log.close()
    assert [e.outcome for e in store.history("123")] == ["decided", "decided"]
    assert [e.outcome for e in store.history("10014")] == ["recorded"]
    assert "outcome=decided" in output
    store.close()


def test_explain_vendor_jsm_classic_priority_scheme() -> None:
    # Jira Server's classic scheme (Blocker…Trivial) is in the bundled priority map:
    # "Major" is level 3.
    result = explain("--vendor", "jsm", str(PAYLOADS / "jsm/payloads/jira-issue_created.json"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["severity"] == 3
