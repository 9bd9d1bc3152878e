"""Vendor REST clients (Zendesk, JSM) on one HTTP policy: timeouts, retries that honour
Retry-After, a per-tenant request budget, redirects off, one host per tenant."""
