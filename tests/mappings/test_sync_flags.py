"""Named contacts and site admins across `sync push` and `sync pull`, as a first week
goes: the helpdesk's flag fields start empty (a fresh `tierdesk setup`), push fills
them, an admin clears one, a field is made again.

An empty flag is *unknown* until tierdesk has shown it: only a flag both sides agreed
on (`mappings.sync.shown`) and someone cleared since removes a contact. Flags name their
account, so one person can be flagged for two accounts and lose one flag only.

The helpdesk is `FakeZendesk` (records made from the recorded pages, writes kept), the
mappings the bundled ones; the record of what was shown is a real SQLite file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import responses
from requests.auth import HTTPBasicAuth

from connector.http import HttpClient, Policy
from connector.zendesk_directory import ZendeskDirectory
from mappings import BUNDLED
from mappings.sync import PullReport, PushReport, pull, push
from mappings.sync.shown import ShownFlags, flags_path
from tests.connector.directory_support import (
    FakeZendesk,
    assert_directory_request,
    zendesk_org,
    zendesk_user,
)

BASE = "https://acme.zendesk.com"
ALICE, JOHN, HANK = (
    "alice@acme.example",
    "JohnSmith_PartnerCompanyA@acme.example",
    "hank@acme.example",
)


class Install:
    """One tenant's helpdesk, mappings directory and state directory over a week."""

    def __init__(self, tmp_path: Path) -> None:
        self.mappings = tmp_path / "mappings"
        shutil.copytree(BUNDLED, self.mappings)
        self.state = tmp_path / "state"
        # As `tierdesk setup zendesk` leaves them: fields created, every value empty.
        self.orgs = [
            zendesk_org(360001, "Acme Corp", domains=("acme.example",)),
            zendesk_org(360002, "Globex"),
            zendesk_org(360003, "Initech"),
        ]
        self.users = [
            zendesk_user(1, ALICE, org=360001),
            zendesk_user(2, JOHN, org=360001),
            zendesk_user(3, HANK, org=360001),
            zendesk_user(4, "carol@globex.example", org=360002),
        ]

    def user(self, email: str) -> dict[str, Any]:
        return next(u for u in self.users if u["email"] == email)

    def accounts(self) -> dict[str, dict[str, Any]]:
        doc = json.loads((self.mappings / "accounts.json").read_text(encoding="utf-8"))
        return {a["id"]: a for a in doc["accounts"]}

    def edit(self, change: Any) -> None:
        path = self.mappings / "accounts.json"
        doc = json.loads(path.read_text(encoding="utf-8"))
        change({a["id"]: a for a in doc["accounts"]})
        path.write_text(json.dumps(doc), encoding="utf-8")

    def _directory(self) -> ZendeskDirectory:
        client = HttpClient(
            BASE,
            HTTPBasicAuth("ops@acme.example/token", "s3cret"),
            policy=Policy(requests_per_minute=1e6, deadline_s=300, max_attempts=2),
            sleep=lambda s: None,
        )
        return ZendeskDirectory(client, page_size=2)

    def _run(self, job: str, **options: Any) -> Any:
        shown = ShownFlags(flags_path(self.state, "acme-zd"), readonly=options.pop("dry", False))
        identity = {"job": job, "tenant": "acme-zd", "vendor": "zendesk", "base_url": BASE}
        try:
            with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
                fake = FakeZendesk(rsps, BASE, self.orgs, self.users, page_size=2)
                run = pull if job == "pull" else push
                report = run(
                    self._directory(),
                    self.mappings,
                    self.state / f"acme-zd.{job}.sqlite3",
                    identity,
                    shown=shown,
                    **options,
                )
                for request in fake.requests:
                    assert_directory_request("zendesk", request)
        finally:
            shown.close()
        return report

    def pull(self, **options: Any) -> PullReport:
        report: PullReport = self._run("pull", **options)
        return report

    def push(self) -> PushReport:
        report: PushReport = self._run("push")
        return report


