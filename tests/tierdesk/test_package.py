"""The Zendesk app package: the app in this repository against the framework's rules,
the trigger body against the real intake, the deterministic zip, and every rule's
refusal (each negative case breaks one thing in a copy of the app and expects the
file, JSON pointer and rule)."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector import setup_zendesk
from connector.zendesk_directory import ORG_ACCOUNT, ORG_HOURS, ORG_TIER, USER_ADMIN, USER_CONTACT
from mappings import load_mappings
from mappings.problems import Problem
from tierdesk.package import (
    LOGOS,
    PackageError,
    app_files,
    build,
    default_app_dir,
    png_size,
    validate,
)
from tierdesk.package_command import package
from webhooks.app import create_app
from webhooks.events import TicketEvent
from webhooks.settings import Secret, Settings, Tenant
from webhooks.signatures import sign_zendesk
from webhooks.zendesk import TRIGGER_BODY, normalize

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "tierdesk.acme.example"
TENANT = Tenant(id="acme-zd", vendor="zendesk", webhook_secrets=(Secret("zd-secret"),))


def load(name: str, root: Path = ROOT) -> Any:
    return json.loads((root / name).read_text("utf-8"))


def rules(problems: list[Problem]) -> set[tuple[str, str, str]]:
    return {(p.file, p.pointer, p.rule) for p in problems}


# -- the app in this repository -------------------------------------------------------


def test_the_app_is_found_at_the_checkout_root() -> None:
    assert default_app_dir() == ROOT
    assert (ROOT / "pyproject.toml").is_file()
    assert app_files(ROOT) == [
        "assets/i18n.js",
        "assets/iframe.html",
        "assets/logo-small.png",
        "assets/logo.png",
        "assets/sidebar.css",
        "assets/sidebar.js",
        "manifest.json",
        "requirements.json",
        "translations/en.json",
        "translations/ja.json",
    ]


def test_the_app_is_valid_once_tierdesk_host_is_named() -> None:
    assert validate(ROOT, domains=[DOMAIN]) == []


def test_without_a_host_the_secure_token_would_never_be_sent() -> None:
    (problem,) = validate(ROOT)
    assert (problem.file, problem.pointer, problem.rule) == (
        "manifest.json",
        "/domainWhitelist",
        "secure_needs_domain",
    )
    assert "app_token" in problem.message and "--domain" in problem.message


def test_manifest_settings() -> None:
    manifest = load("manifest.json")
    assert manifest["frameworkVersion"] == "2.0"
    assert manifest["location"] == {
        "support": {"ticket_sidebar": {"url": "assets/iframe.html", "flexible": True}}
    }
    parameters = {p["name"]: p for p in manifest["parameters"]}
    assert parameters["service_url"] == {"name": "service_url", "type": "url", "required": True}
    assert parameters["app_token"]["secure"] is True and parameters["app_token"]["required"]
    assert parameters["app_token"]["type"] == "text"
    assert not any(p.get("secure") for n, p in parameters.items() if n != "app_token")
    assert manifest["version"] == version("tierdesk")


def test_logos_are_the_pngs_zendesk_asks_for() -> None:
    sizes = {logo: png_size((ROOT / logo).read_bytes()) for logo in LOGOS}
    assert sizes == {"assets/logo.png": (320, 320), "assets/logo-small.png": (128, 128)}


def test_the_page_loads_nothing_from_elsewhere_but_the_sdk() -> None:
    html = (ROOT / "assets/iframe.html").read_text("utf-8")
    external = re.findall(r"""(?:src|href)=["'](https?:[^"']+)""", html)
    assert external == ["https://static.zdassets.com/zendesk_app_framework_sdk/2.0/zaf_sdk.min.js"]


# -- requirements.json ----------------------------------------------------------------


def test_ticket_fields_are_those_tierdesk_writes_and_reads() -> None:
    every = load("requirements.json")["ticket_fields"]
    rulebook = load_mappings(None)
    read = setup_zendesk.read_fields(
        rulebook.severity.levels, rulebook.products, rulebook.environments, rulebook.categories
    )
    # The fields tierdesk reads: drop-downs of the bundled mappings' slugs, exactly as
    # `tierdesk setup zendesk` creates them.
    assert {k: v for k, v in every.items() if k in {f.key for f in read}} == {
        f.key: f.requirement() for f in read
    }
    options = every["tierdesk_product"]["custom_field_options"]
    assert [o["value"] for o in options] == list(rulebook.products)
    severities = every["tierdesk_severity"]["custom_field_options"]
    assert [o["value"] for o in severities] == ["1", "2", "3", "4"]
    fields = {k: v for k, v in every.items() if k not in {f.key for f in read}}
    assert {k: v["type"] for k, v in fields.items()} == {
        "tierdesk_tier": "text",
        "tierdesk_first_response_due": "text",
        "tierdesk_named_contact": "text",
        "tierdesk_named_contact_reason": "textarea",
        "tierdesk_coverage": "text",
        "tierdesk_sla": "text",
        "tierdesk_escalation_level": "text",
        "tierdesk_first_response": "text",
        "tierdesk_hours": "text",
    }
    assert all(v["title"].startswith("tierdesk: ") for v in fields.values())
    # `tierdesk setup zendesk` creates the very same fields (key, title, type): the app
    # and setup find each other's.
    assert {k: (v["title"], v["type"], v["description"]) for k, v in fields.items()} == {
        spec.key: (spec.title, spec.type, spec.description) for spec in setup_zendesk.FIELDS
    }


def test_user_and_organization_fields_are_those_setup_creates_for_sync() -> None:
    doc = load("requirements.json")
    tiers = [(tier.id, tier.name) for tier in load_mappings(None).tiers.values()]
    # The app installs what `tierdesk setup zendesk` creates (and sync reads and writes):
    # the same keys, types, titles, descriptions and drop-down options. The app's tier
    # options are the bundled mappings' tiers; setup adds those of other mappings.
    for owner in ("organization", "user"):
        assert doc[f"{owner}_fields"] == {
            spec.key: spec.requirement()
            for spec in setup_zendesk.directory_fields(tiers)
            if spec.owner == owner
        }
    assert set(doc["organization_fields"]) == {ORG_ACCOUNT, ORG_TIER, ORG_HOURS}
    assert set(doc["user_fields"]) == {USER_CONTACT, USER_ADMIN}
    tier_options = doc["organization_fields"][ORG_TIER]["custom_field_options"]
    assert [o["value"] for o in tier_options] == list(load_mappings(None).tiers)


def test_the_webhook_points_at_the_zendesk_intake_route(tmp_path: Path) -> None:
    (hook,) = load("requirements.json")["webhooks"].values()
    assert (hook["http_method"], hook["request_format"], hook["status"]) == (
        "POST",
        "json",
        "active",
    )
    assert hook["subscriptions"] == ["conditional_ticket_events"]
    # No signing secret in the file (secrets never in files): Zendesk makes one per
    # webhook, which the admin copies into TIERDESK_TENANT_<ID>_WEBHOOK_SECRET.
    assert "signing_secret" not in hook and "authentication" not in hook
    url = hook["endpoint"].replace("{{setting.service_url}}", "https://tierdesk.acme.example")
    url = url.replace("{{setting.tenant}}", TENANT.id)
    assert url == "https://tierdesk.acme.example/webhooks/zendesk/acme-zd"
    app = create_app(Settings(database=str(tmp_path / "t.sqlite3"), tenants={TENANT.id: TENANT}))
    adapter = app.url_map.bind("tierdesk.acme.example")
    endpoint, args = adapter.match("/webhooks/zendesk/acme-zd", method="POST")
    assert (endpoint, args) == ("zendesk.zendesk_webhook", {"tenant_id": "acme-zd"})


def triggers() -> dict[str, Any]:
    doc: dict[str, Any] = load("requirements.json")["triggers"]
    return doc


def test_the_update_trigger_skips_updates_made_through_the_api() -> None:
    created, updated = triggers()["tierdesk_ticket_created"], triggers()["tierdesk_ticket_updated"]
    assert created["conditions"]["all"] == [
        {"field": "update_type", "operator": "is", "value": "Create"}
    ]
    # Via id 5 is web_service, the API: tierdesk's own write-backs (and any other API
    # client's) do not call tierdesk again.
    assert updated["conditions"]["all"] == [
        {"field": "update_type", "operator": "is", "value": "Change"},
        {"field": "current_via_id", "operator": "is_not", "value": "5"},
    ]


SAMPLES = {
    "ticket.id": "4242",
    "ticket.created_at_with_timestamp": "2026-03-06T16:30:00Z",
    "ticket.updated_at_with_timestamp": "2026-03-06T16:45:00Z",
    "ticket.requester.email": "alice@acme.example",
    "ticket.organization.id": "360001",
    "ticket.priority": "Urgent",
    "ticket.status": "Open",
    "ticket.ticket_field_SEVERITY_FIELD_ID": "1",
    "ticket.ticket_field_PRODUCT_FIELD_ID": "jira-software",
    "ticket.ticket_field_ENVIRONMENT_FIELD_ID": "production",
    "ticket.ticket_field_CATEGORY_FIELD_ID": "",  # a field left blank
    "ticket.ticket_field_TIME_SPENT_FIELD_ID": "",
    "current_user.email": "bob@acme.example",
}


def filled(body: str) -> str:
    """The body as Zendesk sends it: every placeholder replaced by its sample value (a
    placeholder without a sample fails the test: add one)."""
    return re.sub(r"\{\{\s*([^}\s]+)\s*\}\}", lambda m: SAMPLES[m.group(1)], body)


@pytest.mark.parametrize(
    ("trigger", "kind"),
    [("tierdesk_ticket_created", "ticket.created"), ("tierdesk_ticket_updated", "ticket.updated")],
)
def test_the_trigger_body_is_what_the_intake_parses(trigger: str, kind: str) -> None:
    (action,) = triggers()[trigger]["actions"]
    assert action["field"] == "notification_webhook"
    hook, body = action["value"]
    assert hook in load("requirements.json")["webhooks"]
    assert json.loads(body) == {**copy.deepcopy(TRIGGER_BODY), "event": kind}
    event = normalize(json.loads(filled(body)), TENANT, "delivery-1")
    assert isinstance(event, TicketEvent)
    assert (event.kind, event.ticket_id, event.actor) == (kind, "4242", "bob@acme.example")
    assert event.occurred_at == datetime(2026, 3, 6, 16, 45, tzinfo=UTC)
    ticket = event.ticket
    assert ticket is not None
    assert (ticket.requester, ticket.severity, ticket.priority) == (
        "alice@acme.example",
        "1",  # as the field holds it; the rules read "1" as level 1
        "urgent",
    )
    assert ticket.organization is not None and ticket.organization.id == "360001"
    assert (ticket.product, ticket.environment, ticket.category) == (
        "jira-software",
        "production",
        None,
    )


def test_a_filled_trigger_body_is_queued_by_the_signed_intake(tmp_path: Path) -> None:
    app = create_app(
        Settings(database=str(tmp_path / "t.sqlite3"), tenants={TENANT.id: TENANT}, coalesce_s=0)
    )
    (action,) = triggers()["tierdesk_ticket_created"]["actions"]
    body = filled(action["value"][1]).encode()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = app.test_client().post(
        "/webhooks/zendesk/acme-zd",
        data=body,
        content_type="application/json",
        headers={
            "X-Zendesk-Webhook-Signature": sign_zendesk("zd-secret", stamp, body),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        },
    )
    assert (response.status_code, (response.json or {}).get("status")) == (202, "queued")
    (row,) = app.extensions["tierdesk.store"].events()
    assert (row.tenant, row.kind, row.ticket) == ("acme-zd", "ticket.created", "4242")


# -- the zip --------------------------------------------------------------------------


def test_the_zip_is_deterministic_and_holds_the_app_at_its_root(tmp_path: Path) -> None:
    first = build(ROOT, tmp_path / "a" / "app.zip", domains=[DOMAIN])
    source = tmp_path / "copy"
    copy_app(source)
    for i, name in enumerate(app_files(source)):  # other mtimes, same contents
        os.utime(source / name, (1_000_000 + i, 2_000_000 + i))
    second = build(source, tmp_path / "b" / "app.zip", domains=[DOMAIN])
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha256 == second.sha256
    assert first.path.stat().st_mode & 0o777 == 0o644
    with zipfile.ZipFile(first.path) as archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names) == app_files(ROOT)
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert {(i.external_attr >> 16) & 0o777 for i in infos} == {0o644}
        for name in names:
            if name != "manifest.json":
                assert archive.read(name) == (ROOT / name).read_bytes(), name
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest == {**load("manifest.json"), "domainWhitelist": [DOMAIN]}


