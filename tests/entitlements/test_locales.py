"""Explanations and internal notes per locale: English unchanged, Japanese complete.

English is pinned line for line (the texts tierdesk wrote before its messages were
catalogued); Japanese is checked for every message id, and every line of many
decisions is checked to hold no English word of the catalogue.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import string
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from connector.render import note
from entitlements import catalogue
from entitlements.calendars import AlwaysOpen
from entitlements.contacts import ContactCheck
from entitlements.decide import Decision, decide, followed
from entitlements.explanation import LocalTime, Msg, TargetText
from entitlements.rulebook import Rulebook
from entitlements.sla import FirstResponse, status_at
from entitlements.tickets import parse_ticket
from entitlements.tiers import Target
from mappings import BUNDLED, load_mappings
from tests.entitlements.test_decide import ACCOUNTS, FRIDAY, SATURDAY

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def rulebook(tmp_path_factory: pytest.TempPathFactory) -> Rulebook:
    directory: Path = tmp_path_factory.mktemp("mappings")
    for name in ("tiers.json", "calendars.json"):
        shutil.copy(BUNDLED / name, directory / name)
    (directory / "accounts.json").write_text(json.dumps(ACCOUNTS))
    return load_mappings(directory)


def ask(rulebook: Rulebook, now: str = SATURDAY, **fields: Any) -> Decision:
    ticket = {"id": "T-1", "created_at": FRIDAY, **fields}
    return decide(parse_ticket(ticket), rulebook, datetime.fromisoformat(now))


def _fields(template: str) -> list[str]:
    return [
        f"{name}:{spec}"
        for _, name, spec, _ in string.Formatter().parse(template)
        if name is not None
    ]


def test_every_message_has_its_japanese_with_the_same_values() -> None:
    english, japanese = catalogue.messages("en"), catalogue.messages("ja")
    assert set(japanese) == set(english)
    for key, text in english.items():
        # Each value English shows, Japanese shows too (in its own order, same format).
        wanted = _fields(text)
        got = _fields(japanese[key])
        if any(f.split(":")[0] for f in got):  # numbered: {2:g}
            got = [f"{f.split(':', 1)[1]}" for f in sorted(got)]
            wanted = [f.split(":", 1)[1] for f in wanted]
        assert sorted(got) == sorted(wanted), key
        assert japanese[key] != text or not re.search("[a-z]{3}", text), key


def test_an_unknown_locale_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown locale 'fr'"):
        catalogue.messages("fr")
    with pytest.raises(ValueError, match="known: en, ja"):
        catalogue.check_locale("de")


def test_english_lines_are_the_ones_tierdesk_always_wrote(rulebook: Rulebook) -> None:
    decision = ask(rulebook, requester="bob@solo.example", severity=1)
    assert (
        decision.explanation
        == decision.explained("en")
        == (
            "severity L1 from the ticket's severity 1",
            "account solo (Solo Premier) matched by email domain solo.example",
            "[not_listed] not Premier (accounts.json#/accounts/0/subscriptions/0): "
            "bob@solo.example is not a named contact",
            "tier Select: the account's fallback tier",
            "calendar business-hours: the tier's default (tiers.json#/tiers/select); "
            + "; ".join(
                f"{d} 09:00 Europe/London to {d} 17:00 Europe/London"
                for d in ("Mon", "Tue", "Wed", "Thu", "Fri")
            )
            + "; closed on holidays (GB-ENG)",
            "target L1 = 2 h on business-hours from 2026-03-06T16:30:00Z: "
            "first response due 2026-03-09T10:30:00Z (Mon 2026-03-09 10:30 Europe/London)",
            "team select: the Select team",
        )
    )
    m = decision.milestones
    assert m is not None
    late = followed(decision, status_at(m, m.due + timedelta(days=1)), None, "tierdesk_")
    assert late.explanation[-1] == "breached: no first response by 2026-03-09T10:30:00Z"
    answered = followed(
        decision,
        status_at(m, m.due, m.due),
        FirstResponse(m.due, True, timedelta(minutes=65)),
        "tierdesk_",
    )
    assert answered.explanation[-1] == (
        "first response target met with 1h 5m of business time (at 2026-03-09T10:30:00Z)"
    )
    assert note(late, {"tier": "premier", "severity": 2, "first_response_due": None}) == "\n".join(
        [
            "tierdesk: Select, L1 (L1), first response due 2026-03-09T10:30:00Z",
            "Named contact: invalid (not_listed)",
            "SLA: breached",
            "Re-decided from the ticket's creation: tier premier → select; severity L2 → L1;"
            " first response due None → 2026-03-09T10:30:00Z",
            "Reasons: not_listed",
            "",
            *late.explanation,
        ]
    )


def test_the_japanese_premier_pages_terms(rulebook: Rulebook) -> None:
    decision = ask(rulebook, requester="dana@solo.example", severity=1)
    m = decision.milestones
    assert m is not None
    late = followed(decision, status_at(m, m.due + timedelta(minutes=1)), None, "tierdesk_")
    text = note(late, None, "ja")
    lines = text.splitlines()
    assert lines[0] == (
        "tierdesk: プレミア サポート、L1 (本番アプリケーションの停止)、"
        "初回応答期限 2026-03-06T17:00:00Z"
    )
    assert lines[1] == "登録コンタクト: 有効"
    assert lines[2] == "SLA: 期限超過"
    assert "重大度 L1: チケットの重大度 1 から" in lines
    assert any("dana@solo.example は登録コンタクトです" in line for line in lines)
    assert any(line.startswith("目標 L1 = 30 分") for line in lines)
    assert lines[-1] == "期限超過: 2026-03-06T17:00:00Z までに初回応答がありません"


# Words the English catalogue uses; none may be left in a Japanese line. Names from the
# mappings (ids, calendars, e-mail addresses, JSON pointers, zones) are data, and are
# taken out before looking.
_ENGLISH_WORDS = {
    w.casefold()
    for text in catalogue.messages("en").values()
    for w in re.findall(r"[A-Za-z]{3,}", text)
} - {"tierdesk", "sla"}
_DATA = re.compile(
    r"\S+@\S+|\S+\.json#\S*|[A-Za-z_]+/[A-Za-z_/]+|\b[\w-]*\d[\w-]*\b|\b\w+-\w+(?:-\w+)*\b"
    r"|\b[a-z]+(?:_[a-z0-9]+)+\b|'[^']*'|[\w-]+ → [\w-]+"
    r"|\b[\w-]+(?:\.[\w-]+)+\b"
)


def english_left(line: str, data: set[str]) -> set[str]:
    for name in sorted(data, key=len, reverse=True):
        line = line.replace(name, " ")
    line = _DATA.sub(" ", line)
    return {w for w in re.findall(r"[A-Za-z]{3,}", line) if w.casefold() in _ENGLISH_WORDS}


def test_every_japanese_line_is_japanese(rulebook: Rulebook) -> None:
    data = {a["name"] for a in ACCOUNTS["accounts"]} | set(rulebook.products.values())
    data |= set(rulebook.categories.values()) | {"Pay-as-you-go hours", "24/7 SaaS"}
    data |= {f"アカウント {a['id']} " for a in ACCOUNTS["accounts"]}
    data |= {"Technical Support Engineer", "Director of Support", "Head of Customer Experience"}
    requesters = [
        "dana@solo.example",
        "bob@solo.example",
        "support@solo.example",
        "JohnSmith_PartnerCompanyA@solo.example",
        "kim@du.example",
        "hank@site.example",
        "joe@site.example",
        "a@hours.example",
        "hank@acme.example",
        "y@globex.example",
        None,
    ]
    seen: set[str] = set()
    combos = itertools.product(
        requesters, [1, 3, None], [None, "bamboo", "trello"], [None, "administration"]
    )
    for requester, severity, product, category in combos:
        fields: dict[str, Any] = {"requester": requester, "severity": severity}
        fields |= {"product": product, "category": category}
        decision = ask(rulebook, **{k: v for k, v in fields.items() if v is not None})
        decided = [decision]
        m = decision.milestones
        if m is not None:
            for now in (m.at_risk, m.due + timedelta(days=9)):
                decided.append(followed(decision, status_at(m, now), None, "tierdesk_"))
            for met in (True, False):
                response = FirstResponse(m.due, met, timedelta(minutes=90))
                decided.append(followed(decision, status_at(m, m.due, m.due), response, ""))
        for d in decided:
            for text in note(d, {"tier": "x", "severity": 4}, "ja").splitlines():
                if not text:
                    continue
                assert JAPANESE.search(text), text
                assert not english_left(text, data), (text, english_left(text, data))
            seen |= {line.key for line in d.because}
    # The decisions above go through most of the lines a decision writes.
    assert len(seen) >= 12, seen


def test_values_worded_in_japanese() -> None:
    friday = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)
    assert f"{LocalTime(friday, 'Asia/Tokyo')}" == "Sat 2026-03-07 02:00 Asia/Tokyo"
    assert LocalTime(friday, "Asia/Tokyo").text("ja") == "2026-03-07 (土) 02:00 Asia/Tokyo"
    for target, ja in [
        (Target(30), "30 分"),
        (Target(120), "2 時間"),
        (Target(90), "1 時間 30 分"),
        (Target(0, Fraction(1)), "1 営業日"),
        (Target(0, Fraction(1, 2)), "1/2 営業日"),
    ]:
        assert TargetText(target).text("ja") == ja
        assert f"{TargetText(target)}" == str(target)
    assert catalogue.calendar(AlwaysOpen(), "ja") == "常時対応 (24 時間 365 日)"
    nobody = ContactCheck("invalid", "not_listed", "the ticket names no requester")
    assert catalogue.contact(nobody, None, None, "named_contacts", "ja") == (
        "チケットに依頼者がありません"
    )
    shared = ContactCheck("invalid", "shared_mailbox", "x")
    assert catalogue.contact(shared, "it@a.example", None, "named_contacts", "ja") == (
        "it@a.example は共有メール アドレスです"
    )
    assert catalogue.matched_by("organization zendesk:360001", "ja") == "組織 zendesk:360001"
    assert catalogue.matched_by("email domain a.b.example (under b.example)", "ja") == (
        "メール ドメイン a.b.example (b.example の配下)"
    )
    assert Msg("no_hours_left", (-1.5,)).text("ja") == "残り時間がありません (-1.50 時間)"
    assert Msg("hours_low", (2.0, 0.2, 20.0)).text("ja") == (
        "残り 2.00 時間: 直近のバンドル (20 時間) の 20% 未満"
    )
    assert Msg("hours_low", (2.0, 0.2, 20.0)).text("en") == (
        "2.00 h left, under 20% of the last bundle (20 h)"
    )
