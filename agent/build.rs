//! Builds the eBPF programs (`agent-ebpf`) for the BPF target with the LLVM-22 nightly and
//! bpf-linker that `cargo xtask setup` installs; the object is embedded in the binary.
fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=AYA_BPF_TOOLCHAIN");
    let toolchain = std::env::var("AYA_BPF_TOOLCHAIN").unwrap_or_else(|_| "nightly".into());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../agent-ebpf");
    let package = aya_build::Package {
        name: "agent-ebpf",
        root_dir: root,
        ..Default::default()
    };
    aya_build::build_ebpf([package], aya_build::Toolchain::Custom(&toolchain))
}
