"""The words of an explanation and of the internal note, per locale: message id → text.

In: a locale (`LOCALES`: ``en``, ``ja``) and a message id or a value to word. Out: the
text. An unknown locale is refused with `ValueError`; a message id missing from a
locale is a `KeyError` (a test checks every English id has its Japanese).

English is what tierdesk has always written: the texts below are the templates the
rules used before they were catalogued, and tests pin them. Japanese uses the terms of
Atlassian's Japanese Premier Support page (seeds/ 002) wherever it names them:
重大度 (severity), 登録コンタクト (named contact), 初回応答 (first response), 対象
(coverage), 祝日 (holidays), エスカレーション, and the severity levels' own names
(本番アプリケーションの停止 …). Names the mappings give (teams, products, calendars) are
shown as written, except those the glossary below knows from the bundled mappings.
Pure data and string work: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from entitlements.calendars import Boundary, Calendar
    from entitlements.contacts import ContactCheck

DEFAULT_LOCALE = "en"
LOCALES = ("en", "ja")

_EN: dict[str, str] = {
    # -- decide(): severity, account, tier, coverage, calendar, target, team --
    "severity_from_ticket": "severity L{} from the ticket's severity {!r}",
    "severity_from_priority": "severity L{} from helpdesk priority {!r}",
    "severity_default": "severity L{}: the ticket gives neither severity nor priority",
    "account_matched": "account {} ({}) matched by {}",
    "unknown_account": "no account matches {}; default tier {}",
    "looked_for_account": "account {!r}",
    "looked_for_organization": "organization {}:{}",
    "looked_for_requester": "requester {}",
    "looked_for_nothing": "nothing (no account, organization or requester)",
    "hours_used_up": "{:.2f} h left: used up since the ticket was opened, which keeps its tier",
    "hours_low": "{:.2f} h left, under {:.0%} of the last bundle ({:g} h)",
    "tier_entitles": "tier {}: subscription {} entitles the ticket{}",
    "contact_suffix": "; {}",
    "not_tier": "not {} ({}): {}",
    "fallback_tier": "tier {}: the account's fallback tier",
    "contract_dates": "contract {} to {}, ticket opened {} ({})",
    "not_covered_item": "{} is not covered",
    "needs_addon": "{} needs the {} add-on",
    "no_hours_left": "no hours left ({:.2f} h)",
    "tier_not_covering": "{} does not cover {}: no SLA",
    "calendar_rule": "calendar {}: {} ({}); {}",
    "calendar_default": "calendar {}: the tier's default ({}); {}",
    "target": "target L{} = {} on {} from {}: first response due {} ({})",
    "team_routed": "team {}: {} ({}); {} is closed now",
    "team_default": "team {}: the {} team",
    # -- followed(): where the first-response clock stands --
    "at_risk": "at risk since {}: first response due {}",
    "breached": "breached: no first response by {}",
    "escalated": "escalated to {} after {} breach step(s)",
    "first_response": "{} (at {})",
    # -- the internal note (connector/render.py) --
    "note_head_due": "tierdesk: {}, L{} ({}), first response due {}",
    "note_head_no_sla": "tierdesk: {}, L{} ({}), no SLA (not covered)",
    "note_contact": "Named contact: {}",
    "note_contact_reason": "Named contact: {} ({})",
    "note_sla": "SLA: {}",
    "note_escalated": ", escalated to {}",
    "note_response": "; {}",
    "note_redecided": "Re-decided from the ticket's creation: {}",
    "note_change": "{} {} → {}",
    "note_change_tier": "tier",
    "note_change_severity": "severity",
    "note_change_due": "first response due",
    "note_reasons": "Reasons: {}",
    "note_list_sep": ", ",
    "note_changes_sep": "; ",
    "note_none": "None",
    # The requester of a Jira Cloud ticket whose webhook hid the email (pipeline/requesters.py).
    "requester_found": "requester {}: Jira account {}, {}",
    "requester_unresolved": (
        "requester unresolved: Jira account {} has no email tierdesk can read ({})"
    ),
    "lookup_no_credentials": "no API credentials to look the Jira account up",
    "lookup_no_account": "Jira knows no such account",
    "lookup_unauthorized": (
        "the API user may not read users (HTTP {}): grant it the"
        " 'Browse users and groups' global permission"
    ),
    "lookup_refused": "the user lookup was refused ({})",
    "lookup_hidden": "the user's profile visibility hides the email address",
    "lookup_found": "email looked up by account id",
}

_JA: dict[str, str] = {
    "severity_from_ticket": "重大度 L{}: チケットの重大度 {!r} から",
    "severity_from_priority": "重大度 L{}: ヘルプデスクの優先度 {!r} から",
    "severity_default": "重大度 L{}: チケットに重大度も優先度もありません",
    "account_matched": "アカウント {} ({}): {} で一致",
    "unknown_account": "{} に一致するアカウントはありません。既定のティア {}",
    "looked_for_account": "アカウント {!r}",
    "looked_for_organization": "組織 {}:{}",
    "looked_for_requester": "依頼者 {}",
    "looked_for_nothing": "なし (アカウント、組織、依頼者のいずれもありません)",
    "hours_used_up": (
        "残り {:.2f} 時間: チケット作成後に使い切りましたが、チケットはティアを維持します"
    ),
    "hours_low": "残り {0:.2f} 時間: 直近のバンドル ({2:g} 時間) の {1:.0%} 未満",
    "tier_entitles": "ティア {}: 契約 {} によりこのチケットはサポート対象です{}",
    "contact_suffix": "。{}",
    "not_tier": "{} ではありません ({}): {}",
    "fallback_tier": "ティア {}: アカウントのフォールバック ティア",
    "contract_dates": "契約期間 {} ～ {}、チケット作成日 {} ({})",
    "not_covered_item": "{} は対象外です",
    "needs_addon": "{} には {} アドオンが必要です",
    "no_hours_left": "残り時間がありません ({:.2f} 時間)",
    "tier_not_covering": "{} は {} を対象としていません: SLA なし",
    "calendar_rule": "カレンダー {}: {} ({}); {}",
    "calendar_default": "カレンダー {}: ティアの既定 ({}); {}",
    "target": "目標 L{} = {} (カレンダー {}、{} から): 初回応答期限 {} ({})",
    "team_routed": "チーム {}: {} ({}); {} は現在時間外です",
    "team_default": "チーム {}: {} のチーム",
    "at_risk": "{} から期限超過のおそれ: 初回応答期限 {}",
    "breached": "期限超過: {} までに初回応答がありません",
    "escalated": "{} にエスカレーション (期限超過後 {} 段階)",
    "first_response": "{} ({})",
    "note_head_due": "tierdesk: {}、L{} ({})、初回応答期限 {}",
    "note_head_no_sla": "tierdesk: {}、L{} ({})、SLA なし (対象外)",
    "note_contact": "登録コンタクト: {}",
    "note_contact_reason": "登録コンタクト: {} ({})",
    "note_sla": "SLA: {}",
    "note_escalated": "、{} にエスカレーション",
    "note_response": "。{}",
    "note_redecided": "チケット作成時点から再判定しました: {}",
    "note_change": "{} {} → {}",
    "note_change_tier": "ティア",
    "note_change_severity": "重大度",
    "note_change_due": "初回応答期限",
    "note_reasons": "理由: {}",
    "note_list_sep": "、",
    "note_changes_sep": "; ",
    "note_none": "なし",
    "requester_found": "依頼者 {}: Jira アカウント {}、{}",
    "requester_unresolved": (
        "依頼者を特定できません: Jira アカウント {} のメールアドレスを tierdesk は読めません ({})"
    ),
    "lookup_no_credentials": "Jira アカウントを照会する API 認証情報がありません",
    "lookup_no_account": "Jira にそのアカウントはありません",
    "lookup_unauthorized": (
        "API ユーザーはユーザー情報を読めません (HTTP {}):"
        " グローバル権限「ユーザーとグループの参照」を付与してください"
    ),
    "lookup_refused": "ユーザーの照会が拒否されました ({})",
    "lookup_hidden": "ユーザーのプロフィールの公開設定によりメールアドレスが表示されません",
    "lookup_found": "アカウント ID からメールアドレスを照会しました",
}

_CATALOGUES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"en": MappingProxyType(_EN), "ja": MappingProxyType(_JA)}
)


def messages(locale: str) -> Mapping[str, str]:
    """Message id → text for ``locale``."""
    try:
        return _CATALOGUES[locale]
    except KeyError:
        raise ValueError(f"unknown locale {locale!r} (known: {', '.join(LOCALES)})") from None


def check_locale(locale: str) -> str:
    messages(locale)
    return locale


# -- words for values -------------------------------------------------------------

# What the Japanese Premier page (seeds/ 002) calls the names the bundled mappings use
# (tiers.json): the offerings, the severity levels, and the mappings' own reasons.
_GLOSSARY_JA: dict[str, str] = {
    "Premier": "プレミア サポート",
    "Priority": "プライオリティ サポート",
    "Select": "セレクト サポート",
    "Standard": "標準サポート",
    "Production Application Down": "本番アプリケーションの停止",
    "Serious Degradation": "深刻な機能障害",
    "Moderate Impact": "中程度の機能不具合",
    "Limited Impact": "限定的な影響のある不具合",
    "free and open-source products get no weekend coverage": (
        "無料またはオープン ソース製品には週末のサポートは提供されません"
    ),
    "only L1 is served on weekends for Bitbucket, Bamboo, Crucible and Fisheye": (
        "Bitbucket、Bamboo、Crucible、Fisheye の週末のサポートは L1 に限定されます"
    ),
    "the Select team handles Premier tickets during the global weekend": (
        "週末はプレミア サポートのリクエストをセレクト サポート チームが担当します"
    ),
    "the Select team handles Priority tickets during the global weekend": (
        "週末はプライオリティ サポートのリクエストをセレクト サポート チームが担当します"
    ),
    "production L1 issues are handled 24/7": "本番環境の L1 の問題は 24 時間 365 日対応します",
    "production L2 issues are handled 24 hours a day on weekdays": (
        "本番環境の L2 の問題は平日 24 時間対応します"
    ),
}

_WEEKDAYS_JA = ("月", "火", "水", "木", "金", "土", "日")

# The first-response clock's stages (entitlements/sla.py) as the note names them.
_STAGES_JA = {
    "on_track": "期限内",
    "at_risk": "期限超過のおそれ",
    "breached": "期限超過",
    "met": "初回応答の目標を達成",
    "missed": "初回応答の目標を未達成",
}
_CONTACT_STATUS_JA = {"valid": "有効", "invalid": "無効", "not_required": "不要"}


def term(name: str, locale: str) -> str:
    if locale == "ja":
        return _GLOSSARY_JA.get(name, name)
    return name


def stage(name: str, locale: str) -> str:
    if locale == "ja":
        return _STAGES_JA.get(name, name)
    return name.replace("_", " ")


def contact_status(status: str, locale: str) -> str:
    return _CONTACT_STATUS_JA.get(status, status) if locale == "ja" else status


def wall_clock(local: datetime, zone_name: str, locale: str) -> str:
    if locale == "ja":
        return f"{local:%Y-%m-%d} ({_WEEKDAYS_JA[local.weekday()]}) {local:%H:%M} {zone_name}"
    return f"{local:%a %Y-%m-%d %H:%M} {zone_name}"


def target(minutes: int, business_days: Fraction, locale: str) -> str:
    """A response target in the page's words: "30 分", "2 時間", "1 営業日"."""
    if business_days:
        return f"{business_days} 営業日"
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours} 時間 {rest} 分"
    return f"{hours} 時間" if hours else f"{rest} 分"


