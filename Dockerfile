# writepath agent image: `docker build -t writepath .` (from the repository root).
# Build stage: the eBPF object needs an LLVM nightly with rust-src and bpf-linker; `cargo xtask
# setup` installs exactly the toolchain the repository pins.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo run -p xtask -- setup \
 && cargo build --release -p writepath --locked \
 && install -D -m 0755 target/release/writepath /out/writepath

# Runtime stage: glibc, CA certificates, nothing else (no shell, no package manager).
# The DaemonSet runs it as uid 0 with only CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE,
# CAP_DAC_READ_SEARCH (and CAP_SYS_RESOURCE) and a read-only root filesystem.
FROM gcr.io/distroless/cc-debian12
COPY --from=build /out/writepath /usr/local/bin/writepath
ENTRYPOINT ["/usr/local/bin/writepath"]
CMD ["agent"]
