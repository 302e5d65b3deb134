"""mme-operator: declarative SageMaker Multi-Model Endpoints on GPU, served by NVIDIA Triton."""

__version__ = "0.1.0"
