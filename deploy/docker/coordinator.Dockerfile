# sf-coordinator (and sfctl, for `kubectl exec`) on Debian slim, non-root.
# Build from the repository root:
#   docker build -f deploy/docker/coordinator.Dockerfile -t sparse-frontier/coordinator .
# Stage 1 builds with the project's own dependency script on the same Debian release as
# the final stage, so the shared libraries it copies over match the final stage's glibc.
FROM debian:bookworm AS build
WORKDIR /src
COPY . .
RUN apt-get update -qq \
 && bash deploy/install-deps.sh \
 && cmake -S . -B /build -G Ninja -DSF_WITH_CUDA=OFF -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build --target sf_coordinator_main sfctl \
 && mkdir -p /out/bin \
 && cp /build/coordinator/sf-coordinator /build/cli/sfctl /out/bin/ \
 && bash deploy/docker/collect-libs.sh /out/lib /out/bin/sf-coordinator /out/bin/sfctl

FROM debian:bookworm-slim AS runtime
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/lib/ /usr/local/lib/sparse-frontier/
RUN echo /usr/local/lib/sparse-frontier > /etc/ld.so.conf.d/sparse-frontier.conf && ldconfig \
 && useradd --system --uid 10001 --home-dir /var/lib/sf --create-home sf
USER 10001
WORKDIR /var/lib/sf
# 50051: the gRPC API (TLS when given certificates); 50052: plaintext health service only.
EXPOSE 50051 50052
ENTRYPOINT ["/usr/local/bin/sf-coordinator"]
CMD ["--db", "/var/lib/sf/coordinator.db", "--listen", "127.0.0.1:50051"]
