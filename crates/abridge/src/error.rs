//! The library's one error type: every variant names what was wrong and where.

use std::path::{Path, PathBuf};

use abridge_text::vocab::VocabError;

/// Why a model could not be loaded or written, or a request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file of a model folder is malformed, of another version, or inconsistent with the rest.
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
    #[error(transparent)]
    Vocab(#[from] VocabError),
    /// A decoding option is out of range; `field` is its name in [`crate::DecodeOptions`] (the
    /// HTTP request field and, with `-` for `_`, the CLI flag).
    #[error("`{field}`: {message}")]
    Option {
        field: &'static str,
        message: String,
    },
    /// The text has no words to summarize.
    #[error("the document has no words")]
    EmptyDocument,
    /// This build carries no bundled model.
    #[error(
        "this build carries no bundled model (built without the `bundled` feature, or \
         models/default was missing when it was compiled); open a model folder instead"
    )]
    NoBundledModel,
    /// The model could not run on the input (a shape or consistency error inside the network).
    #[error("{0}")]
    Model(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(path: &Path, msg: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// An equal error for another document of the same batch (I/O errors become their message).
    pub fn duplicate(&self) -> Self {
        match self {
            Self::Option { field, message } => Self::option(field, message.clone()),
            Self::EmptyDocument => Self::EmptyDocument,
            Self::NoBundledModel => Self::NoBundledModel,
            Self::Invalid { path, msg } => Self::invalid(path, msg.clone()),
            other => Self::Model(other.to_string()),
        }
    }

    pub(crate) fn option(field: &'static str, message: impl Into<String>) -> Self {
        Self::Option {
            field,
            message: message.into(),
        }
    }
}

/// Maps an I/O error to [`Error::Io`] naming `path`.
pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.into(),
        source,
    }
}

impl From<abridge_model::ModelError> for Error {
    fn from(e: abridge_model::ModelError) -> Self {
        Self::Model(e.to_string())
    }
}

impl From<abridge_model::SelectorError> for Error {
    fn from(e: abridge_model::SelectorError) -> Self {
        Self::Model(e.to_string())
    }
}
