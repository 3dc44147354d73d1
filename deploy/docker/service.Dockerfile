# syntax=docker/dockerfile:1
# One image per coursemesh service, built from the workspace's uv.lock.
#
#   docker build -f deploy/docker/service.Dockerfile --build-arg SERVICE=catalog -t coursemesh/catalog .
#
# SERVICE is the distribution suffix: catalog | commerce | learning | customgen | integrations.
# The same image runs the migration job with another command:
#   python -m coursemesh.chassis.migrate <service>      (service name: catalog ... custom-gen)
# Build context: the repository root (paths filtered by service.Dockerfile.dockerignore).

ARG PYTHON_VERSION=3.12
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# --- builder: resolve and install one service's locked dependencies into /app/.venv ----------
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
ARG SERVICE=catalog
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src

# Dependencies first (a layer that changes only with the lock): uv needs every workspace
# member's pyproject.toml to read the workspace, but none of their sources.
COPY pyproject.toml uv.lock ./
COPY libs/contracts/pyproject.toml libs/contracts/pyproject.toml
COPY libs/chassis/pyproject.toml libs/chassis/pyproject.toml
COPY libs/devstack/pyproject.toml libs/devstack/pyproject.toml
COPY services/catalog/pyproject.toml services/catalog/pyproject.toml
COPY services/commerce/pyproject.toml services/commerce/pyproject.toml
COPY services/learning/pyproject.toml services/learning/pyproject.toml
COPY services/custom-gen/pyproject.toml services/custom-gen/pyproject.toml
COPY services/integrations/pyproject.toml services/integrations/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package "coursemesh-${SERVICE}"

# Then the workspace packages themselves, installed as wheels (not editable), so the runtime
# stage needs nothing but the virtual environment.
COPY libs libs
COPY services services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package "coursemesh-${SERVICE}"

# --- runtime: slim Python, the venv, an unprivileged user -------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG SERVICE=catalog
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app
COPY --from=builder /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    COURSEMESH_APP=coursemesh.${SERVICE}.main:create_app \
    PORT=8000
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '8000'), timeout=3)"]
CMD ["sh", "-c", "exec python -m uvicorn --factory \"$COURSEMESH_APP\" --host 0.0.0.0 --port \"$PORT\" --no-access-log"]
