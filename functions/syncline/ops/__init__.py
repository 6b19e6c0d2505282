"""Operations: what an operator runs when something went wrong (DLQ, reconcile, status, backfill).

The modules here are engines over small ports, with no AWS imports: ``dlq`` (inspect and redrive
dead letters), ``reconcile`` (full compare and repair of a pair), ``health`` (the status report),
``jobs`` (resumable backfill). ``syncline.ops.wiring`` builds their adapters from boto3 and the
connection secrets; ``syncline.ops.commands`` is the thin CLI over both.
"""
