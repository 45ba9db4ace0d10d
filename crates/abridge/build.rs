//! Embeds the default model (`models/default/`) in the binary when the repository has one, so
//! that `abridge summarize` works with no `--model` and no files beside the binary.

use std::path::Path;

const FILES: [&str; 4] = [
    "config.json",
    "vocab.json",
    "model.safetensors",
    "manifest.json",
];

const SELECTOR: [&str; 2] = ["selector.json", "selector.safetensors"];

fn main() {
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../../models/default");
    println!("cargo::rustc-check-cfg=cfg(bundled_model)");
    println!("cargo::rerun-if-changed={}", dir.display());
    for f in FILES {
        println!("cargo::rerun-if-changed={}", dir.join(f).display());
    }
    if FILES.iter().all(|f| dir.join(f).is_file()) {
        println!("cargo::rustc-cfg=bundled_model");
    }
    // The content selector is optional; both of its files or neither.
    println!("cargo::rustc-check-cfg=cfg(bundled_selector)");
    for f in SELECTOR {
        println!("cargo::rerun-if-changed={}", dir.join(f).display());
    }
    if SELECTOR.iter().all(|f| dir.join(f).is_file()) {
        println!("cargo::rustc-cfg=bundled_selector");
    }
}
