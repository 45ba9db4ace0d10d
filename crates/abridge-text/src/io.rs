//! Opening corpus and embedding files: plain, gzip or zstd, detected from the first bytes.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Compression of a file, from its magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    /// `1f 8b`
    Gzip,
    /// `28 b5 2f fd`
    Zstd,
}

/// An I/O failure, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct IoError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Detects the compression of `path` from its first four bytes.
pub fn detect(path: &Path) -> Result<Compression, IoError> {
    let mut f = File::open(path).map_err(|source| IoError {
        path: path.into(),
        source,
    })?;
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        match f.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(IoError {
                    path: path.into(),
                    source,
                })
            }
        }
    }
    Ok(if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Compression::Gzip
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Compression::Zstd
    } else {
        Compression::None
    })
}

/// A buffered reader over the decompressed content of `path`.
pub fn open(path: &Path) -> Result<Box<dyn BufRead + Send>, IoError> {
    let err = |source| IoError {
        path: path.into(),
        source,
    };
    let kind = detect(path)?;
    let f = File::open(path).map_err(err)?;
    const BUF: usize = 1 << 20;
    Ok(match kind {
        Compression::None => Box::new(BufReader::with_capacity(BUF, f)),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            BUF,
            flate2::read::MultiGzDecoder::new(BufReader::new(f)),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            BUF,
            zstd::stream::read::Decoder::new(f).map_err(err)?,
        )),
    })
}

/// The name without compression suffixes (`train.jsonl.zst` → `train.jsonl`), for format guessing.
pub fn base_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut s = name.as_str();
    for ext in [".gz", ".zst", ".zstd"] {
        if let Some(stripped) = s.strip_suffix(ext) {
            s = stripped;
        }
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn all_three_encodings_read_back_the_same_lines() {
        let dir = tempfile::tempdir().unwrap();
        let text = "first line\nsecond line\n";
        let plain = dir.path().join("a.txt");
        std::fs::write(&plain, text).unwrap();
        let gz = dir.path().join("b.bin"); // no telling extension: detected by content
        let mut e = flate2::write::GzEncoder::new(
            File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap();
        let zst = dir.path().join("c");
        std::fs::write(&zst, zstd::encode_all(text.as_bytes(), 3).unwrap()).unwrap();
        for (p, kind) in [
            (&plain, Compression::None),
            (&gz, Compression::Gzip),
            (&zst, Compression::Zstd),
        ] {
            assert_eq!(detect(p).unwrap(), kind);
            let mut s = String::new();
            open(p).unwrap().read_to_string(&mut s).unwrap();
            assert_eq!(s, text);
        }
        let missing = dir.path().join("nope");
        let e = open(&missing).err().unwrap();
        assert!(e.to_string().contains("nope"));
    }

    #[test]
    fn base_name_strips_compression() {
        assert_eq!(base_name(Path::new("/x/train.jsonl.zst")), "train.jsonl");
        assert_eq!(base_name(Path::new("d.tsv.gz")), "d.tsv");
        assert_eq!(base_name(Path::new("train.source")), "train.source");
    }
}
