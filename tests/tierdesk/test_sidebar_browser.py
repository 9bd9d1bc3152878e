"""The sidebar page in a real headless Chromium against a real tierdesk on 127.0.0.1.

The server is the tierdesk Flask app (werkzeug's ``make_server`` in a thread) on a
SQLite store that the real intake and worker filled. Beside it, on the same origin, a
small dispatcher serves the app's ``assets/`` and a stand-in for Zendesk's framework:
``iframe.html`` is served as it is in the package, except that its ZAF SDK script tag
is replaced by the stand-in's. The stand-in answers ``get('ticket.id')``,
``metadata()`` and ``on()``, and does in ``request()`` what Zendesk's proxy does: the
secure setting placeholder is filled in only when the request says ``secure: true``.
It also keeps a log of every text the countdown showed, with the page's clock at that
moment, which is how one run observes the countdown moving.

Chromium runs with ``--virtual-time-budget``: timers fire and the page's clock
advances in virtual time, so five seconds of countdown take well under a second, and
nothing here depends on how fast the machine is.

Without ``/usr/bin/chromium`` these tests are skipped, unless TIERDESK_REQUIRE_BROWSER=1
(CI), which makes them fail instead.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import pytest
from werkzeug.serving import make_server

from pipeline.worker import Outcome, Worker
from store import Store
from webhooks.app import create_app
from webhooks.live_mappings import LiveMappings
from webhooks.settings import Secret, Settings, Tenant
from webhooks.signatures import sign_zendesk
from webhooks.zendesk import TRIGGER_BODY

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"
SDK_TAG = re.compile(r'<script src="https://static\.zdassets\.com/[^"]+zaf_sdk[^"]*"></script>')
APP_TOKEN = "sidebar-app-token"
TENANT = Tenant(
    id="acme-zd",
    vendor="zendesk",
    webhook_secrets=(Secret("acme-secret"),),
    app_tokens=(Secret(APP_TOKEN),),
)
VIRTUAL_MS = 5000  # the page's clock runs this long: five ticks of the countdown


def chromium(candidates: tuple[str, ...] = ("/usr/bin/chromium",)) -> str:
    """Debian's chromium, else one on PATH; skip without one, or fail when CI requires it."""
    found = next((c for c in candidates if Path(c).is_file()), None) or shutil.which("chromium")
    if found:
        return found
    if os.environ.get("TIERDESK_REQUIRE_BROWSER") == "1":
        pytest.fail(
            "TIERDESK_REQUIRE_BROWSER=1 but there is no chromium (apt-get install chromium)"
        )
    pytest.skip("no /usr/bin/chromium (Debian's chromium package)")


# The stand-in for Zendesk's framework, served in place of the SDK script.
ZAF_STAND_IN = r"""
(function () {
  "use strict";
  var config = JSON.parse(new URLSearchParams(location.search).get("zaf"));
  var requests = document.createElement("ol");
  requests.id = "harness-requests";
  requests.hidden = true;
  var log = document.createElement("ol");
  log.id = "harness-log";
  log.hidden = true;
  document.body.appendChild(requests);
  document.body.appendChild(log);
  // Every text the countdown shows, with the page's clock when it showed it.
  var countdown = document.getElementById("countdown");
  new MutationObserver(function () {
    var item = document.createElement("li");
    item.setAttribute("data-now", String(Date.now()));
    item.textContent = countdown.textContent;
    log.appendChild(item);
  }).observe(countdown, { childList: true, characterData: true, subtree: true });

  function fill(value, secure) {
    // Zendesk's proxy replaces {{setting.NAME}} with a secure setting only for a
    // request marked secure; otherwise the placeholder goes out as it is.
    if (!secure) return value;
    return value.replace(/\{\{setting\.(\w+)\}\}/g, function (_, name) {
      return config.secure[name];
    });
  }

  window.ZAFClient = {
    init: function () {
      return {
        get: function (path) {
          var out = {};
          if (path === "ticket.id") out[path] = config.ticket;
          else if (path === "currentUser.locale") out[path] = config.locale;
          return Promise.resolve(out);
        },
        metadata: function () {
          return Promise.resolve({ appId: 1, installationId: 1, settings: config.settings });
        },
        invoke: function () {
          return Promise.resolve({});
        },
        on: function (name, handler) {
          if (name === "app.registered") setTimeout(function () { handler({}); }, 0);
        },
        request: function (options) {
          var item = document.createElement("li");
          item.textContent = JSON.stringify({
            url: options.url, type: options.type, secure: options.secure, cors: options.cors,
            headers: options.headers
          });
          requests.appendChild(item);
          var headers = {};
          Object.keys(options.headers || {}).forEach(function (name) {
            headers[name] = fill(options.headers[name], options.secure === true);
          });
          return fetch(options.url, { method: options.type || "GET", headers: headers }).then(
            function (response) {
              return response.text().then(function (text) {
                var json = null;
                try { json = JSON.parse(text); } catch (ignored) {}
                if (response.ok) return json;
                throw { status: response.status, statusText: response.statusText,
                        responseText: text, responseJSON: json };
              });
            },
            function () {
              throw { status: 0, statusText: "error", responseText: "" };
            }
          );
        }
      };
    }
  };
})();
"""


