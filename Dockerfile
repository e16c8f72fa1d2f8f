# kubemon's container image, for Docker/BuildKit users; hack/image.sh builds
# the same image without a Docker daemon.
#
#   docker build -t REGISTRY/kubemon:TAG \
#     --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg REVISION=$(git rev-parse HEAD) .
#
# A static binary at /kubemon on an empty base (plus /tmp), run as
# 65534:65534 (nobody); `docker run IMAGE` runs `kubemon serve`.

FROM golang:1.26 AS build
ARG VERSION=dev
ARG REVISION
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN mkdir -p /rootfs/tmp && chmod 1777 /rootfs/tmp \
 && CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/kubemon/kubemon/internal/version.Version=${VERSION} -X github.com/kubemon/kubemon/internal/version.Revision=${REVISION}" \
      -o /rootfs/kubemon ./cmd/kubemon

FROM scratch
ARG VERSION=dev
ARG REVISION
LABEL org.opencontainers.image.title="kubemon" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/kubemon/kubemon"
COPY --from=build /rootfs/ /
USER 65534:65534
ENTRYPOINT ["/kubemon"]
CMD ["serve"]
