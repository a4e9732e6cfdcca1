//! Links the `sluice` binary as a position-dependent executable on Linux.
//!
//! A position-independent executable (the toolchain's default) carries a
//! relative relocation for every pointer in its read-only data: about 90,000
//! in this binary. The loader reads all of them (2 MiB) and writes every page
//! of `.data.rel.ro` (1.4 MiB) at each start, before `main`. Linked at a fixed
//! address, the linker resolves them once: `sluice --version` measured 10.6
//! MiB of RSS and 3.0 ms as a PIE, 7.2 MiB and 2.0 ms without; a `helm
//! template` of a small chart 17.0 against 12.8 MiB. Go links Flux's
//! controllers the same way by default. Libraries, heap and stack are still
//! placed at random addresses.
//!
//! `SLUICE_PIE=1` keeps the default. A static build (`crt-static`, the image)
//! is left to its own flags: `scripts/image` asks for a static relocation
//! model there.
fn main() {
    println!("cargo:rerun-if-env-changed=SLUICE_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let static_crt = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .is_ok_and(|f| f.split(',').any(|f| f == "crt-static"));
    let keep_pie = std::env::var("SLUICE_PIE").is_ok_and(|v| v == "1");
    if linux && !static_crt && !keep_pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
