"""`Store.gauges()`, on every backend: what `/metrics` reports of the store."""

from __future__ import annotations

from store import Gauges, Store
from tests.store.test_clocks import record, sla
from tests.store.test_inbox import T0, claim, new_event


def test_an_empty_store_has_zero_everything(store: Store) -> None:
    assert store.gauges() == Gauges(0, 0, 0, None, {})


def test_open_events_dead_letters_and_open_clocks_by_stage(store: Store) -> None:
    record(store, sla("T-1"), now=T0)  # one done event, one on_track clock
    record(store, sla("T-2", stage="at_risk"), now=T0 + 1)
    record(store, sla("T-3", stage="breached", closed_us=1), now=T0 + 2)  # solved: not open
    assert store.put(new_event(event_id="dead", ticket="T-9"), T0 + 3)
    store.fail(claim(store, now=T0 + 3), "given up", T0 + 3, None)
    assert store.put(new_event(event_id="leased", ticket="T-8"), T0 + 10)
    claim(store, now=T0 + 10)
    assert store.put(new_event(event_id="waiting", ticket="T-7"), T0 + 20)
    assert store.put(new_event(event_id="waiting-2", ticket="T-6"), T0 + 30)

    gauges = store.gauges()
    assert (gauges.pending, gauges.leased, gauges.dead) == (2, 1, 1)
    assert gauges.oldest_open_received_at == T0 + 10
    assert gauges.clocks == {"on_track": 1, "at_risk": 1}
