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
# Push REPOSITORY:<hash> to your registry (ECR) for a real deployment.
set -euo pipefail
cd "$(dirname "$0")/../.."

repository="${1:-local/deploy-assets}"
base="${BASE_IMAGE:-local/debian-py:bookworm}"
python="${PYTHON:-.venv/bin/python}"
dockerfile=misc/dockerfiles/code-location.Dockerfile
sources=(deploy_assets misc/configs misc/dockerfiles pyproject.toml workspace.yaml)

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
"$python" -m pip wheel --quiet --wheel-dir "$ctx/wheels" "$ctx/src" 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true
ls "$ctx"/wheels/dagster-*.whl >/dev/null  # the resolver failed if dagster is missing
rm -f "$ctx"/wheels/deploy_assets-*.whl    # the image holds the source tree instead
echo "docker build $image from $base ($(du -sh "$ctx/wheels" | cut -f1) of wheels) ..."
docker build --file "$dockerfile" --build-arg "BASE_IMAGE=$base" \
  --tag "$image" --tag "$repository:latest" "$ctx"
# Earlier builds of this repository are a gigabyte each on a vfs engine: drop their tags (an
# image a container still uses stays), and the layers only they used go with them.
docker image ls --format '{{.Repository}}:{{.Tag}}' "$repository" | grep -E ':[0-9a-f]{16}$' | grep -vxF "$image" \
  | while read -r old; do docker image rm "$old" >/dev/null 2>&1 || true; done
echo "code-location image $image built in $((SECONDS - start)) s"
echo "$image"
