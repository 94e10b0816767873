# sf-worker on NVIDIA's CUDA runtime image, non-root. Build from the repository root:
#   docker build -f deploy/docker/worker.Dockerfile -t sparse-frontier/worker .
# Stage 1 builds on Debian 12 (the project's platform) with CUDA 13 from NVIDIA's
# Debian 12 repository; the final stage takes the binary and the non-CUDA libraries it
# loads. CUDA_RUNTIME_IMAGE must carry the CUDA 13 runtime and cuBLAS (a -runtime- tag).
ARG CUDA_RUNTIME_IMAGE=nvidia/cuda:13.0.1-runtime-ubuntu24.04
FROM debian:bookworm AS build
ARG CUDA_VERSION_DASHED=13-0
ARG SF_CUDA_GENCODE=arch=compute_90a,code=sm_90a
WORKDIR /src
COPY . .
ADD https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb /tmp/cuda-keyring.deb
RUN dpkg -i /tmp/cuda-keyring.deb \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      cuda-nvcc-${CUDA_VERSION_DASHED} cuda-cudart-dev-${CUDA_VERSION_DASHED} cuda-cccl-${CUDA_VERSION_DASHED} \
      libcublas-dev-${CUDA_VERSION_DASHED} \
 && bash deploy/install-deps.sh \
 && cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSF_WITH_CUDA=ON \
      -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc "-DSF_CUDA_GENCODE=${SF_CUDA_GENCODE}" \
 && cmake --build /build --target sf-worker \
 && mkdir -p /out/bin \
 && cp /build/worker/sf-worker /out/bin/ \
 && bash deploy/docker/collect-libs.sh /out/lib /out/bin/sf-worker

FROM ${CUDA_RUNTIME_IMAGE} AS runtime
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/lib/ /usr/local/lib/sparse-frontier/
RUN echo /usr/local/lib/sparse-frontier > /etc/ld.so.conf.d/sparse-frontier.conf && ldconfig \
 && useradd --system --uid 10001 --home-dir /var/lib/sf --create-home sf
USER 10001
# The outbox lives here: mount a volume (or an emptyDir) on it.
WORKDIR /var/lib/sf
ENTRYPOINT ["/usr/local/bin/sf-worker"]
