"""The processing pipeline: what happens to a stored event, up to the write-back.

``worker.py`` claims an event from the inbox and takes it down one path: decide
(``entitlements.decide``), track its SLA clock (``lifecycle.py``), record time logged
(``ledger_events.py``), write back what changed (``writeback.py`` through the tenant's
connector, ``connectors.py``), then complete it (done, audit, clock: one transaction).
``sweep.py`` queues the stage changes of SLA clocks as events for that same path.

Imports point one way: ``webhooks`` (the HTTP intake, and the ``TicketEvent`` it
produces) ← ``pipeline`` ← ``tierdesk``; nothing here imports Flask.
"""
