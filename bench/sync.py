"""`sync pull` at scale: 100,000 organizations and 300,000 users from a fake Zendesk.

    .venv/bin/python bench/sync.py [--small] [--orgs N] [--users-per-org K]
                                   [--vendor-rate R] [--tierdesk-rate T]

The fake Zendesk is a small threaded ``http.server`` on 127.0.0.1, in a process of its
own, serving generated cursor pages in Zendesk's shape (each record is the recorded
zenpy organization or user with its id, name, domain, email and tierdesk fields
changed): ``page[size]`` up to 100, ``page[after]``, ``meta.has_more``,
``links.next``, and the count endpoints. Its rate limit is a token bucket of R
requests a minute (bursts of 2 s); past it, 429 with ``Retry-After`` (whole seconds,
as Zendesk sends them). Every organization names its account (``tierdesk_account``)
and a tier; of its users, the first is a direct named contact, the second a partner
contact in the partner form, the third no contact. So a pull into the bundled mappings
adds one account per organization, each checked with the loader's rules and the
named-contact rules, and writes an accounts.json of 100,004 accounts.

Each pull runs in a fresh process (peak RSS is per process: ``ru_maxrss``), through
the same path as ``tierdesk sync pull --yes`` (`tierdesk.sync_command.directory_for`,
`mappings.sync.pull`). Three pulls, whose figures are ratios to one another or to the
vendor's limit, measured in the same run:

1. a tenth of the records, vendor unthrottled: the baseline for memory;
2. all the records, vendor unthrottled: tierdesk's own speed (records/s), and peak RSS
   against the baseline's (flat in the number of records: ratio ~1). Goal: < 200 MB;
3. all the records, vendor limited to R requests a minute (default 2,500: Zendesk's
   High Volume add-on), tierdesk's budget set to T (default 1.2 R, a budget above the
   plan, so that 429s happen and are waited out): the request rate tierdesk gets,
   as a share of R. Bounded by the vendor when ~1.0 and tierdesk's own speed (2) is
   well above it.

``--small``: 2,000 organizations and a vendor limit of 1,200 a minute, for the smoke
test (a few seconds).
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import math
import multiprocessing
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.shared import VENDOR

PAYLOADS = VENDOR / "zendesk" / "payloads"
ORG0, USER0 = 9_000_000, 50_000_000
TIERS = ("premier", "saas-24x7", "payg", "select")
PAGE_MAX = 100
BURST_S = 2.0  # the vendor's bucket holds this many seconds of requests


# -- the fake Zendesk ---------------------------------------------------------------------


def _template(name: str, key: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((PAYLOADS / name).read_text(encoding="utf-8"))[key][0]
    return record


class Vendor:
    """Generated directory records and a token-bucket rate limit; thread-safe."""

    def __init__(self, orgs: int, users_per_org: int, per_minute: float | None) -> None:
        self.orgs = orgs
        self.users_per_org = users_per_org
        self.org_template = _template("zenpy-organizations-list-cursor-page1.json", "organizations")
        self.user_template = _template("zenpy-users-list-cursor-page1.json", "users")
        self.rate = per_minute / 60 if per_minute else None
        self.capacity = (self.rate or 0) * BURST_S
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.lock = threading.Lock()
        self.served = 0
        self.limited = 0

    def admit(self) -> float | None:
        """None to serve the request, else the seconds to wait (for Retry-After)."""
        with self.lock:
            if self.rate is None:
                self.served += 1
                return None
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                self.served += 1
                return None
            self.limited += 1
            return (1 - self.tokens) / self.rate

    def org(self, i: int) -> dict[str, Any]:
        record = copy.copy(self.org_template)
        record.update(
            url=f"https://bench.zendesk.com/api/v2/organizations/{ORG0 + i}.json",
            id=ORG0 + i,
            name=f"Customer {i}",
            domain_names=[f"c{i}.example"],
            tags=[],
            organization_fields={"tierdesk_account": f"c{i}", "tierdesk_tier": TIERS[i % 4]},
        )
        return record

    def user(self, j: int) -> dict[str, Any]:
        org, k = divmod(j, self.users_per_org)
        email = (
            f"first{org}@c{org}.example"
            if k == 0
            else f"Employee{org}_Partner@c{org}.example"
            if k == 1
            else f"user{k}@c{org}.example"
        )
        kind = "direct" if k == 0 else "partner" if k == 1 else None
        contact = f"c{org}:{kind}" if kind else None  # flags name their account
        record = copy.copy(self.user_template)
        record.update(
            url=f"https://bench.zendesk.com/api/v2/users/{USER0 + j}.json",
            id=USER0 + j,
            name=email.split("@", maxsplit=1)[0],
            email=email,
            photo=None,
            organization_id=ORG0 + org,
            tags=[],
            user_fields={"tierdesk_named_contact": contact},
        )
        return record

    def page(self, kind: str, query: dict[str, str]) -> dict[str, Any]:
        total = self.orgs if kind == "organizations" else self.orgs * self.users_per_org
        make = self.org if kind == "organizations" else self.user
        size = min(int(query.get("page[size]", PAGE_MAX)), PAGE_MAX)
        after = query.get("page[after]")
        start = int(base64.urlsafe_b64decode(after.encode())) + 1 if after else 0
        end = min(start + size, total)
        cursor = base64.urlsafe_b64encode(str(end - 1).encode()).decode()
        before = base64.urlsafe_b64encode(str(start).encode()).decode()
        link = f"https://bench.zendesk.com/api/v2/{kind}.json?page%5Bsize%5D={size}&page%5B"
        return {
            kind: [make(i) for i in range(start, end)],
            "meta": {"has_more": end < total, "after_cursor": cursor, "before_cursor": before},
            "links": {"prev": f"{link}before%5D={before}", "next": f"{link}after%5D={cursor}"},
        }


def serve(orgs: int, users_per_org: int, per_minute: float | None, port: Any) -> None:
    vendor = Vendor(orgs, users_per_org, per_minute)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, Nagle's algorithm
            # holds the body for the client's delayed ACK, and the fake would be slow.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/_stats":
                stats = {"served": vendor.served, "limited": vendor.limited}
                self._send(200, json.dumps(stats).encode())
                return
            wait = vendor.admit()
            if wait is not None:
                body = b'{"error": "APIRateLimitExceeded"}'
                self._send(429, body, {"Retry-After": str(math.ceil(wait))})
                return
            query = dict(parse_qsl(url.query))
            for kind in ("organizations", "users"):
                if url.path == f"/api/v2/{kind}":
                    self._send(200, json.dumps(vendor.page(kind, query)).encode())
                    return
                if url.path == f"/api/v2/{kind}/count":
                    total = vendor.orgs * (1 if kind == "organizations" else vendor.users_per_org)
                    self._send(200, json.dumps({"count": {"value": total}}).encode())
                    return
            self._send(404, b'{"error": "RecordNotFound"}')

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port.send(server.server_address[1])
    server.serve_forever()


def start_vendor(orgs: int, users_per_org: int, per_minute: float | None) -> tuple[Any, int]:
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.Process(
        target=serve, args=(orgs, users_per_org, per_minute, theirs), daemon=True
    )
    process.start()
    return process, int(ours.recv())


def vendor_stats(port: int) -> dict[str, int]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats", timeout=10) as answer:
        stats: dict[str, int] = json.loads(answer.read())
    return stats


# -- one pull, in a process of its own ----------------------------------------------------


class Clock:
    """A Progress that notes when reading starts and ends."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last = 0.0

    def begin(self, phase: str, total: int | None, done: int) -> None:
        self.first = self.first or time.perf_counter()

    def advance(self, records: int) -> None:
        pass

    def end(self) -> None:
        self.last = time.perf_counter()


