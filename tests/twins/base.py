"""What both twins share: one request in, one answer out, the spec check first.

A twin is served through `responses` (`install`): every request to its base URL, any
method, goes to `Twin.handle`, which

1. records the request (`Twin.seen`);
2. answers an injected fault if one is armed (`Twin.throttle`: 429 with
   ``Retry-After``; `Twin.fail`: any status), as the vendors do under load;
3. checks it against the vendor's OpenAPI spec (`tests.twins.contract`): a broken rule
   is answered 400 (404 for a path no spec declares, 405 for an undeclared method)
   with the rule named in the body, the way a spec-validating sandbox answers;
4. checks the credentials (401 when wrong);
5. hands it to the vendor's handler for the route's template.

Zendesk's ``.json`` suffix is the one rule recorded rather than refused
(`Twin.legacy`): the real API still answers it; a twin built with ``strict=True``
refuses it with 404 as a spec sandbox does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import responses
from requests import PreparedRequest

from tests.connector.contracts import Api
from tests.twins.contract import LEGACY_SUFFIX, Route, Violation, check

Answer = tuple[int, dict[str, str], str]
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


@dataclass(frozen=True, slots=True)
class Request:
    api: Api
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: Any  # parsed JSON, None when empty
    route: Route

    @property
    def params(self) -> dict[str, str]:
        return self.route.params

    def arg(self, name: str, default: str | None = None) -> str | None:
        return dict(self.query).get(name, default)


@dataclass
class Seen:
    method: str
    path: str
    query: list[tuple[str, str]]
    body: Any
    status: int = 0
    violations: list[Violation] = field(default_factory=list)


@dataclass
class Fault:
    count: int
    status: int
    headers: dict[str, str]
    body: str
    matches: Callable[[str, str], bool]  # (method, path)


def json_answer(status: int, doc: Any, headers: dict[str, str] | None = None) -> Answer:
    return (
        status,
        {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        json.dumps(doc),
    )


class Twin:
    """The request pipeline of a vendor twin; subclasses route by the spec's template."""

    api_names: tuple[Api, ...] = ()

    def __init__(self, base: str, *, strict: bool = False) -> None:
        self.base = base.rstrip("/")
        self.strict = strict
        self.seen: list[Seen] = []
        self.legacy: list[Violation] = []  # recorded, not refused (see the docstring)
        self.faults: list[Fault] = []

    # -- what a test arms ------------------------------------------------------------

    def fail(
        self,
        status: int,
        body: Any,
        *,
        count: int = 1,
        method: str | None = None,
        path: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next ``count`` requests matching ``method`` and the ``path`` regex get
        ``status``."""
        pattern = re.compile(path)
        text = body if isinstance(body, str) else json.dumps(body)
        self.faults.append(
            Fault(
                count,
                status,
                {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
                text,
                lambda m, p: (method is None or m == method) and bool(pattern.search(p)),
            )
        )

    # -- the pipeline ----------------------------------------------------------------

    def api_of(self, path: str) -> Api:
        raise NotImplementedError

    def authorized(self, headers: dict[str, str]) -> bool:
        raise NotImplementedError

    def unauthorized(self) -> Answer:
        raise NotImplementedError

    def throttled(self, retry_after: int) -> tuple[dict[str, str], str]:
        raise NotImplementedError

    def throttle(
        self, count: int = 1, *, retry_after: int = 1, method: str | None = None, path: str = ""
    ) -> None:
        headers, body = self.throttled(retry_after)
        self.fail(429, body, count=count, method=method, path=path, headers=headers)

    def dispatch(self, request: Request) -> Answer:
        raise NotImplementedError

    def handle(self, method: str, url: str, headers: dict[str, str], raw: bytes | None) -> Answer:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        body: Any = None
        seen = Seen(method, parts.path, query, None)
        self.seen.append(seen)
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                seen.status = 400
                return json_answer(400, {"error": "the body is not JSON"})
        seen.body = body
        for fault in self.faults:
            if fault.count > 0 and fault.matches(method, parts.path):
                fault.count -= 1
                seen.status = fault.status
                return fault.status, fault.headers, fault.body
        api = self.api_of(parts.path)
        found, violations = check(api, method, parts.path, query, body, bool(raw))
        seen.violations = violations
        refused = [v for v in violations if v.rule != LEGACY_SUFFIX or self.strict]
        self.legacy += [v for v in violations if v.rule == LEGACY_SUFFIX and not self.strict]
        if refused or found is None:
            status = {"path": 404, "method": 405}.get(refused[0].rule, 400) if refused else 404
            if refused[0].rule == LEGACY_SUFFIX:
                status = 404
            seen.status = status
            return json_answer(
                status,
                {"error": "OpenAPIViolation", "violations": [str(v) for v in refused]},
            )
        if not self.authorized(headers):
            seen.status = 401
            return self.unauthorized()
        answer = self.dispatch(Request(api, method, parts.path, query, headers, body, found))
        seen.status = answer[0]
        return answer

    def install(self, mock: responses.RequestsMock) -> None:
        pattern = re.compile(re.escape(self.base) + r"/.*")

        def callback(request: PreparedRequest) -> Answer:
            raw = request.body
            data = raw.encode() if isinstance(raw, str) else raw
            return self.handle(request.method or "", request.url or "", dict(request.headers), data)

        for method in METHODS:
            mock.add_callback(method, pattern, callback=callback)

    def requests(self, method: str | None = None, path: str = "") -> list[Seen]:
        pattern = re.compile(path)
        return [
            s
            for s in self.seen
            if (method is None or s.method == method) and pattern.search(s.path)
        ]
