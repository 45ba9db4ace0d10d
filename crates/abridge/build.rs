//! Embeds the default model (`models/default/`) when the `bundled` feature is on and the
//! repository has one, so that `Summarizer::bundled()` needs no files beside the program.

use std::path::Path;

const FILES: [&str; 5] = [
    "config.json",
    "generation_config.json",
    "tokenizer_config.json",
    "vocab.json",
    "model.safetensors",
];

const SELECTOR: [&str; 2] = ["selector.json", "selector.safetensors"];

fn main() {
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../../models/default");
    println!("cargo::rustc-check-cfg=cfg(bundled_model)");
    println!("cargo::rustc-check-cfg=cfg(bundled_selector)");
    println!("cargo::rerun-if-changed={}", dir.display());
    for f in FILES.iter().chain(&SELECTOR) {
        println!("cargo::rerun-if-changed={}", dir.join(f).display());
    }
    if std::env::var_os("CARGO_FEATURE_BUNDLED").is_none() {
        return;
    }
    if FILES.iter().all(|f| dir.join(f).is_file()) {
        println!("cargo::rustc-cfg=bundled_model");
        // The content selector is optional; both of its files or neither.
        if SELECTOR.iter().all(|f| dir.join(f).is_file()) {
            println!("cargo::rustc-cfg=bundled_selector");
        }
    }
}
