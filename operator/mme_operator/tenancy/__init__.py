"""The one place that answers "may this namespace do this?" (the platform's tenancy policy).

The platform writes the policy (the chart's ``tenancy`` values, a file the operator reads
once at start, ``MME_TENANCY_POLICY_FILE``); tenants, whose RBAC reaches their own
namespace only, cannot change it. Validation and the reconcile both ask
:func:`policy_problems` before anything is done in AWS.
"""

from mme_operator.tenancy.policy import (
    ArchiveClaims,
    ArchiveLocation,
    PolicyError,
    Rule,
    TenancyPolicy,
    adoption_allowed,
    archive_location,
    load_policy,
    model_source_problem,
    policy_problems,
    read_policy,
)

__all__ = [
    "ArchiveClaims",
    "ArchiveLocation",
    "PolicyError",
    "Rule",
    "TenancyPolicy",
    "adoption_allowed",
    "archive_location",
    "load_policy",
    "model_source_problem",
    "policy_problems",
    "read_policy",
]
