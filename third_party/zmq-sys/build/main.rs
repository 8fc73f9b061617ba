//! Builds the bundled libzmq (zeromq-src) with CURVE, over the system's libsodium.
//!
//! Upstream zmq-sys builds libzmq without CURVE (it will not use libzmq's tweetnacl, which was
//! never audited, and it ships no libsodium). bonnie needs CURVE, so this copy finds libsodium
//! through pkg-config (Debian: `apt-get install libsodium-dev`), or through
//! `SODIUM_INCLUDE_DIR` and `SODIUM_LIB_DIR`, and links it statically.

extern crate pkg_config;
extern crate zeromq_src;

use std::env;
use std::path::PathBuf;

fn libsodium() -> zeromq_src::LibLocation {
    if let (Some(include), Some(lib)) = (
        env::var_os("SODIUM_INCLUDE_DIR"),
        env::var_os("SODIUM_LIB_DIR"),
    ) {
        return zeromq_src::LibLocation::new(PathBuf::from(lib), PathBuf::from(include));
    }
    // Only the paths: zeromq-src prints the link line (static) itself.
    match pkg_config::Config::new()
        .atleast_version("1.0.3")
        .cargo_metadata(false)
        .probe("libsodium")
    {
        Ok(found) => {
            let include = found
                .include_paths
                .first()
                .cloned()
                .unwrap_or_else(|| PathBuf::from("/usr/include"));
            let lib = found
                .link_paths
                .first()
                .cloned()
                .or_else(|| {
                    pkg_config::get_variable("libsodium", "libdir")
                        .ok()
                        .map(PathBuf::from)
                })
                .unwrap_or_else(|| PathBuf::from("/usr/lib"));
            zeromq_src::LibLocation::new(lib, include)
        }
        Err(e) => panic!(
            "libzmq needs libsodium for CURVE (bonnie's authenticated transport), and it was \
             not found: {}. On Debian: apt-get install libsodium-dev (scripts/test and \
             scripts/run do it). Or set SODIUM_INCLUDE_DIR and SODIUM_LIB_DIR.",
            e
        ),
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build/main.rs");
    println!("cargo:rerun-if-env-changed=PROFILE");
    println!("cargo:rerun-if-env-changed=SODIUM_INCLUDE_DIR");
    println!("cargo:rerun-if-env-changed=SODIUM_LIB_DIR");
    let sodium = libsodium();
    // zeromq-src prints this path quoted (`{:?}`), which rustc does not read as a path.
    println!(
        "cargo:rustc-link-search=native={}",
        sodium.lib_dir().display()
    );
    zeromq_src::Build::new().with_libsodium(Some(sodium)).build();
}
