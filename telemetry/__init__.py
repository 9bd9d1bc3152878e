"""What ops can watch: counters kept as tierdesk works (``metrics.py``), and one scrape
of them plus the store's gauges in the Prometheus text format (``exposition.py``).

Depends on prometheus_client only, so the intake, the pipeline and the HTTP policy can
all count without importing each other.
"""
