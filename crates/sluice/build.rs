//! Link settings of the `sluice` binary on x86-64 Linux.
//!
//! **Position-dependent.** A position-independent executable (the toolchain's
//! default) carries a relative relocation for every pointer in its read-only
//! data: about 90,000 in this binary. The loader reads all of them (2 MiB) and
//! writes every page of `.data.rel.ro` (1.4 MiB) at each start, before `main`.
//! Linked at a fixed address, the linker resolves them once: `sluice
//! --version` measured 10.6 MiB of RSS and 3.0 ms as a PIE, 7.2 MiB and 2.0 ms
//! without; a `helm template` of a small chart 17.0 against 12.8 MiB. Go links
//! Flux's controllers the same way by default. Libraries, heap and stack are
//! still placed at random addresses. `SLUICE_PIE=1` keeps the default. A
//! static build (`crt-static`, the image) is left to its own flags:
//! `scripts/image` asks for a static relocation model there.
//!
//! **The functions that run, placed together.** The binary's code is 48 MB;
//! a `helm template` runs about 2,400 of its functions (2.9 MB), and the
//! linker would scatter them over all of it, in the order of the crates.
//! Every page a process touches counts in its RSS, and the kernel maps up to
//! 64 KiB around each (fault-around), so a small chart's render touched 11.7
//! MiB of code for the little it ran. `symbol-order.txt` lists the functions
//! sluice runs (`scripts/symbol-order` writes it from callgrind profiles of
//! `helm template` and `build` over the Helm and kustomize corpora, of the
//! controller in a small `bench/vs-flux` run, of an idle controller and of
//! the HelmRelease controller alone, grouped by the kinds of work that ran
//! them, so that each kind touches few windows of 64 KiB), and the linker
//! (LLD, the toolchain's default linker here) places them first, in that
//! order: the render of traefik with a homelab's values measured 21.2 MiB of
//! RSS before, 12.3 after; podinfo 12.9 and 7.0. With the idle and
//! HelmRelease kinds, an idle HelmRelease controller went from 17.0 to 11.8
//! MiB and its peak in `bench/helmrelease` from about 42 to 35. Names the
//! binary no longer has (symbol names carry hashes that change with
//! dependency or toolchain updates) are
//! skipped, silently; `scripts/image` and `bench/helm/run` report how many
//! the binary has.
//! `SLUICE_SYMBOL_ORDER=0` turns it off, and it is off when another linker
//! is configured (`RUSTC_LINKER`, or `linker` flags in `RUSTFLAGS`).
fn main() {
    println!("cargo:rerun-if-env-changed=SLUICE_PIE");
    println!("cargo:rerun-if-env-changed=SLUICE_SYMBOL_ORDER");
    println!("cargo:rerun-if-changed=symbol-order.txt");
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let linux = env("CARGO_CFG_TARGET_OS") == "linux";
    let static_crt = env("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    if linux && !static_crt && env("SLUICE_PIE") != "1" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    // LLD is what the toolchain links x86-64 Linux GNU targets with by
    // default (since Rust 1.90); another linker may not know the option.
    let default_lld = linux
        && env("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && env("CARGO_CFG_TARGET_ENV") == "gnu"
        && env("RUSTC_LINKER").is_empty()
        && !["linker", "link-self-contained"]
            .iter()
            .any(|flag| env("CARGO_ENCODED_RUSTFLAGS").contains(flag));
    let release = env("PROFILE") == "release";
    if default_lld && release && env("SLUICE_SYMBOL_ORDER") != "0" {
        let order = std::path::Path::new(&env("CARGO_MANIFEST_DIR")).join("symbol-order.txt");
        if order.is_file() {
            println!(
                "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
                order.display()
            );
            println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
        }
    }
}
