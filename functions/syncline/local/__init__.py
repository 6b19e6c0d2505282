"""The local stack: moto server, embedded PostgreSQL, emulated Sage 300 and Lambda triggers.

Used by ``make demo``, ``syncline local up`` and the integration and end-to-end tests. Not bundled
into the Lambda asset.
"""
