#!/usr/bin/env python3
"""Write the trimmed SageMaker service model from the installed botocore.

    python scripts/trim-botocore-models.py           # (re)write it
    python scripts/trim-botocore-models.py --check   # exit 1 if it differs from a fresh trim

Keeps mme_operator.sagemaker.botocore_models.SAGEMAKER_OPERATIONS and every shape they
reach (inputs, outputs, errors, members, list members, map keys and values), unchanged.
Run it after adding a SageMaker call to the code, or to follow a newer botocore.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

import botocore  # noqa: E402
import botocore.loaders  # noqa: E402
from mme_operator.sagemaker.botocore_models import (  # noqa: E402
    DATA_PATH,
    SAGEMAKER_OPERATIONS,
)

SERVICE = "sagemaker"


def trimmed(full: dict[str, Any], operations: tuple[str, ...]) -> dict[str, Any]:
    """``full`` reduced to ``operations`` and the shapes they reach."""
    shapes = full["shapes"]
    keep: set[str] = set()

    def visit(name: str) -> None:
        if name in keep:
            return
        keep.add(name)
        shape = shapes[name]
        refs = [shape.get("member"), shape.get("key"), shape.get("value")]
        refs += list(shape.get("members", {}).values())
        for ref in refs:
            if ref:
                visit(ref["shape"])

    for operation in operations:
        model = full["operations"][operation]
        for part in ("input", "output"):
            if part in model:
                visit(model[part]["shape"])
        for error in model.get("errors", []):
            visit(error["shape"])
    metadata = dict(full["metadata"])
    metadata["x-mme-trimmed-from"] = f"botocore {botocore.__version__}"
    out = {key: value for key, value in full.items() if key not in ("operations", "shapes")}
    out["metadata"] = metadata
    out["operations"] = {name: full["operations"][name] for name in operations}
    out["shapes"] = {name: shapes[name] for name in sorted(keep)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    loader = botocore.loaders.create_loader()
    version = loader.determine_latest_version(SERVICE, "service-2")
    full = loader.load_service_model(SERVICE, "service-2", version)
    model = trimmed(full, SAGEMAKER_OPERATIONS)
    path = DATA_PATH / SERVICE / version / "service-2.json.gz"
    if args.check:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            same = json.load(f) == model
        print(f"{path}: {'up to date' if same else 'differs; run without --check'}")
        return 0 if same else 1
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(model, separators=(",", ":"))
    # mtime 0: the same botocore gives the same bytes.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(text.encode("utf-8"))
    print(f"wrote {path}: {len(model['operations'])} operations, {len(model['shapes'])} shapes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
