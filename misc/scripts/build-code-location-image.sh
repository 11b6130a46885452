#!/usr/bin/env bash
# Build the Dagster code-location image from misc/dockerfiles/code-location.Dockerfile.
#
#   misc/scripts/build-code-location-image.sh [REPOSITORY]   default REPOSITORY: local/deploy-assets
#
# Prints the image reference on its last line: REPOSITORY:<content hash> (also tagged :latest).
# The tag is a hash of what goes into the image (code, configs, pyproject, Dockerfile, base
# image id), so an unchanged tree reuses the image it built before (REBUILD=1 forces a build).
# Dependencies become wheels on the host (`pip wheel`, through the host's pip configuration and
# cache) and are installed in the image with --no-index: the build itself needs no network.
# Push REPOSITORY:<hash> to your registry (ECR) for a real deployment. Works on a machine that
# never built it before (no earlier image to clean up).
set -euo pipefail

# Earlier builds of a repository are a gigabyte each on a vfs engine: drop their tags (an image a
# container still uses stays), and the layers only they used go with them. No earlier build (a
# fresh machine) is the normal case, not an error: no grep whose "no match" would fail the build.
drop_earlier_images() {  # REPOSITORY KEEP
  local ref
  while read -r ref; do
    if [[ "$ref" =~ :[0-9a-f]{16}$ && "$ref" != "$2" ]]; then
      docker image rm "$ref" >/dev/null 2>&1 || true
    fi
  done < <(docker image ls --format '{{.Repository}}:{{.Tag}}' "$1")
}

# The project's dependencies as wheels; pip's output is shown (minus one known-noise line) and
# its failure is the script's, named, not hidden behind the filter.
build_wheels() {  # PYTHON SRC WHEELS
  local log="$3.log" status=0
  mkdir -p "$3"
  "$1" -m pip wheel --quiet --wheel-dir "$3" "$2" >"$log" 2>&1 || status=$?
  grep -v "is ignored: it is neither a file nor a directory" "$log" || true
  if [ "$status" != 0 ]; then
    echo "build-code-location-image: pip wheel failed (exit $status): check the pip configuration/index of $1" >&2
    exit 1
  fi
  if ! compgen -G "$3/dagster-*.whl" >/dev/null; then
    echo "build-code-location-image: pip wheel made no dagster wheel in $3: the resolver failed" >&2
    exit 1
  fi
  rm -f "$3"/deploy_assets-*.whl    # the image holds the source tree instead
}

main() {
  cd "$(dirname "$0")/../.."
  local repository="${1:-local/deploy-assets}"
  local base="${BASE_IMAGE:-local/debian-py:bookworm}"
  local python="${PYTHON:-.venv/bin/python}"
  local dockerfile=misc/dockerfiles/code-location.Dockerfile
  local sources=(deploy_assets misc/configs misc/dockerfiles pyproject.toml workspace.yaml)
  local base_id hash image start

  base_id="$(docker image inspect -f '{{.Id}}' "$base" 2>/dev/null)" || {
    echo "build-code-location-image: base image $base is missing: run misc/scripts/build-base-image.sh" >&2
    exit 1
  }
  hash="$( { echo "$base_id"; find "${sources[@]}" "$dockerfile" -type f ! -path '*/__pycache__/*' \
            ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16)"
  image="$repository:$hash"
  if [ -z "${REBUILD:-}" ] && docker image inspect "$image" >/dev/null 2>&1; then
    echo "code-location image $image exists (REBUILD=1 to rebuild)"
    echo "$image"
    exit 0
  fi

  start=$SECONDS
  ctx="$(mktemp -d "${TMPDIR:-/tmp}/deploy-assets-image.XXXXXX")"
  trap 'rm -rf "$ctx"' EXIT
  mkdir -p "$ctx/src/misc"
  cp -r deploy_assets "$ctx/src/"
  cp -r misc/configs misc/dockerfiles "$ctx/src/misc/"
  cp pyproject.toml workspace.yaml "$ctx/src/"
  find "$ctx/src" -name __pycache__ -prune -exec rm -rf {} +
  echo "pip wheel: the project's dependencies for the image ..."
  build_wheels "$python" "$ctx/src" "$ctx/wheels"
  echo "docker build $image from $base ($(du -sh "$ctx/wheels" | cut -f1) of wheels) ..."
  docker build --file "$dockerfile" --build-arg "BASE_IMAGE=$base" \
    --tag "$image" --tag "$repository:latest" "$ctx"
  drop_earlier_images "$repository" "$image"
  echo "code-location image $image built in $((SECONDS - start)) s"
  echo "$image"
}

# Sourced (the tests call drop_earlier_images alone), it only defines the functions.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