def child(config: dict[str, Any]) -> dict[str, Any]:
    from connector.zendesk_directory import ZendeskDirectory
    from mappings import BUNDLED
    from mappings.sync import pull
    from mappings.sync.accounts_file import read_accounts
    from tierdesk.sync_command import directory_for
    from webhooks.settings import Secret, Tenant

    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory(prefix="tierdesk-bench-sync-") as scratch:
        mappings = Path(scratch) / "mappings"
        shutil.copytree(BUNDLED, mappings)
        tenant = Tenant(
            id="bench",
            vendor="zendesk",
            base_url=f"http://127.0.0.1:{config['port']}",
            email="bench@example.com",
            api_token=Secret("bench-token"),
        )
        directory = directory_for(tenant, config["tierdesk_rate"])
        assert isinstance(directory, ZendeskDirectory)
        clock = Clock()
        started = time.perf_counter()
        report = pull(
            directory,
            mappings,
            Path(scratch) / "state" / "bench.pull.sqlite3",
            {"job": "pull", "tenant": "bench"},
            progress=clock,
            confirm=lambda report: True,
        )
        finished = time.perf_counter()
        _, accounts = read_accounts(mappings / "accounts.json")
        written = sum(1 for _ in accounts)
        return {
            "records": report.counts.get("organizations", 0) + report.counts.get("people", 0),
            "organizations": report.counts.get("organizations", 0),
            "people": report.counts.get("people", 0),
            "pages": report.counts.get("pages", 0),
            "calls": directory.client.calls,
            "seconds": finished - started,
            "read_seconds": clock.last - (clock.first or started),
            "added": report.added,
            "problems": [str(p) for p in report.problems[:5]],
            "written": report.written,
            "accounts_in_file": written,
            "baseline_rss_mb": baseline_kb / 1024,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def run_child(port: int, tierdesk_rate: float) -> dict[str, Any]:
    config = {"port": port, "tierdesk_rate": tierdesk_rate}
    result = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"the pull failed:\n{result.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def measure(
    orgs: int, users_per_org: int, vendor_rate: float | None, tierdesk_rate: float
) -> dict[str, Any]:
    process, port = start_vendor(orgs, users_per_org, vendor_rate)
    try:
        figures = run_child(port, tierdesk_rate)
        figures.update(vendor_stats(port))
    finally:
        process.terminate()
        process.join()
    expected = orgs * (1 + users_per_org)
    if figures["records"] != expected or figures["accounts_in_file"] != orgs + 4:
        raise SystemExit(f"wrong result: {figures} (expected {expected} records)")
    return figures


