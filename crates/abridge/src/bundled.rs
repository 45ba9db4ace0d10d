//! The default model, embedded when this crate is built with the `bundled` feature and
//! `models/default/` exists.

use crate::error::Result;
use crate::folder::ModelFolder;

#[cfg(bundled_model)]
mod files {
    macro_rules! file {
        ($name:literal) => {
            (
                $name,
                include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../models/default/",
                    $name
                )) as &[u8],
            )
        };
    }
    pub const FILES: &[(&str, &[u8])] = &[
        file!("config.json"),
        file!("generation_config.json"),
        file!("tokenizer_config.json"),
        file!("vocab.json"),
        file!("model.safetensors"),
        #[cfg(bundled_selector)]
        file!("selector.json"),
        #[cfg(bundled_selector)]
        file!("selector.safetensors"),
    ];
}

/// Whether this build carries the bundled model.
pub const AVAILABLE: bool = cfg!(bundled_model);

/// The bundled model folder, read from the embedded bytes.
pub fn folder() -> Result<ModelFolder> {
    #[cfg(bundled_model)]
    {
        ModelFolder::from_files(std::path::Path::new("<bundled model>"), |name| {
            Ok(files::FILES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, b)| std::borrow::Cow::Borrowed(*b)))
        })
    }
    #[cfg(not(bundled_model))]
    {
        Err(crate::error::Error::NoBundledModel)
    }
}
