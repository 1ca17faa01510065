# syntax=docker/dockerfile:1
# k8swatch serve in a container: docker build -t k8swatch:latest .
# deploy/aggregated/ runs it as an aggregated API server
# (docs/how-to/deploy-aggregated.md).

ARG PYTHON_VERSION=3.12

# --- build: a wheel of this checkout ------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- runtime: the wheel with the serve extra (uvicorn, httpx, prometheus-client),
# the Redis backend and orjson, in a virtualenv; no compiler, no pip cache --------
FROM python:${PYTHON_VERSION}-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/k8swatch/bin:$PATH
COPY --from=build /wheels /wheels
RUN python -m venv /opt/k8swatch \
    && /opt/k8swatch/bin/pip install --no-cache-dir \
        "$(ls /wheels/k8swatch-*.whl)[serve,redis,fast]" \
    && rm -rf /wheels
# The same uid/gid as the Deployment's securityContext (runAsNonRoot).
RUN groupadd --system --gid 65532 k8swatch \
    && useradd --system --uid 65532 --gid 65532 --no-create-home k8swatch
USER 65532:65532
EXPOSE 6443
ENTRYPOINT ["k8swatch"]
# The Deployment gives the flags (deploy/aggregated/deployment.yaml).
CMD ["serve", "--help"]
