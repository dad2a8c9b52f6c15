#!/usr/bin/env bash
# Promotes the image CI built from the registry it was pushed to (staging's ACR) into another
# environment's registry (production's ACR), byte for byte: same manifests, same digest. The
# image is built once; production runs exactly what staging ran. deploy.yml calls this before
# `helm upgrade`; it does nothing when both registries are the same (GHCR, or one shared ACR).
#
#   SOURCE_REGISTRY=acrstaging.azurecr.io TARGET_REGISTRY=acrprod.azurecr.io \
#     IMAGE_TAG=<sha> IMAGE_DIGEST=sha256:... .github/scripts/promote-image.sh
#
# Both registries must already be logged in (`az acr login`); skopeo reads Docker's
# credentials. The deploy identity needs AcrPull on the source and AcrPush on the target.
#
# Environment:
#   SOURCE_REGISTRY    registry the image is in                                  required
#   TARGET_REGISTRY    registry the environment pulls from                       required
#   IMAGE_TAG          tag to give it in the target (the commit SHA)             required
#   IMAGE_DIGEST       sha256:... of the image (copied by digest, then checked)  required
#   IMAGE_REPOSITORY   repository name in both registries                        default taskstream
set -euo pipefail

: "${SOURCE_REGISTRY:?SOURCE_REGISTRY is required}"
: "${TARGET_REGISTRY:?TARGET_REGISTRY is required}"
: "${IMAGE_TAG:?IMAGE_TAG is required}"
: "${IMAGE_DIGEST:?IMAGE_DIGEST is required}"
IMAGE_REPOSITORY="${IMAGE_REPOSITORY:-taskstream}"

if [[ "$SOURCE_REGISTRY" == "$TARGET_REGISTRY" ]]; then
    echo "==> image already in $TARGET_REGISTRY: nothing to promote"
    exit 0
fi

if ! command -v skopeo >/dev/null 2>&1; then
    echo "==> installing skopeo"
    sudo apt-get update -qq
    sudo apt-get install -y -qq skopeo
fi

source_ref="docker://$SOURCE_REGISTRY/$IMAGE_REPOSITORY@$IMAGE_DIGEST"
target_ref="docker://$TARGET_REGISTRY/$IMAGE_REPOSITORY:$IMAGE_TAG"
echo "==> copying $source_ref to $target_ref"
# --all: the whole index (image plus its provenance/SBOM attestations);
# --preserve-digests: fail rather than re-encode anything.
skopeo copy --all --preserve-digests --retry-times 3 "$source_ref" "$target_ref"

copied="sha256:$(skopeo inspect --raw "$target_ref" | sha256sum | cut -d' ' -f1)"
if [[ "$copied" != "$IMAGE_DIGEST" ]]; then
    echo "::error::promoted image has digest $copied, expected $IMAGE_DIGEST"
    exit 1
fi
echo "==> $TARGET_REGISTRY/$IMAGE_REPOSITORY:$IMAGE_TAG is $IMAGE_DIGEST"
