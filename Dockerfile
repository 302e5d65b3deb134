# syntax=docker/dockerfile:1
# mme-operator image: `docker build -t mme-operator:0.1.0 .`
#
# Builder: build the project's wheel only (no dependencies), so the runtime stage gets
# exactly the files the package declares and no source tree, tests or build tools.
FROM python:3.11-slim AS builder
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md* ./
COPY operator/ operator/
RUN pip wheel --no-deps --wheel-dir /wheels .

# Runtime: the wheel and its own dependencies from PyPI (no extras: no local stand-ins,
# no tritonserver, no test tools), run as an unprivileged user.
FROM python:3.11-slim
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MME_WORK_DIR=/tmp
COPY --from=builder /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels \
    && groupadd --system --gid 10001 mme \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin mme
# Numeric user, so Kubernetes' runAsNonRoot can verify it without resolving a name.
USER 10001:10001
WORKDIR /tmp
# 8080: Prometheus metrics; 8081: kopf's liveness endpoint (/healthz); 8082: /readyz.
EXPOSE 8080 8081 8082
ENTRYPOINT ["mme-operator", "run"]
CMD ["--all-namespaces", "--standalone", "--liveness=http://0.0.0.0:8081/healthz"]
