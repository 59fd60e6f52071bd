//! Reading the files errbudget is pointed at (specs, settings, web config,
//! secrets, certificates) with bounds: only regular files, and at most a
//! size fixed per kind of file. Owns opening and reading; parsing belongs
//! to the callers, which get text or bytes.
//!
//! Why: `-c /dev/zero` or `bearer_token_file: /dev/zero` would read until
//! memory runs out, a FIFO would block `check` (and a reload) forever, and
//! `/dev/stdin` matched by a glob would wait for a terminal. The file is
//! opened with `O_NONBLOCK`, so even a FIFO swapped in after a check
//! cannot block the open, and it is refused unless `fstat` says it is a
//! regular file. The read stops one byte past the limit.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::diag::Diagnostic;

/// What a file is for, and how large it may be. The limits are far above
/// any real file of that kind and small enough that a mistake (a log, a
/// device, a core dump) is refused at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    pub what: &'static str,
    pub max_bytes: u64,
}

/// SLO spec files: a few hundred SLOs in one OpenSLO file stay under 1 MiB.
pub const SPEC: Kind = Kind {
    what: "spec files",
    max_bytes: 4 << 20,
};
/// The daemon's settings file.
pub const SETTINGS: Kind = Kind {
    what: "settings files",
    max_bytes: 1 << 20,
};
/// The exporter-toolkit web config.
pub const WEB_CONFIG: Kind = Kind {
    what: "web config files",
    max_bytes: 1 << 20,
};
/// The HTTP client file of `gate` and `healthcheck`.
pub const CLIENT_FILE: Kind = Kind {
    what: "HTTP client files",
    max_bytes: 1 << 20,
};
/// Password and token files.
pub const SECRET: Kind = Kind {
    what: "secret files",
    max_bytes: 64 << 10,
};
/// PEM certificates and keys (a CA bundle of a few hundred roots is ~250 KiB).
pub const PEM: Kind = Kind {
    what: "certificate and key files",
    max_bytes: 4 << 20,
};

/// Why a file could not be read. The messages name no content.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    NotRegular(&'static str),
    TooLarge(Kind),
    /// Not UTF-8: where the first bad byte is (1-based).
    NotUtf8 {
        line: usize,
        column: usize,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotRegular(kind) => write!(f, "{kind}, not a regular file"),
            ReadError::TooLarge(k) => write!(
                f,
                "larger than {}, the limit for {}",
                human_size(k.max_bytes),
                k.what
            ),
            ReadError::NotUtf8 { line, column } => {
                write!(f, "not UTF-8 text (line {line}, column {column})")
            }
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        None
    }
}

impl ReadError {
    /// The problem as a diagnostic of `file`: at the first bad byte for
    /// text that is not UTF-8, else about the file as a whole.
    pub fn diagnostic(&self, file: &str) -> Diagnostic {
        match self {
            ReadError::NotUtf8 { line, column } => {
                Diagnostic::new(file, *line, *column, "not UTF-8 text")
            }
            other => Diagnostic::whole_file(file, format!("cannot read: {other}")),
        }
    }
}

fn human_size(n: u64) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// Reads at most `kind.max_bytes` of a regular file.
pub fn read_bytes(path: &Path, kind: Kind) -> Result<Vec<u8>, ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    let ft = meta.file_type();
    if !ft.is_file() {
        return Err(ReadError::NotRegular(if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "a special file"
        }));
    }
    if meta.len() > kind.max_bytes {
        return Err(ReadError::TooLarge(kind));
    }
    read_limited(file, kind)
}

/// The read itself stops past the limit too: `/proc` files and files that
/// grow while being read report a smaller size than they deliver.
fn read_limited(file: File, kind: Kind) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    file.take(kind.max_bytes + 1)
        .read_to_end(&mut out)
        .map_err(ReadError::Io)?;
    if out.len() as u64 > kind.max_bytes {
        return Err(ReadError::TooLarge(kind));
    }
    Ok(out)
}

/// [`read_bytes`], as UTF-8 text.
pub fn read_text(path: &Path, kind: Kind) -> Result<String, ReadError> {
    let bytes = read_bytes(path, kind)?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        // `valid` is UTF-8 by construction; lossy only to avoid an unwrap.
        let text = String::from_utf8_lossy(valid);
        let line = text.matches('\n').count() + 1;
        let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ReadError::NotUtf8 { line, column }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TINY: Kind = Kind {
        what: "test files",
        max_bytes: 8,
    };

    #[test]
    fn regular_files_within_the_limit_are_read() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"12345678").unwrap();
        assert_eq!(read_text(f.path(), TINY).unwrap(), "12345678");
        f.write_all(b"9").unwrap();
        assert_eq!(
            read_text(f.path(), TINY).unwrap_err().to_string(),
            "larger than 8 bytes, the limit for test files"
        );
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_without_blocking() {
        let e = read_bytes(Path::new("/dev/zero"), SECRET).unwrap_err();
        assert_eq!(e.to_string(), "a character device, not a regular file");
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No writer: a blocking open would hang this test.
        let e = read_bytes(&fifo, SPEC).unwrap_err();
        assert_eq!(e.to_string(), "a FIFO, not a regular file");
        let e = read_bytes(dir.path(), SPEC).unwrap_err();
        assert_eq!(e.to_string(), "a directory, not a regular file");
    }

    #[test]
    fn non_utf8_names_the_position_of_the_first_bad_byte() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"a: 1\nb: x\xff\n").unwrap();
        match read_text(f.path(), SPEC) {
            Err(ReadError::NotUtf8 { line, column }) => assert_eq!((line, column), (2, 5)),
            other => panic!("{other:?}"),
        }
    }
}
