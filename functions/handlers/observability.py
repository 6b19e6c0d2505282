"""The one Logger, Metrics and Tracer every handler shares (service and namespace from Powertools env)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="syncline")
metrics = Metrics(namespace="Syncline", service="syncline")
tracer = Tracer(service="syncline")
