"""The HTTP intake: the Flask application factory and its blueprints.

A webhook comes in (``app.py`` → ``zendesk.py`` / ``jsm.py``), its signature is checked
on the raw bytes (``signatures.py``), its payload becomes a ``TicketEvent``
(``events.py``), and ``intake.py`` stores it durably before the 2xx. Nothing here calls
a vendor: what happens to a stored event is ``pipeline/``'s business. Also here: the
read-only sidebar API (``sidebar.py``), the tenants' settings (``settings.py``) and the
mappings in force (``live_mappings.py``), which the pipeline shares.
"""
