"""Measuring serving configurations on a real Triton: variants, load generation, sweeps, reports.

The variants are rendered and packaged by the operator's own code, so the figures belong
to what the operator deploys. Used by ``benchmarks/serving.py`` and ``mme-operator profile``.
Modules: ``variants`` (render, package, load into a Triton), ``load`` (the load generator),
``server`` (which Triton), ``grid`` / ``sweep`` (what is measured, the recommendation),
``report`` (the files), ``command`` (the CLI). Import them directly: this package imports
nothing itself, so the CLI starts without numpy and tritonclient.
"""
