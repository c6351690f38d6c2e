# writepath agent image: `docker build -t writepath .` (from the repository root).
#
# Build stage: the eBPF object needs LLVM 22, bpf-linker 0.13.0 built against it and an
# LLVM-22 nightly with rust-src — the same pins as `cargo xtask setup` (xtask/src/setup.rs),
# without the test tools.
FROM rust:1-bookworm AS build
ARG BPF_NIGHTLY=nightly-2026-05-20
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      llvm-22-dev libpolly-22-dev libzstd-dev zlib1g-dev build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN rustup toolchain install "$BPF_NIGHTLY" --profile minimal --component rust-src \
 && PATH=/usr/lib/llvm-22/bin:$PATH LLVM_PREFIX=/usr/lib/llvm-22 \
      cargo install bpf-linker --version 0.13.0 --locked --no-default-features --features llvm-22
WORKDIR /src
COPY . .
RUN AYA_BPF_TOOLCHAIN="$BPF_NIGHTLY" cargo build --release -p writepath --locked \
 && install -D -m 0755 target/release/writepath /out/writepath

# Runtime stage: glibc and CA certificates, nothing else (no shell, no package manager).
# The DaemonSet runs it as uid 0 with only CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE,
# CAP_DAC_READ_SEARCH (and CAP_SYS_RESOURCE) and a read-only root filesystem.
FROM gcr.io/distroless/cc-debian12
COPY --from=build /out/writepath /usr/local/bin/writepath
ENTRYPOINT ["/usr/local/bin/writepath"]
CMD ["agent"]