def contacts(account: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    premier, priority = account["subscriptions"][0], account["subscriptions"][1]
    return (
        premier.get("named_contacts", []),
        premier.get("partner_contacts", []),
        priority.get("site_admins", []),
    )


def test_a_pull_right_after_a_fresh_setup_keeps_every_contact(tmp_path: Path) -> None:
    # The reported failure: setup made the flag fields, empty; a cron `sync pull --yes`
    # read every person as "flag cleared" and dropped acme's Premier named contacts.
    install = Install(tmp_path)
    before = install.accounts()

    report = install.pull()

    assert not report.refused and not report.written
    assert install.accounts() == before
    assert contacts(install.accounts()["acme"]) == ([ALICE], [JOHN], [HANK])
    assert report.removed == []
    assert report.unknown == 3  # alice, John, hank: never shown, so kept
    assert any("kept (alice@acme.example)" in note for note in report.notes)


def test_a_push_then_a_pull_agree_and_a_cleared_flag_then_removes_the_contact(
    tmp_path: Path,
) -> None:
    install = Install(tmp_path)
    install.push()
    assert install.user(ALICE)["user_fields"] == {"tierdesk_named_contact": "acme:direct"}
    assert install.user(JOHN)["user_fields"] == {"tierdesk_named_contact": "acme:partner"}
    assert install.user(HANK)["user_fields"] == {"tierdesk_site_admin": "acme:SEN-1234"}

    quiet = install.pull()
    assert (quiet.unknown, quiet.removed, quiet.written) == (0, [], False)

    # An admin takes alice off in the helpdesk.
    install.user(ALICE)["user_fields"]["tierdesk_named_contact"] = None
    report = install.pull()

    assert report.written
    assert contacts(install.accounts()["acme"]) == ([], [JOHN], [HANK])
    assert report.removed == [
        "acme: named contact alice@acme.example removed: the helpdesk no longer shows the"
        " flag it showed at the last sync"
    ]
    # The record now says alice is shown nowhere: the next pull has nothing to remove.
    again = install.pull()
    assert (again.removed, again.written, again.unknown) == ([], False, 0)


def test_a_contact_added_in_the_helpdesk_is_taken_and_its_clearing_is_followed(
    tmp_path: Path,
) -> None:
    install = Install(tmp_path)
    install.push()
    install.users.append(zendesk_user(5, "bob@acme.example", org=360001, contact="acme:direct"))
    install.pull()
    assert contacts(install.accounts()["acme"])[0] == [ALICE, "bob@acme.example"]
    # The pull recorded bob as shown: clearing him in the helpdesk removes him again.
    install.user("bob@acme.example")["user_fields"] = {}
    report = install.pull()
    assert contacts(install.accounts()["acme"])[0] == [ALICE]
    assert len(report.removed) == 1


def test_flags_wiped_wholesale_refuse_the_pull(tmp_path: Path) -> None:
    # The field deleted and made again (or another helpdesk behind the same tenant):
    # every flag tierdesk pushed is gone at once. An unattended pull must not follow.
    install = Install(tmp_path)
    install.push()
    for user in install.users:
        user["user_fields"] = {}
    original = (install.mappings / "accounts.json").read_bytes()

    refused = install.pull(max_removals=2)

    assert refused.refused and not refused.written
    assert [p.rule for p in refused.problems] == ["too_many_removals"]
    assert "would remove 3 named contacts and site admins" in str(refused.problems[0])
    assert (install.mappings / "accounts.json").read_bytes() == original
    assert len(refused.removed) == 3  # listed, for the admin to check

    meant = install.pull(max_removals=3)
    assert meant.written
    assert contacts(install.accounts()["acme"]) == ([], [], [])


def test_a_dry_run_reads_the_record_and_writes_none(tmp_path: Path) -> None:
    install = Install(tmp_path)
    install.push()
    install.user(ALICE)["user_fields"] = {}
    dry = install.pull(dry_run=True, dry=True)
    assert dry.removed and not dry.written and not dry.shown_recorded
    record = ShownFlags(flags_path(install.state, "acme-zd"))
    try:
        assert record.get(ALICE, "acme") is not None  # still what the push showed
    finally:
        record.close()


def test_a_person_flagged_for_two_accounts_keeps_each_flag(tmp_path: Path) -> None:
    install = Install(tmp_path)

    def both_sites(accounts: dict[str, Any]) -> None:
        # hank administers acme's Priority site and one of globex's, neither with a SEN.
        del accounts["acme"]["subscriptions"][1]["sen"]
        accounts["globex"]["subscriptions"].append({"tier": "priority", "site_admins": [HANK]})

    install.edit(both_sites)
    install.push()
    assert install.user(HANK)["user_fields"] == {"tierdesk_site_admin": "acme:* globex:*"}
    assert install.pull().removed == []

    # globex's flag is taken off; acme's stays, and so does hank for acme.
    install.user(HANK)["user_fields"]["tierdesk_site_admin"] = "acme:*"
    report = install.pull()
    after = install.accounts()
    assert after["acme"]["subscriptions"][1]["site_admins"] == [HANK]
    assert after["globex"]["subscriptions"][1]["site_admins"] == []
    assert [line.split(":")[0] for line in report.removed] == ["globex"]


def test_a_flag_for_one_account_is_not_taken_by_the_account_of_the_users_organization(
    tmp_path: Path,
) -> None:
    # alice is acme's named contact, but her Zendesk organization is globex's, and
    # globex has a Premier subscription too: her flag names acme, so globex does not
    # take her (which its domains would refuse).
    install = Install(tmp_path)

    def premier_globex(accounts: dict[str, Any]) -> None:
        accounts["globex"]["subscriptions"] = [
            {"tier": "premier", "licenses": 1, "starts": "2026-01-01", "ends": "2027-01-01"}
        ]

    install.edit(premier_globex)
    install.user(ALICE)["organization_id"] = 360002
    install.push()
    assert install.user(ALICE)["user_fields"] == {"tierdesk_named_contact": "acme:direct"}
    report = install.pull()
    assert not report.refused, report.problems
    after = install.accounts()
    assert contacts(after["acme"])[0] == [ALICE]
    assert "named_contacts" not in after["globex"]["subscriptions"][0]


def test_a_flag_naming_an_account_the_mappings_lack_is_left_alone_by_push(
    tmp_path: Path,
) -> None:
    install = Install(tmp_path)
    install.user(ALICE)["user_fields"] = {"tierdesk_named_contact": "newco:direct"}
    install.push()
    assert install.user(ALICE)["user_fields"] == {
        "tierdesk_named_contact": "acme:direct newco:direct"
    }


def test_values_of_an_earlier_tierdesk_are_read_and_rewritten_with_their_account(
    tmp_path: Path,
) -> None:
    # A drop-down's "direct" names no account: it is for the user's organization's.
    install = Install(tmp_path)
    install.user(ALICE)["user_fields"] = {"tierdesk_named_contact": "direct"}
    install.users.append(zendesk_user(5, "bob@acme.example", org=360001, contact="direct"))
    install.pull()
    assert contacts(install.accounts()["acme"])[0] == [ALICE, "bob@acme.example"]
    install.push()
    assert install.user("bob@acme.example")["user_fields"] == {
        "tierdesk_named_contact": "acme:direct"
    }