def business_time(span: timedelta, locale: str) -> str:
    minutes = round(span.total_seconds() / 60)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} 時間 {minutes} 分"
    return f"{hours} 時間" if hours else f"{minutes} 分"


def first_response(met: bool, margin: timedelta, locale: str) -> str:
    time = business_time(margin, locale)
    if met:
        return f"初回応答の目標を達成 (営業時間で {time} の余裕)"
    return f"初回応答の目標を未達成 (営業時間で {time} の超過)"


def calendar(cal: Calendar, locale: str) -> str:
    """A calendar's covered time: its spans and holidays, worded for ``locale``.
    Calendars without weekly spans (24x7) have no spans to list."""
    spans = getattr(cal, "spans", None)
    if spans is None:
        return "常時対応 (24 時間 365 日)"
    text = "; ".join(f"{_boundary(s.opens)} ～ {_boundary(s.closes)}" for s in spans)
    holidays = getattr(cal, "holidays", None)
    if holidays:
        parts = []
        if holidays.country:
            parts.append(
                holidays.country + (f"-{holidays.subdivision}" if holidays.subdivision else "")
            )
        if holidays.dates:
            parts.append(f"指定日 {len(holidays.dates)} 日")
        text += f"; 祝日は休業 ({'、'.join(parts) or 'なし'})"
    return text


