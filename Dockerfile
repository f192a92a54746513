# syntax=docker/dockerfile:1
# seccomp-operator image: one image for both roles.
#   controller: seccomp-operator controller   (runs as the default non-root user 65532)
#   agent:      seccomp-operator agent ...    (its DaemonSet sets runAsUser: 0, no capabilities)

# Both stages use Debian 12 (bookworm, glibc 2.36) with CPython 3.11, the platform the
# agent's own seccomp profile (operator/seccomp_operator/data/agent-seccomp.json) was
# recorded on: the profile allows what the agent's code path calls on that libc, plus a
# documented margin (seccomp_operator/selfprofile.py, MARGIN), not what a newer glibc
# might call.  So the Debian release is pinned: the unsuffixed python:3.11-slim tag is an
# alias of 3.11-slim-trixie (Debian 13, glibc 2.41) in docker-library/official-images
# (library/python).  Moving to another release means re-recording the profile there
# (`seccomp-operator self-profile record`) and running the tests that run the agent in a
# container under it (tests/test_agent_profile.py).

# --- builder: build the wheels and install them into a self-contained venv -------------
FROM python:3.11-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only what the package build needs (see .dockerignore); README.md is the package's readme.
COPY pyproject.toml README.md* ./
COPY operator/ operator/
RUN pip wheel --wheel-dir /wheels . \
 && python -m venv /opt/seccomp-operator \
 && /opt/seccomp-operator/bin/pip install --no-index --find-links /wheels seccomp-operator \
 && /opt/seccomp-operator/bin/seccomp-operator --version \
 && /opt/seccomp-operator/bin/seccomp-operator self-profile show >/dev/null

# --- final: the runtime, libseccomp and the venv; nothing to compile, no pip cache -----
FROM python:3.11-slim-bookworm
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
# it, the agent's pod spec overrides it with uid 0 and drops every capability.  The
# agent's init container runs `seccomp-operator self-profile install`, which writes the
# profile packaged above to the node before the agent container starts under it.
USER 65532:65532
ENTRYPOINT ["seccomp-operator"]
CMD ["--help"]
