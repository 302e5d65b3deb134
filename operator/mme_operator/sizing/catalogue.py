"""The instance catalogue: SageMaker hosting types, their hardware, MME support and prices.

The data is ``instance_types.json`` beside this module, each price with its source and the
date it was read. AWS adds types and users get discounts, so a second file named by the
``MME_INSTANCE_CATALOGUE_FILE`` setting (JSON or YAML, same shape) adds types and
overrides fields or prices per type; ``MME_PRICE_FACTOR`` scales every price (an
enterprise discount of 20% is ``0.8``). The operator's admission check, the sizing and
the local SageMaker all read this one catalogue.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from mme_operator.settings import Settings, get_settings

GIB = 1024**3
HOURS_PER_MONTH = 730.0
"""AWS's convention for a month of on-demand hours."""

MultiModel = Literal["gpu", "cpu", "unsupported"]


class CatalogueError(ValueError):
    """The catalogue file (built-in or the user's) is malformed."""


@dataclass(frozen=True)
class Price:
    """On-demand price of one instance-hour in one region, and where it came from."""

    usd_per_hour: float
    source: str
    read: str
    """Date the source was read (YYYY-MM-DD)."""


@dataclass(frozen=True)
class InstanceType:
    """Hardware of one SageMaker hosting instance type and whether an MME may use it."""

    name: str
    vcpus: int
    memory_gib: float
    gpus: int = 0
    gpu_model: str | None = None
    gpu_memory_gib: float = 0.0
    """Memory of one GPU."""
    multi_model: MultiModel = "cpu"
    why: str | None = None
    """Why an MME cannot use the type (``multi_model == "unsupported"``)."""
    prices: Mapping[str, Price] = field(default_factory=dict)

    @property
    def family(self) -> str:
        """``ml.g5.xlarge`` -> ``ml.g5``."""
        return self.name.rsplit(".", 1)[0]

    @property
    def mme_capable(self) -> bool:
        return self.multi_model != "unsupported"

    @property
    def gpu_memory_mib(self) -> int:
        """Memory of one GPU in MiB (0 on a CPU type)."""
        return int(self.gpu_memory_gib * 1024)

    @property
    def total_gpu_memory_gib(self) -> float:
        """GPU memory of all the instance's GPUs together."""
        return self.gpus * self.gpu_memory_gib

    @property
    def model_memory_bytes(self) -> int:
        """Memory that holds loaded models: the GPUs' on a GPU type, host memory otherwise."""
        gib = self.total_gpu_memory_gib if self.gpus else self.memory_gib
        return int(gib * GIB)

    def price(self, region: str) -> Price | None:
        """The on-demand price in ``region``; None where no source gave one."""
        return self.prices.get(region)


@dataclass(frozen=True)
class InstanceCatalogue:
    """Every known instance type, by name."""

    types: Mapping[str, InstanceType]
    price_factor: float = 1.0

    def __iter__(self) -> Iterator[InstanceType]:
        return iter(self.types.values())

    def get(self, name: str) -> InstanceType | None:
        return self.types.get(name)

    def mme_types(self) -> list[InstanceType]:
        """The types a multi-model endpoint may run on."""
        return [t for t in self if t.mme_capable]

    def price(self, name: str, region: str) -> float | None:
        """USD per instance-hour in ``region`` after the price factor; None when unpriced."""
        instance = self.types.get(name)
        found = instance.price(region) if instance else None
        return None if found is None else round(found.usd_per_hour * self.price_factor, 4)

    def refusal(self, name: str) -> str | None:
        """Why an MME cannot run on ``name`` (one sentence saying what to do); None if it can."""
        instance = self.types.get(name)
        gpu_types = _compact([t.name for t in self if t.multi_model == "gpu"])
        if instance is None:
            return (
                f"{name} is not a known SageMaker hosting instance type for multi-model "
                f"endpoints; use a single-GPU type ({gpu_types}) or a CPU type, or add it "
                "with MME_INSTANCE_CATALOGUE_FILE"
            )
        if not instance.mme_capable:
            return (
                f"{name} cannot host a multi-model endpoint ({instance.why}); "
                f"use one of {gpu_types}"
            )
        return None


def _compact(names: list[str]) -> str:
    """``ml.g5.xlarge, ml.g5.2xlarge, ml.p3.2xlarge`` -> ``ml.g5.{xlarge,2xlarge}, ml.p3.2xlarge``."""
    families: dict[str, list[str]] = {}
    for name in names:
        family, size = name.rsplit(".", 1)
        families.setdefault(family, []).append(size)
    return ", ".join(
        f"{family}.{sizes[0]}" if len(sizes) == 1 else f"{family}.{{{','.join(sizes)}}}"
        for family, sizes in families.items()
    )


_PRICE_KEYS = {"usdPerHour", "source", "read"}
_TYPE_KEYS = {
    "name",
    "vcpus",
    "memoryGiB",
    "gpus",
    "gpuModel",
    "gpuMemoryGiB",
    "multiModel",
    "why",
    "prices",
}


