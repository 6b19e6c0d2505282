"""Adapters: the engine's ports implemented against DynamoDB, EventBridge, SQS and PostgreSQL."""