@dataclass
class Server:
    base: str
    store: Store
    seen: list[str] = field(default_factory=list)  # every path the browser asked for


def harness(app: Any, seen: list[str]) -> Callable[..., Iterable[bytes]]:
    """The app's assets and the stand-in on /zendesk-app/…, tierdesk on everything else."""
    page = (ASSETS / "iframe.html").read_text("utf-8")
    tags = SDK_TAG.findall(page)
    assert len(tags) == 1, "iframe.html loads the ZAF SDK exactly once"
    page = page.replace(tags[0], '<script src="zaf-stand-in.js"></script>')
    files: dict[str, tuple[bytes, str]] = {
        "iframe.html": (page.encode(), "text/html; charset=utf-8"),
        "zaf-stand-in.js": (ZAF_STAND_IN.encode(), "text/javascript"),
        "sidebar.js": ((ASSETS / "sidebar.js").read_bytes(), "text/javascript"),
        "i18n.js": ((ASSETS / "i18n.js").read_bytes(), "text/javascript"),
        "sidebar.css": ((ASSETS / "sidebar.css").read_bytes(), "text/css"),
    }

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        seen.append(path)
        if path.startswith("/zendesk-app/"):
            found = files.get(path.removeprefix("/zendesk-app/"))
            if found is None:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found"]
            start_response("200 OK", [("Content-Type", found[1])])
            return [found[0]]
        response: Iterable[bytes] = app(environ, start_response)
        return response

    return dispatch


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    chromium()  # skip (or fail) before starting anything
    settings = Settings(
        database=str(tmp_path_factory.mktemp("store") / "tierdesk.sqlite3"),
        tenants={TENANT.id: TENANT},
        coalesce_s=0,
    )
    app = create_app(settings)
    seen: list[str] = []
    http = make_server("127.0.0.1", 0, harness(app, seen), threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{http.server_port}", app.extensions["tierdesk.store"], seen)
    finally:
        http.shutdown()
        thread.join(timeout=10)


def decide_ticket(server: Server, ticket_id: str, created_at: str) -> dict[str, Any]:
    """A trigger body through the real intake, decided by the real worker (dry run);
    returns the decision the worker audited."""
    doc = copy.deepcopy(TRIGGER_BODY)
    doc["event"] = "ticket.created"
    doc["ticket"] = {
        "id": ticket_id,
        "created_at": created_at,
        "updated_at": created_at,
        "requester": "alice@acme.example",
        "organization_id": "360001",
        "priority": "urgent",
        "severity": "1",
        "product": "jira-software",
        "environment": "production",
        "category": "",
    }
    doc["updated_by"] = "alice@acme.example"
    return deliver(server, ticket_id, doc)


def deliver(server: Server, ticket_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    """POST a signed Zendesk webhook to the running tierdesk, let the worker take it;
    the newest decision audited for the ticket."""
    body = json.dumps(doc).encode()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = _post(
        f"{server.base}/webhooks/zendesk/{TENANT.id}",
        body,
        {
            "Content-Type": "application/json",
            "X-Zendesk-Webhook-Signature": sign_zendesk("acme-secret", stamp, body),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        },
    )
    assert status == 202
    settings = Settings(tenants={TENANT.id: TENANT}, coalesce_s=0)
    worker = Worker(server.store, _mappings(), settings, clock=time.time, name="browser-test")
    outcome = worker.run_once()
    assert isinstance(outcome, Outcome) and outcome.state == "done", outcome
    row = server.store.history(ticket_id, TENANT.id)[-1]
    assert row.outcome == "decided" and row.decision, row
    decision: dict[str, Any] = json.loads(row.decision)
    return decision


@cache
def _mappings() -> LiveMappings:
    return LiveMappings(None)


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        status: int = response.status
        return status


# -- the rendered page --------------------------------------------------------------


@dataclass
class Element:
    attrs: dict[str, str | None]
    text: str = ""
    children: list[Element] = field(default_factory=list)


class Dom(HTMLParser):
    """Elements with an id (and <li> items under them) from Chromium's --dump-dom."""

    VOID: ClassVar[frozenset[str]] = frozenset({"meta", "link", "br", "img", "input", "hr"})

    def __init__(self, html: str) -> None:
        super().__init__()
        self.by_id: dict[str, Element] = {}
        self._open: list[tuple[str, Element]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        element = Element(dict(attrs))
        if self._open and tag == "li":
            self._open[-1][1].children.append(element)
        self._open.append((tag, element))
        if element.attrs.get("id"):
            self.by_id[str(element.attrs["id"])] = element

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            name, _ = self._open.pop()
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, element in self._open:
            element.text += data

    def text(self, element_id: str) -> str:
        return " ".join(self.by_id[element_id].text.split())

    def hidden(self, element_id: str) -> bool:
        return "hidden" in self.by_id[element_id].attrs


def render(
    server: Server, ticket: str, token: str, tmp_path: Path, locale: str | None = None
) -> Dom:
    config = {
        "ticket": int(ticket),
        "locale": locale,
        "settings": {"service_url": server.base + "/", "tenant": TENANT.id},
        "secure": {"app_token": token},
    }
    url = f"{server.base}/zendesk-app/iframe.html?zaf={quote(json.dumps(config))}"
    profile = tmp_path / f"chromium-{ticket}"
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",  # containers give /dev/shm 64 MB
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={VIRTUAL_MS}",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "<main" in done.stdout, done.stderr[-2000:]
    return Dom(done.stdout)


DURATION = re.compile(r"^(?:(\d+)d )?(?:(\d+)h )?(?:(\d+)m )?(\d+)s$")


def seconds(text: str) -> int:
    """'1d 02h 03m 04s' → 93784 (the page's own format, read back)."""
    match = DURATION.match(text)
    assert match, f"not a duration: {text!r}"
    days, hours, minutes, secs = (int(g) if g else 0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + secs


def countdown_log(dom: Dom) -> list[tuple[int, str]]:
    return [
        (int(str(item.attrs["data-now"])), " ".join(item.text.split()))
        for item in dom.by_id["harness-log"].children
    ]


def instant_ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def requests_made(dom: Dom) -> list[dict[str, Any]]:
    return [json.loads(item.text) for item in dom.by_id["harness-requests"].children]


# -- the tests ----------------------------------------------------------------------


def test_without_chromium_skips_unless_ci_requires_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    missing = (str(tmp_path / "chromium"),)
    monkeypatch.delenv("TIERDESK_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception):
        chromium(missing)
    monkeypatch.setenv("TIERDESK_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium"):
        chromium(missing)


def test_live_countdown_to_the_first_response(server: Server, tmp_path: Path) -> None:
    created = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    decision = decide_ticket(server, "501", created)
    assert decision["first_response_due"] and decision["first_response"] is None
    due = instant_ms(decision["first_response_due"])
    dom = render(server, "501", APP_TOKEN, tmp_path)

    assert dom.hidden("error") and not dom.hidden("decision"), dom.text("error")
    assert "Premier" in dom.text("tier")
    assert dom.text("named-contact") == "valid named contact"
    assert dom.text("coverage") == "covered"
    reasons = [" ".join(li.text.split()) for li in dom.by_id["reasons"].children]
    assert reasons == [" ".join(line.split()) for line in decision["explanation"]]
    assert dom.by_id["due"].attrs["datetime"] == decision["first_response_due"]
    assert dom.by_id["countdown"].attrs.get("data-state") == "due"

    # The countdown as the page showed it, tick after tick: each text agrees with the
    # due time at the page's clock of that moment, and the time left goes down.
    log = countdown_log(dom)
    assert len(log) >= 4, log
    left = []
    for now_ms, text in log:
        assert text.startswith("due in "), text
        shown = seconds(text.removeprefix("due in "))
        assert abs(shown - (due - now_ms) // 1000) <= 1, (text, due - now_ms)
        left.append(shown)
    # Never up; two ticks may fall in one second when the machine is busy.
    assert all(b <= a for a, b in itertools.pairwise(left)), left
    assert left[0] - left[-1] >= 3, left  # the page's clock ran on for several seconds
    assert dom.text("countdown") == log[-1][1]

    (call,) = requests_made(dom)
    assert call == {
        "url": f"{server.base}/api/tickets/acme-zd/501/decision",
        "type": "GET",
        "secure": True,
        "cors": False,
        "headers": {"Authorization": "Bearer {{setting.app_token}}"},
    }
    # Nothing else was fetched: the page, its script and style, the stand-in, the API.
    fetched = {p for p in server.seen if not p.startswith("/webhooks/")}
    assert fetched <= {
        "/zendesk-app/iframe.html",
        "/zendesk-app/sidebar.js",
        "/zendesk-app/i18n.js",
        "/zendesk-app/sidebar.css",
        "/zendesk-app/zaf-stand-in.js",
        "/api/tickets/acme-zd/501/decision",
        "/favicon.ico",
    }, fetched


def test_overdue_after_the_due_instant(server: Server, tmp_path: Path) -> None:
    decision = decide_ticket(server, "502", "2026-03-06T16:30:00Z")
    assert decision["first_response_due"] == "2026-03-06T17:00:00Z"
    due = instant_ms(decision["first_response_due"])
    dom = render(server, "502", APP_TOKEN, tmp_path)

    assert dom.by_id["countdown"].attrs.get("data-state") == "overdue"
    log = countdown_log(dom)
    assert len(log) >= 4, log
    late = []
    for now_ms, text in log:
        assert text.startswith("overdue by "), text
        shown = seconds(text.removeprefix("overdue by "))
        assert abs(shown - (now_ms - due) // 1000) <= 1, (text, now_ms - due)
        late.append(shown)
    # Never down; two ticks may fall in one second when the machine is busy.
    assert all(b >= a for a, b in itertools.pairwise(late)), late
    assert late[-1] - late[0] >= 3, late  # the page's clock ran on for several seconds


def test_a_refused_token_is_said_plainly(server: Server, tmp_path: Path) -> None:
    decide_ticket(server, "503", "2026-03-06T16:30:00Z")
    dom = render(server, "503", "not-the-app-token", tmp_path)

    assert not dom.hidden("error") and dom.hidden("decision")
    assert "refused the app token (401)" in dom.text("error")
    assert "TIERDESK_TENANT_<ID>_APP_TOKEN" in dom.text("error")
    assert dom.text("tier") == ""  # nothing of the decision leaked into the page


def test_a_ticket_not_decided_yet(server: Server, tmp_path: Path) -> None:
    dom = render(server, "504", APP_TOKEN, tmp_path)

    assert dom.hidden("error") and dom.hidden("decision")
    assert dom.text("status") == "tierdesk has not decided this ticket yet."


def test_an_answered_ticket_shows_its_first_response(server: Server, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    created = (now - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    decide_ticket(server, "505", created)
    # An agent's public reply, as Zendesk's event webhook reports it.
    reply = {
        "type": "zen:event-type:ticket.comment_added",
        "id": "evt-reply-505",
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": {"id": "505", "created_at": created, "actor_id": "9001"},
        "event": {
            "comment": {
                "id": "c-505",
                "body": "We are on it.",
                "is_public": True,
                "author": {"id": "9001", "is_staff": True, "name": "Agent"},
            }
        },
    }
    decision = deliver(server, "505", reply)
    assert decision["first_response"] and decision["first_response"]["met"] is True
    dom = render(server, "505", APP_TOKEN, tmp_path)

    assert dom.by_id["countdown"].attrs.get("data-state") == "met"
    assert dom.text("countdown").startswith("first response met at ")
    # The clock stopped: the countdown showed one text and never ticked.
    assert len({text for _, text in countdown_log(dom)}) == 1


JA_DURATION = re.compile(r"^(?:(\d+) ?日 )?(?:(\d+) ?時間 )?(?:(\d+) ?分 )?(\d+) ?秒$")


def test_a_japanese_agent_reads_the_sidebar_in_japanese(server: Server, tmp_path: Path) -> None:
    """ZAF says the agent's locale is ja: every label, value and countdown is the
    Japanese of translations/ja.json, durations in Japanese units."""
    strings = json.loads((ROOT / "translations" / "ja.json").read_text("utf-8"))["sidebar"]
    created = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    decision = decide_ticket(server, "511", created)
    due = instant_ms(decision["first_response_due"])
    dom = render(server, "511", APP_TOKEN, tmp_path, locale="ja")

    assert dom.hidden("error") and not dom.hidden("decision"), dom.text("error")
    assert dom.text("named-contact") == strings["contact_valid"] == "有効な登録コンタクト"
    assert dom.text("coverage") == strings["covered"] == "対象"
    assert dom.text("due").startswith("期限 ")
    # Dates as Intl words them for ja: 2026/03/06 17:00 (year/month/day).
    assert re.search(r"\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}", dom.text("due")), dom.text("due")
    assert dom.text("meta").startswith("判定日時 ")
    log = countdown_log(dom)
    assert len(log) >= 4, log
    for now_ms, text in log:
        assert text.startswith("期限まで "), text
        match = JA_DURATION.match(text.removeprefix("期限まで "))
        assert match, text
        d, h, m, s = (int(g) if g else 0 for g in match.groups())
        shown = ((d * 24 + h) * 60 + m) * 60 + s
        assert abs(shown - (due - now_ms) // 1000) <= 1, (text, due - now_ms)
    # Every label of the page is its Japanese, and no English label is left.
    page = (ASSETS / "iframe.html").read_text("utf-8")
    keys = re.findall(r'data-i18n="(\w+)"', page)
    assert {"tier", "severity", "first_response", "named_contact", "coverage", "why"} <= set(keys)
    page_text = dom.by_id["decision"].text
    for key in keys:
        if key != "loading":  # hidden once the decision is shown
            assert strings[key] in page_text, key
    english = r"\b(Tier|Severity|First response|Named contact|Coverage|Why)\b"
    assert not re.search(english, page_text)
    assert dom.by_id["tier"].text.startswith("Premier")  # the mappings' name, as written


def test_the_sidebar_speaks_english_to_an_agent_of_another_locale(
    server: Server, tmp_path: Path
) -> None:
    decide_ticket(server, "512", "2026-03-06T16:30:00Z")
    dom = render(server, "512", APP_TOKEN, tmp_path, locale="de-DE")

    assert dom.text("named-contact") == "valid named contact"
    assert dom.text("countdown").startswith("overdue by ")