def _boundary(boundary: Boundary) -> str:
    hours, minutes = divmod(boundary.minute, 60)
    return f"{_WEEKDAYS_JA[boundary.weekday]} {hours:02d}:{minutes:02d} {boundary.zone.key}"


# `Match.how` (entitlements/rulebook.py) in its three forms.
_HOW = (
    (re.compile(r"account id (.+)"), "アカウント ID {0}"),
    (re.compile(r"organization (.+)"), "組織 {0}"),
    (re.compile(r"email domain (\S+) \(under (.+)\)"), "メール ドメイン {0} ({1} の配下)"),
    (re.compile(r"email domain (.+)"), "メール ドメイン {0}"),
)


def matched_by(how: str, locale: str) -> str:
    if locale != "ja":
        return how
    for pattern, text in _HOW:
        found = pattern.fullmatch(how)
        if found:
            return text.format(*found.groups())
    return how


def contact(
    check: ContactCheck, requester: str | None, site: str | None, kind: str, locale: str
) -> str:
    """What a named-contact check found (its English is `ContactCheck.detail`)."""
    if not requester:
        return "チケットに依頼者がありません"
    where = site or "サイト"
    if kind == "site_admins":
        if check.status == "valid":
            return f"{requester} は {where} の管理者です"
        return f"{requester} は {where} の管理者ではありません"
    if check.status == "valid":
        return f"{requester} は登録コンタクトです"
    return {
        "shared_mailbox": f"{requester} は共有メール アドレスです",
        "partner_format": (
            f"{requester} はパートナー自身のドメインから送信しています。"
            "パートナーの登録コンタクトは、お客様のドメインの "
            "PartnerEmployee_PartnerCompany 形式のアドレスを使用する必要があります"
        ),
        "foreign_domain": f"{requester} はアカウントのドメインのアドレスではありません",
    }.get(check.reason or "", f"{requester} は登録コンタクトではありません")
