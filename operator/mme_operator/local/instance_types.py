"""The SageMaker hosting instance types the local SageMaker knows, with their hardware.

Figures are AWS's published ones (vCPUs, host memory in GiB, GPUs and memory per GPU in
GiB). An endpoint config naming a type missing here makes the endpoint go ``Failed``, as
real SageMaker fails an endpoint it cannot place.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class InstanceType:
    """Hardware of one SageMaker hosting instance type."""

    name: str
    vcpus: int
    memory_gib: float
    gpus: int = 0
    gpu_memory_gib: float = 0.0
    """Memory of one GPU."""

    @property
    def total_gpu_memory_gib(self) -> float:
        """GPU memory of all the instance's GPUs together."""
        return self.gpus * self.gpu_memory_gib

    @property
    def model_memory_bytes(self) -> int:
        """Memory that holds loaded models: the GPUs' on a GPU type, host memory otherwise."""
        gib = self.total_gpu_memory_gib if self.gpus else self.memory_gib
        return int(gib * GIB)


def _family(
    prefix: str, sizes: dict[str, tuple[int, float, int]], gpu_memory_gib: float = 0.0
) -> dict[str, InstanceType]:
    return {
        f"{prefix}.{size}": InstanceType(f"{prefix}.{size}", vcpus, mem, gpus, gpu_memory_gib)
        for size, (vcpus, mem, gpus) in sizes.items()
    }


INSTANCE_TYPES: dict[str, InstanceType] = {
    # NVIDIA T4, 16 GiB.
    **_family(
        "ml.g4dn",
        {
            "xlarge": (4, 16, 1),
            "2xlarge": (8, 32, 1),
            "4xlarge": (16, 64, 1),
            "8xlarge": (32, 128, 1),
            "12xlarge": (48, 192, 4),
            "16xlarge": (64, 256, 1),
        },
        16,
    ),
    # NVIDIA A10G, 24 GiB.
    **_family(
        "ml.g5",
        {
            "xlarge": (4, 16, 1),
            "2xlarge": (8, 32, 1),
            "4xlarge": (16, 64, 1),
            "8xlarge": (32, 128, 1),
            "12xlarge": (48, 192, 4),
            "16xlarge": (64, 256, 1),
            "24xlarge": (96, 384, 4),
            "48xlarge": (192, 768, 8),
        },
        24,
    ),
    # NVIDIA L4, 24 GiB.
    **_family(
        "ml.g6",
        {
            "xlarge": (4, 16, 1),
            "2xlarge": (8, 32, 1),
            "4xlarge": (16, 64, 1),
            "8xlarge": (32, 128, 1),
            "12xlarge": (48, 192, 4),
            "16xlarge": (64, 256, 1),
            "24xlarge": (96, 384, 4),
            "48xlarge": (192, 768, 8),
        },
        24,
    ),
    # NVIDIA L40S, 48 GiB.
    **_family(
        "ml.g6e",
        {
            "xlarge": (4, 32, 1),
            "2xlarge": (8, 64, 1),
            "4xlarge": (16, 128, 1),
            "8xlarge": (32, 256, 1),
            "12xlarge": (48, 384, 4),
            "16xlarge": (64, 512, 1),
            "24xlarge": (96, 768, 4),
            "48xlarge": (192, 1536, 8),
        },
        48,
    ),
    # NVIDIA A100 40 GiB and H100 80 GiB.
    **_family("ml.p4d", {"24xlarge": (96, 1152, 8)}, 40),
    **_family("ml.p5", {"48xlarge": (192, 2048, 8)}, 80),
    **_family(
        "ml.m5",
        {
            "large": (2, 8, 0),
            "xlarge": (4, 16, 0),
            "2xlarge": (8, 32, 0),
            "4xlarge": (16, 64, 0),
            "12xlarge": (48, 192, 0),
            "24xlarge": (96, 384, 0),
        },
    ),
    **_family(
        "ml.c5",
        {
            "large": (2, 4, 0),
            "xlarge": (4, 8, 0),
            "2xlarge": (8, 16, 0),
            "4xlarge": (16, 32, 0),
            "9xlarge": (36, 72, 0),
            "18xlarge": (72, 144, 0),
        },
    ),
}