def test_an_invalid_app_writes_no_zip(tmp_path: Path) -> None:
    out = tmp_path / "dist" / "app.zip"
    with pytest.raises(PackageError) as refused:
        build(ROOT, out)
    assert rules(list(refused.value.problems)) == {
        ("manifest.json", "/domainWhitelist", "secure_needs_domain")
    }
    assert not out.parent.exists()  # nothing written, not even the folder


# -- the command ----------------------------------------------------------------------


def test_command_builds_the_zip(tmp_path: Path) -> None:
    out = tmp_path / "tierdesk.zip"
    result = CliRunner().invoke(package, ["zendesk", "--out", str(out), "--domain", DOMAIN])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output and "10 files" in result.output
    assert zipfile.ZipFile(out).namelist() == app_files(ROOT)


def test_command_default_output_is_under_dist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(package, ["zendesk", "--domain", DOMAIN])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "dist/tierdesk-zendesk-0.1.0.zip").is_file()


def test_command_check_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(package, ["zendesk", "--check", "--json"])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert lines == [
        {
            "file": "manifest.json",
            "pointer": "/domainWhitelist",
            "rule": "secure_needs_domain",
            "message": lines[0]["message"],
        }
    ]
    ok = CliRunner().invoke(package, ["zendesk", "--check", "--domain", DOMAIN])
    assert ok.exit_code == 0, ok.output


