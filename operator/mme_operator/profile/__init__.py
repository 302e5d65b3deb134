"""Measuring serving configurations on a real Triton: variants, load generation, sweeps, reports.

The variants are rendered and packaged by the operator's own code, so the figures belong
to what the operator deploys. Used by ``benchmarks/serving.py`` and ``mme-operator profile``.
"""

from mme_operator.profile.load import Measurement, combine, generate_inputs, measure
from mme_operator.profile.server import Target, triton_target
from mme_operator.profile.variants import (
    ProfileError,
    Variant,
    load_variant,
    on_cpu,
    package_files,
    unload_variant,
    variant_spec,
)

__all__ = [
    "Measurement",
    "ProfileError",
    "Target",
    "Variant",
    "combine",
    "generate_inputs",
    "load_variant",
    "measure",
    "on_cpu",
    "package_files",
    "triton_target",
    "unload_variant",
    "variant_spec",
]
