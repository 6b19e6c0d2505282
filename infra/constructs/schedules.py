"""EventBridge rate rules that invoke functions on a timer (the ERP poller, later the reconciler...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs import pascal
from syncline.topology import ScheduleSpec

MAX_EVENT_AGE_SECONDS = 6 * 3600  # Lambda's limit for an asynchronous event's age (a daily schedule's ticks)


class Schedules(Construct):
    """One rate rule per schedule, on the default bus, invoking its function asynchronously."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        specs: Sequence[ScheduleSpec],
        functions: Mapping[str, lambda_.IFunction],
    ) -> None:
        super().__init__(scope, construct_id)
        self.rules: dict[str, events.Rule] = {}
        for spec in specs:
            rate = _rate(spec)
            function = functions[spec.function]
            self.rules[spec.id] = events.Rule(
                self,
                pascal(spec.id),
                description=f"Invoke {spec.function} every {spec.rate_seconds} s",
                schedule=events.Schedule.rate(rate),
                targets=[targets.LambdaFunction(function)],
            )
            # A tick is superseded by the next one, which resumes from the stored watermark: retrying a
            # failed tick, or running one that waited a whole period behind a slow run (the poller has
            # reserved concurrency 1), would only pile load on the source system.
            function.configure_async_invoke(
                retry_attempts=0, max_event_age=Duration.seconds(min(max(60, spec.rate_seconds), MAX_EVENT_AGE_SECONDS))
            )


def _rate(spec: ScheduleSpec) -> Duration:
    if spec.rate_seconds < 60 or spec.rate_seconds % 60:
        raise ValueError(
            f"schedule {spec.id!r}: rate_seconds={spec.rate_seconds} cannot be deployed; EventBridge rate "
            "schedules are whole minutes (60, 120, ...)"
        )
    return Duration.minutes(spec.rate_seconds // 60)