def test_command_outside_a_checkout_says_where_the_app_lives(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        package, ["zendesk", "--source", str(tmp_path), "--out", str(tmp_path / "x.zip")]
    )
    assert result.exit_code == 1
    assert "missing_manifest" in result.output and "tierdesk checkout" in result.output
    assert not (tmp_path / "x.zip").exists()


# -- every rule, refused --------------------------------------------------------------


def copy_app(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in ("manifest.json", "requirements.json"):
        shutil.copy(ROOT / name, target / name)
    for folder in ("assets", "translations"):
        shutil.copytree(ROOT / folder, target / folder)


def edit(name: str, change: Callable[[Any], object]) -> Callable[[Path], None]:
    """Change the JSON document in place (whatever ``change`` returns is ignored)."""

    def apply(root: Path) -> None:
        doc = json.loads((root / name).read_text("utf-8"))
        change(doc)
        (root / name).write_text(json.dumps(doc), "utf-8")

    return apply


def write(name: str, text: str | bytes) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, "utf-8")

    return apply


def remove(name: str) -> Callable[[Path], None]:
    return lambda root: (root / name).unlink()


def param(i: int, **changes: Any) -> Callable[[Any], None]:
    def change(doc: Any) -> None:
        doc["parameters"][i].update(changes)
        for key, value in changes.items():
            if value is None:
                del doc["parameters"][i][key]

    return change


