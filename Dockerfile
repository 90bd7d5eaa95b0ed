# One image for `devmesh serve`, `devmesh worker` and `devmesh mcp` (the command picks).
# Build:  docker build -t devmesh .      Run:  docker compose up  (docs/deployment.md)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage: the wheel from this checkout plus the locked runtime dependencies, into
# /opt/devmesh, by the same script the test suite runs (scripts/install-runtime).
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 UV_NO_PROGRESS=1
RUN python3 -m pip install uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY scripts/uv scripts/install-runtime scripts/
COPY devmesh/ devmesh/
RUN bash scripts/install-runtime /opt/devmesh python3

# Final stage: the same base image (so the venv's interpreter path holds), the venv,
# and nothing else: no uv, no compiler, no source tree. Runs as a non-root user.
FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/devmesh --create-home devmesh
COPY --from=build /opt/devmesh /opt/devmesh
ENV PATH=/opt/devmesh/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DEVMESH_DATA_DIR=/var/lib/devmesh \
    DEVMESH_HOST=0.0.0.0 \
    DEVMESH_PORT=8081
USER devmesh
WORKDIR /var/lib/devmesh
VOLUME ["/var/lib/devmesh"]
EXPOSE 8081
# Liveness only (/healthz): the process answers. Readiness (/readyz) also asks the
# database and Redis, which a container restart would not fix.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('DEVMESH_PORT', '8081') + '/healthz', timeout=2)"]
# SIGTERM is the graceful stop for every command (docs/deployment.md).
STOPSIGNAL SIGTERM
ENTRYPOINT ["devmesh"]
CMD ["serve"]
