"""Desired state, observed state, the plan between them, and its execution.

Nothing in this package imports kopf: :mod:`mme_operator.handlers` is the only glue.
"""

from mme_operator.reconcile.desired import DesiredState, build_desired
from mme_operator.reconcile.engine import (
    Deletion,
    Outcome,
    check_drift,
    dry_run,
    failed_retry_due,
    finalize,
    reconcile,
)
from mme_operator.reconcile.observe import ObservedState, observe
from mme_operator.reconcile.plan import Plan, plan_delete, plan_reconcile

__all__ = [
    "Deletion",
    "DesiredState",
    "ObservedState",
    "Outcome",
    "Plan",
    "build_desired",
    "check_drift",
    "dry_run",
    "failed_retry_due",
    "finalize",
    "observe",
    "plan_delete",
    "plan_reconcile",
    "reconcile",
]
