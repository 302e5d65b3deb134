"""Sizing: the instance catalogue (hardware, MME support, prices), GPU-memory fit and choice.

Only the catalogue is imported here: the API's admission check reads it, so this package's
``__init__`` must not pull in modules that import the API back.
"""

from mme_operator.sizing.catalogue import (
    HOURS_PER_MONTH,
    CatalogueError,
    InstanceCatalogue,
    InstanceType,
    Price,
    build_catalogue,
    get_catalogue,
    load_catalogue,
)

__all__ = [
    "HOURS_PER_MONTH",
    "CatalogueError",
    "InstanceCatalogue",
    "InstanceType",
    "Price",
    "build_catalogue",
    "get_catalogue",
    "load_catalogue",
]
