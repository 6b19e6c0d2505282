"""Local sandboxes for the SaaS systems Syncline speaks to, each a small HTTP server on loopback that
implements the subset of the real API Syncline uses (paths, auth, status codes, error bodies, rate-limit
behaviour, pagination, signed webhooks), so a connector switches to the real service by configuration.

``base.Sandbox`` gives every sandbox the same server, request log, fault injection (latency, 5xx, 429,
dropped connections, timeouts, expired tokens) and webhook delivery.
"""