def _prices(raw: Any, where: str) -> dict[str, Price]:
    if not isinstance(raw, dict):
        raise CatalogueError(f"{where}.prices: expected a mapping of region -> price")
    out = {}
    for region, entry in raw.items():
        if (
            not isinstance(entry, dict)
            or not set(entry) <= _PRICE_KEYS
            or "usdPerHour" not in entry
        ):
            raise CatalogueError(
                f"{where}.prices.{region}: expected {{usdPerHour, source, read}}, got {entry!r}"
            )
        usd = entry["usdPerHour"]
        if not isinstance(usd, int | float) or isinstance(usd, bool) or usd < 0:
            raise CatalogueError(f"{where}.prices.{region}.usdPerHour: {usd!r} is not a price")
        out[str(region)] = Price(
            float(usd), str(entry.get("source", "user override")), str(entry.get("read", ""))
        )
    return out


def _merge_type(base: InstanceType | None, raw: Any, where: str) -> InstanceType:
    """One type from the file; fields the entry leaves out keep ``base``'s values."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise CatalogueError(f"{where}: expected a mapping with a name")
    unknown = set(raw) - _TYPE_KEYS
    if unknown:
        raise CatalogueError(f"{where}: unknown fields {sorted(unknown)}")
    name = raw["name"]
    if base is None and not {"vcpus", "memoryGiB"} <= set(raw):
        raise CatalogueError(f"{where} ({name}): a new type needs vcpus and memoryGiB")
    multi_model = raw.get("multiModel", base.multi_model if base else None)
    if multi_model is None:
        multi_model = "gpu" if raw.get("gpus", 0) == 1 else "cpu" if not raw.get("gpus") else None
    if multi_model not in ("gpu", "cpu", "unsupported"):
        raise CatalogueError(f"{where} ({name}): multiModel must be gpu, cpu or unsupported")
    try:
        gpus = int(raw.get("gpus", base.gpus if base else 0))
        instance = InstanceType(
            name=name,
            vcpus=int(raw.get("vcpus", base.vcpus if base else 0)),
            memory_gib=float(raw.get("memoryGiB", base.memory_gib if base else 0)),
            gpus=gpus,
            gpu_model=raw.get("gpuModel", base.gpu_model if base else None),
            gpu_memory_gib=float(raw.get("gpuMemoryGiB", base.gpu_memory_gib if base else 0)),
            multi_model=cast(MultiModel, multi_model),
            why=raw.get("why", base.why if base else None),
            prices={**(base.prices if base else {}), **_prices(raw.get("prices", {}), where)},
        )
    except (TypeError, ValueError) as exc:
        raise CatalogueError(f"{where} ({name}): {exc}") from None
    if instance.multi_model == "gpu" and instance.gpus != 1:
        raise CatalogueError(
            f"{where} ({name}): a GPU multi-model type has exactly one GPU, not {instance.gpus}"
        )
    if instance.gpus and instance.gpu_memory_gib <= 0:
        raise CatalogueError(f"{where} ({name}): gpuMemoryGiB is required on a GPU type")
    if instance.multi_model == "unsupported" and not instance.why:
        raise CatalogueError(f"{where} ({name}): an unsupported type needs a why")
    return instance


def _read(text: str, where: str) -> list[Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{where}: not YAML or JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("types"), list):
        raise CatalogueError(f"{where}: expected a mapping with a list 'types'")
    return list(doc["types"])


def build_catalogue(
    builtin: str, extra: str | None = None, *, price_factor: float = 1.0, extra_name: str = ""
) -> InstanceCatalogue:
    """The catalogue from the built-in document and an optional user document (both text)."""
    types: dict[str, InstanceType] = {}
    for i, raw in enumerate(_read(builtin, "instance_types.json")):
        instance = _merge_type(None, raw, f"instance_types.json types[{i}]")
        types[instance.name] = instance
    if extra is not None:
        for i, raw in enumerate(_read(extra, extra_name or "catalogue file")):
            where = f"{extra_name or 'catalogue file'} types[{i}]"
            name = raw.get("name") if isinstance(raw, dict) else None
            instance = _merge_type(types.get(name) if isinstance(name, str) else None, raw, where)
            types[instance.name] = instance
    return InstanceCatalogue(types, price_factor)


def builtin_document() -> str:
    """The shipped catalogue as text."""
    return resources.files("mme_operator.sizing").joinpath("instance_types.json").read_text()


def load_catalogue(settings: Settings) -> InstanceCatalogue:
    """The shipped catalogue with the settings' extension file and price factor applied."""
    extra = None
    path = settings.instance_catalogue_file
    if path:
        try:
            extra = Path(path).read_text()
        except OSError as exc:
            raise CatalogueError(f"MME_INSTANCE_CATALOGUE_FILE {path}: {exc.strerror}") from None
    return build_catalogue(
        builtin_document(), extra, price_factor=settings.price_factor, extra_name=path or ""
    )


@lru_cache(maxsize=1)
def get_catalogue() -> InstanceCatalogue:
    """The process-wide catalogue (read once, from :func:`get_settings`)."""
    return load_catalogue(get_settings())