def trigger_action(doc: Any) -> Any:
    return doc["triggers"]["tierdesk_ticket_updated"]["actions"][0]


UPDATED = "/triggers/tierdesk_ticket_updated"
HOOK = "/webhooks/tierdesk_webhook"
SIDEBAR = "/location/support/ticket_sidebar"
M, R = "manifest.json", "requirements.json"

TIER_OPTIONS = "/organization_fields/tierdesk_tier/custom_field_options"
CONTACT_OPTIONS = "/user_fields/tierdesk_named_contact/custom_field_options"
CASES: list[tuple[str, Callable[[Path], None], tuple[str, str, str]]] = [
    ("no manifest", remove(M), (M, "", "missing_manifest")),
    ("manifest not JSON", write(M, "{"), (M, "", "not_json")),
    ("no author", edit(M, lambda d: d.pop("author")), (M, "/author", "required")),
    (
        "author url",
        edit(M, lambda d: d["author"].update(url="ftp://x")),
        (M, "/author/url", "invalid_url"),
    ),
    ("no location", edit(M, lambda d: d.pop("location")), (M, "/location", "required")),
    (
        "no frameworkVersion",
        edit(M, lambda d: d.pop("frameworkVersion")),
        (M, "/frameworkVersion", "required"),
    ),
    (
        "framework 1.0",
        edit(M, lambda d: d.update(frameworkVersion="1.0")),
        (M, "/frameworkVersion", "invalid_version"),
    ),
    (
        "a typo",
        edit(M, lambda d: d.update(defaultlocale="en")),
        (M, "/defaultlocale", "unknown_key"),
    ),
    ("private not bool", edit(M, lambda d: d.update(private="yes")), (M, "/private", "boolean")),
    (
        "locale file",
        edit(M, lambda d: d.update(defaultLocale="fr")),
        (M, "/defaultLocale", "missing_translation_file"),
    ),
    (
        "bad locale",
        edit(M, lambda d: d.update(defaultLocale="english")),
        (M, "/defaultLocale", "invalid_default_locale"),
    ),
    (
        "unknown product",
        edit(M, lambda d: d.update(location={"suport": {}})),
        (M, "/location/suport", "invalid_host"),
    ),
    (
        "unknown location",
        edit(
            M, lambda d: d["location"]["support"].update(ticket_panel={"url": "assets/iframe.html"})
        ),
        (M, "/location/support/ticket_panel", "invalid_location"),
    ),
    (
        "missing page",
        edit(
            M, lambda d: d["location"]["support"]["ticket_sidebar"].update(url="assets/nope.html")
        ),
        (M, f"{SIDEBAR}/url", "invalid_location_uri"),
    ),
    (
        "page over http",
        edit(
            M, lambda d: d["location"]["support"]["ticket_sidebar"].update(url="http://x.example/a")
        ),
        (M, f"{SIDEBAR}/url", "invalid_location_uri"),
    ),
    (
        "no page",
        edit(M, lambda d: d["location"]["support"]["ticket_sidebar"].pop("url")),
        (M, f"{SIDEBAR}/url", "blank_location_uri"),
    ),
    (
        "parameter type",
        edit(M, param(0, type="string")),
        (M, "/parameters/0/type", "invalid_type_parameter"),
    ),
    ("secure not bool", edit(M, param(2, secure="yes")), (M, "/parameters/2/secure", "boolean")),
    (
        "token not secure",
        edit(M, param(2, secure=None)),
        (M, "/parameters/2/secure", "insecure_token_parameter"),
    ),
    (
        "secure default",
        edit(M, param(2, default="s3cret")),
        (M, "/parameters/2/default", "secure_default"),
    ),
    (
        "secure oauth",
        edit(M, param(2, type="oauth")),
        (M, "/parameters/2/secure", "oauth_parameter_cannot_be_secure"),
    ),
    (
        "hidden required",
        edit(M, param(1, type="hidden")),
        (M, "/parameters/1", "invalid_hidden_parameter"),
    ),
    (
        "twice",
        edit(M, param(1, name="service_url")),
        (M, "/parameters/1/name", "duplicate_parameters"),
    ),
    (
        "reserved name",
        edit(M, param(1, name="name")),
        (M, "/parameters/1/name", "name_as_parameter_name"),
    ),
    ("nameless", edit(M, param(1, name=None)), (M, "/parameters/1/name", "required")),
    (
        "two oauth",
        edit(
            M,
            lambda d: d["parameters"].extend(
                [{"name": "a", "type": "oauth"}, {"name": "b", "type": "oauth"}]
            ),
        ),
        (M, "/parameters", "too_many_oauth_parameters"),
    ),
    (
        "url as domain",
        edit(M, lambda d: d.update(domainWhitelist=["https://tierdesk.acme.example"])),
        (M, "/domainWhitelist/0", "domain"),
    ),
    ("requirements not JSON", write(R, "[1,"), (R, "", "not_json")),
    (
        "duplicate keys",
        write(R, '{"ticket_fields": {}, "ticket_fields": {}}'),
        (R, "", "duplicate_keys"),
    ),
    (
        "unknown type",
        edit(R, lambda d: d.update(ticket_field={})),
        (R, "/ticket_field", "invalid_requirements_types"),
    ),
    (
        "field without title",
        edit(R, lambda d: d["ticket_fields"]["tierdesk_tier"].pop("title")),
        (R, "/ticket_fields/tierdesk_tier/title", "missing_required_fields"),
    ),
    (
        "field type",
        edit(R, lambda d: d["ticket_fields"]["tierdesk_tier"].update(type="string")),
        (R, "/ticket_fields/tierdesk_tier/type", "invalid_field_type"),
    ),
    (
        "user field without key",
        edit(R, lambda d: d.update(user_fields={"named": {"type": "checkbox", "title": "Named"}})),
        (R, "/user_fields/named/key", "missing_required_fields"),
    ),
    (
        "user field of no known type",
        edit(R, lambda d: d["user_fields"]["tierdesk_site_admin"].update(type="tagger")),
        (R, "/user_fields/tierdesk_site_admin/type", "invalid_field_type"),
    ),
    (
        "drop-down without options",
        edit(R, lambda d: d["organization_fields"]["tierdesk_tier"].pop("custom_field_options")),
        (R, "/organization_fields/tierdesk_tier/custom_field_options", "missing_required_fields"),
    ),
    (
        "drop-down option without a value",
        edit(
            R,
            lambda d: d["organization_fields"]["tierdesk_tier"]["custom_field_options"][1].pop(
                "value"
            ),
        ),
        (
            R,
            "/organization_fields/tierdesk_tier/custom_field_options/1/value",
            "missing_required_fields",
        ),
    ),
    (
        "drop-down option value twice",
        edit(
            R,
            lambda d: d["organization_fields"]["tierdesk_tier"]["custom_field_options"].append(
                {"name": "Again", "value": "premier"}
            ),
        ),
        (
            R,
            "/organization_fields/tierdesk_tier/custom_field_options/5/value",
            "duplicate_option_value",
        ),
    ),
    (
        "drop-down option value with a space",
        edit(
            R,
            lambda d: d["organization_fields"]["tierdesk_tier"]["custom_field_options"][0].update(
                value="pre mier"
            ),
        ),
        (
            R,
            "/organization_fields/tierdesk_tier/custom_field_options/0/value",
            "invalid_option_value",
        ),
    ),
    (
        "organization field key",
        edit(R, lambda d: d["organization_fields"]["tierdesk_hours"].update(key="tierdesk-hours")),
        (R, "/organization_fields/tierdesk_hours/key", "invalid_field_key"),
    ),
    (
        "options on a text field",
        edit(
            R,
            lambda d: d["organization_fields"]["tierdesk_hours"].update(
                custom_field_options=[{"name": "OK", "value": "ok"}]
            ),
        ),
        (R, "/organization_fields/tierdesk_hours/custom_field_options", "unexpected_options"),
    ),
    (
        "webhook without method",
        edit(R, lambda d: d["webhooks"]["tierdesk_webhook"].pop("http_method")),
        (R, f"{HOOK}/http_method", "missing_required_fields"),
    ),
    (
        "webhook method",
        edit(R, lambda d: d["webhooks"]["tierdesk_webhook"].update(http_method="SEND")),
        (R, f"{HOOK}/http_method", "invalid_value"),
    ),
    (
        "webhook over http",
        edit(R, lambda d: d["webhooks"]["tierdesk_webhook"].update(endpoint="http://x.example/")),
        (R, f"{HOOK}/endpoint", "invalid_url"),
    ),
    (
        "undeclared setting",
        edit(R, lambda d: d["webhooks"]["tierdesk_webhook"].update(endpoint="{{setting.url}}/x")),
        (R, f"{HOOK}/endpoint", "unknown_setting"),
    ),
    (
        "secret in a requirement",
        edit(
            R,
            lambda d: d["webhooks"]["tierdesk_webhook"].update(
                endpoint="{{setting.service_url}}/{{setting.app_token}}"
            ),
        ),
        (R, f"{HOOK}/endpoint", "secure_setting_in_requirements"),
    ),
    (
        "old target type",
        edit(R, lambda d: d.update(targets={"t": {"title": "T", "type": "http_target"}})),
        (R, "/targets/t/type", "invalid_requirements_types"),
    ),
    (
        "trigger without actions",
        edit(R, lambda d: d["triggers"]["tierdesk_ticket_updated"].pop("actions")),
        (R, f"{UPDATED}/actions", "missing_required_fields"),
    ),
    (
        "trigger without title",
        edit(R, lambda d: d["triggers"]["tierdesk_ticket_updated"].pop("title")),
        (R, f"{UPDATED}/title", "missing_required_fields"),
    ),
    (
        "unknown webhook",
        edit(R, lambda d: trigger_action(d)["value"].__setitem__(0, "01HWNR72XCXH956BBDVPGQB386")),
        (R, f"{UPDATED}/actions/0/value/0", "unknown_webhook"),
    ),
    (
        "body not JSON",
        edit(R, lambda d: trigger_action(d)["value"].__setitem__(1, '{"ticket": ')),
        (R, f"{UPDATED}/actions/0/value/1", "body_not_json"),
    ),
    ("no logo", remove("assets/logo.png"), ("assets/logo.png", "", "missing_file")),
    (
        "logo not PNG",
        write("assets/logo-small.png", b"GIF89a"),
        ("assets/logo-small.png", "", "invalid_png"),
    ),
    (
        "missing script",
        write("assets/iframe.html", '<script src="app.js"></script>'),
        ("assets/iframe.html", "", "missing_asset"),
    ),
    (
        "third-party script",
        write("assets/iframe.html", '<script src="https://cdn.example/x.js"></script>'),
        ("assets/iframe.html", "", "external_resource"),
    ),
    (
        "missing css image",
        write("assets/sidebar.css", "body { background: url(bg.png) }"),
        ("assets/sidebar.css", "", "missing_asset"),
    ),
    (
        "english without a name",
        edit("translations/en.json", lambda d: d["app"].pop("name")),
        ("translations/en.json", "/app/name", "missing_required_key"),
    ),
    (
        "setting without a label",
        edit("translations/en.json", lambda d: d["app"]["parameters"].pop("tenant")),
        ("translations/en.json", "/app/parameters/tenant/label", "missing_label"),
    ),
    (
        "bad locale file",
        write("translations/english.json", "{}"),
        ("translations/english.json", "", "invalid_locale"),
    ),
]


@pytest.mark.parametrize(
    ("breakage", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_rule_is_refused_with_file_pointer_and_rule(
    tmp_path: Path, breakage: Callable[[Path], None], expected: tuple[str, str, str]
) -> None:
    copy_app(tmp_path)
    assert validate(tmp_path, domains=[DOMAIN]) == []  # the copy is good before it breaks
    breakage(tmp_path)
    found = rules(validate(tmp_path, domains=[DOMAIN]))
    assert expected in found, sorted(found)
