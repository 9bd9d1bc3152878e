"""A tenant with ``locale = "ja"``: its internal notes and audited explanations are
Japanese end to end, through the real intake, worker and Zendesk connector (the
vendor answered by `responses` with recorded bodies), while an English tenant's stay
as they were."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import responses

from pipeline.connectors import Connectors
from pipeline.worker import Worker
from webhooks.app import create_app
from webhooks.live_mappings import LiveMappings
from webhooks.settings import Secret, Settings

from .test_end_to_end import (
    WORKER_NOW,
    ZD,
    Rig,
    answer_zendesk,
    expected_decision,
    post_zendesk,
    run,
    trigger,
    zendesk_put,
)

JA = replace(ZD, locale="ja", app_tokens=(Secret("ja-app-token"),))


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    settings = Settings(database=str(tmp_path / "tierdesk.sqlite3"), tenants={JA.id: JA})
    app = create_app(settings)
    mappings = LiveMappings(None)
    worker = Worker(
        app.extensions["tierdesk.store"],
        mappings,
        settings,
        writeback=Connectors(mappings),
        clock=WORKER_NOW.timestamp,
        name="w1",
    )
    return Rig(app.test_client(), app.extensions["tierdesk.store"], worker)


def test_a_japanese_tenants_note_is_japanese_end_to_end(rig: Rig) -> None:
    doc = trigger("4343", "alice@acme.example")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        answer_zendesk(rsps, "4343")
        post_zendesk(rig.client, doc, "zd-ja-1")
        run(rig)
        put = zendesk_put(rsps)

    body = put["comment"]["body"]
    assert put["comment"]["public"] is False
    organization = {"vendor": "zendesk", "id": 360001}
    expected = expected_decision({**doc["ticket"], "organization": organization, "severity": 1})
    assert body.splitlines()[:3] == [
        "tierdesk: プレミア サポート、L1 (本番アプリケーションの停止)、"
        "初回応答期限 2026-03-06T17:00:00Z",
        "登録コンタクト: 有効",
        "SLA: 期限超過",
    ]
    assert body.endswith("\n\n" + "\n".join(expected.explained("ja")))
    assert "alice@acme.example は登録コンタクトです" in body
    assert not any(line in body for line in expected.explanation)  # no English line
    # The audit (and so the sidebar's "why") keeps the tenant's language too.
    row = rig.store.history("4343", JA.id)[-1]
    audited = json.loads(row.decision or "{}")
    assert audited["explanation"] == list(expected.explained("ja"))
    answer = rig.client.get(
        f"/api/tickets/{JA.id}/4343/decision", headers={"Authorization": "Bearer ja-app-token"}
    )
    assert answer.status_code == 200, answer.json
    assert answer.json and answer.json["because"] == audited["explanation"]
