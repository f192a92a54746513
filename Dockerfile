# syntax=docker/dockerfile:1
# seccomp-operator image: one image for both roles.
#   controller: seccomp-operator controller   (runs as the default non-root user 65532)
#   agent:      seccomp-operator agent ...    (its DaemonSet sets runAsUser: 0, no capabilities)

# --- builder: build the wheels and install them into a self-contained venv -------------
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only what the package build needs (see .dockerignore); README.md is the package's readme.
COPY pyproject.toml README.md* ./
COPY operator/ operator/
RUN pip wheel --wheel-dir /wheels . \
 && python -m venv /opt/seccomp-operator \
 && /opt/seccomp-operator/bin/pip install --no-index --find-links /wheels seccomp-operator \
 && /opt/seccomp-operator/bin/seccomp-operator --version

# --- final: the runtime, libseccomp and the venv; nothing to compile, no pip cache -----
FROM python:3.11-slim
LABEL org.opencontainers.image.title="seccomp-operator" \
      org.opencontainers.image.description="Installs SeccompProfile resources as seccomp files on every node and reports the rollout per node" \
      org.opencontainers.image.licenses="Apache-2.0"
# libseccomp2: the agent and the render tool compile profiles with it (pyseccomp loads it
# with ctypes) to check syscall names per architecture the way runc does.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libseccomp2 \
 && rm -rf /var/lib/apt/lists/*
# The venv is copied to the same path: its scripts carry absolute shebangs.
COPY --from=builder /opt/seccomp-operator /opt/seccomp-operator
ENV PATH=/opt/seccomp-operator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Non-root by default (the "nonroot" uid/gid of distroless images); the controller keeps
# it, the agent's pod spec overrides it with uid 0 and drops every capability.
USER 65532:65532
ENTRYPOINT ["seccomp-operator"]
CMD ["--help"]