def line(name: str, f: dict[str, Any]) -> str:
    return (
        f"  {name:<34} {f['records']:>9,} records in {f['seconds']:7.1f} s = "
        f"{f['records'] / f['seconds']:>8,.0f} records/s (reading {f['read_seconds']:.1f} s, "
        f"{f['records'] / f['read_seconds']:,.0f}/s); {f['calls']:,} requests, "
        f"{f['limited']:,} answered 429; peak RSS {f['peak_rss_mb']:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--small", action="store_true", help="2,000 organizations, 1,200/min")
    parser.add_argument("--orgs", type=int, default=None)
    parser.add_argument("--users-per-org", type=int, default=3)
    parser.add_argument("--vendor-rate", type=float, default=None, help="requests a minute")
    parser.add_argument("--tierdesk-rate", type=float, default=None, help="requests a minute")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    orgs = args.orgs or (2_000 if args.small else 100_000)
    vendor_rate = args.vendor_rate or (1_200.0 if args.small else 2_500.0)
    tierdesk_rate = args.tierdesk_rate or vendor_rate * 1.2
    unlimited = 1e9  # tierdesk's own budget out of the way for the unthrottled pulls
    users = orgs * args.users_per_org
    print(
        f"sync pull: {orgs:,} organizations and {users:,} users from a fake Zendesk on "
        f"127.0.0.1 (pages of {PAGE_MAX}), into the bundled mappings"
    )
    tenth = measure(max(orgs // 10, 1), args.users_per_org, None, unlimited)
    full = measure(orgs, args.users_per_org, None, unlimited)
    limited = measure(orgs, args.users_per_org, vendor_rate, tierdesk_rate)
    print(line("1. a tenth, vendor unthrottled", tenth))
    print(line("2. all, vendor unthrottled", full))
    print(line(f"3. all, vendor {vendor_rate:,.0f}/min", limited))
    print(f"  accounts.json written each time: {full['accounts_in_file']:,} accounts")

    rss_ratio = full["peak_rss_mb"] / tenth["peak_rss_mb"]
    print(
        f"memory: peak RSS {full['peak_rss_mb']:.0f} MB for all the records, "
        f"{tenth['peak_rss_mb']:.0f} MB for a tenth (x{rss_ratio:.2f} for 10x the records; "
        f"{full['baseline_rss_mb']:.0f} MB after start-up) -> goal < 200 MB: "
        f"{'met' if full['peak_rss_mb'] < 200 and limited['peak_rss_mb'] < 200 else 'MISSED'}"
    )
    vendor_per_s = vendor_rate / 60
    served_per_s = limited["served"] / limited["read_seconds"]
    own_per_s = full["served"] / full["read_seconds"]
    # What the vendor allowed while tierdesk read: its burst, then its rate.
    allowed = vendor_per_s * (BURST_S + limited["read_seconds"])
    share = limited["served"] / allowed
    print(
        f"rate: vendor limit {vendor_per_s:.1f} requests/s (bursts of {BURST_S:.0f} s); "
        f"tierdesk got {served_per_s:.1f}/s while reading, {limited['served']:,} requests = "
        f"{share:.2f} of the {allowed:,.0f} the vendor allowed in that time "
        f"({limited['limited']:,} 429s waited out; tierdesk's budget {tierdesk_rate / 60:.1f}/s). "
        f"Unthrottled, tierdesk reads {own_per_s:.1f} requests/s = "
        f"{own_per_s / vendor_per_s:.1f}x the limit"
    )
    merge = limited["seconds"] - limited["read_seconds"]
    print(
        f"  after reading: merge, check and write of {limited['accounts_in_file']:,} accounts "
        f"{merge:.1f} s ({merge / limited['seconds']:.0%} of the limited pull)"
    )
    bounded = share >= 0.9 and own_per_s >= 2 * vendor_per_s
    print(f"bounded by the vendor rate limit, not by tierdesk: {'met' if bounded else 'MISSED'}")


if __name__ == "__main__":
    main()
