"""Review of the sidebar's read-only endpoint (issue 5): odd ticket ids, tokens of
another tenant, and what a refusal says. Built on the rig of test_sidebar.py (the store
filled through the signed intake and the worker)."""

from __future__ import annotations

import pytest

from tests.webhooks.test_sidebar import (  # noqa: F401  (the rig fixture)
    ACME,
    APP_TOKEN,
    GLOBEX,
    GLOBEX_APP_TOKEN,
    Rig,
    ask,
    decided,
    rig,
)


@pytest.mark.parametrize(
    "ticket",
    [
        pytest.param("9" * 4000, id="a-4000-digit-id"),
        pytest.param("123%00", id="a-nul-byte"),
        pytest.param("%E2%80%AE123", id="a-right-to-left-override"),
        pytest.param("123%20", id="a-trailing-space"),
        pytest.param("-1", id="negative"),
        pytest.param("1e3", id="a-float-spelling"),
    ],
)
def test_an_odd_ticket_id_is_a_plain_404(rig: Rig, ticket: str) -> None:  # noqa: F811
    decided(rig, "123")
    response = ask(rig, ticket)
    assert response.status_code == 404
    assert response.json is not None and response.json["error"] == "no_decision"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_same_id_under_the_other_tenant_with_this_tenants_token_is_refused(
    rig: Rig,  # noqa: F811
) -> None:
    """acme's app token asking for globex's ticket 123 (the id exists there): 401, and
    nothing of globex's decision, nor the token sent, comes back."""
    decided(rig, "123", tenant=GLOBEX.id)
    response = ask(rig, "123", APP_TOKEN, tenant=GLOBEX.id)
    assert response.status_code == 401
    text = response.get_data(as_text=True)
    assert APP_TOKEN not in text and GLOBEX_APP_TOKEN not in text
    assert "tier" not in text


def test_a_valid_token_under_another_scheme_is_refused(rig: Rig) -> None:  # noqa: F811
    decided(rig, "123")
    for header in (f"Basic {APP_TOKEN}", f"Token {APP_TOKEN}", APP_TOKEN):
        response = ask(rig, "123", None, Authorization=header)
        assert response.status_code == 401, header
        assert APP_TOKEN not in response.get_data(as_text=True)


def test_the_token_never_travels_in_the_query_string(rig: Rig) -> None:  # noqa: F811
    """Query strings end up in proxy and access logs: a token there is not accepted."""
    decided(rig, "123")
    response = rig.client.get(
        f"/api/tickets/{ACME.id}/123/decision",
        query_string={"access_token": APP_TOKEN, "token": APP_TOKEN},
    )
    assert response.status_code == 401
