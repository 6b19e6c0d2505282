"""Syncline: keeps ERP, e-commerce, OMS, CRM and CMMS systems in agreement.

The engine modules (models, stamps, erp, poller, sync, bulk) import nothing from AWS; adapters
under ``syncline.adapters`` speak to DynamoDB, EventBridge, SQS and PostgreSQL.
"""

__version__ = "0.1.0"
