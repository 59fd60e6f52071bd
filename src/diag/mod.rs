//! `Diagnostic`: one user-facing problem in a settings or spec file, printed
//! as `file:line:column: message` (the form editors and CI annotations jump
//! to). Owns the wording of positions only, never the messages themselves.

use std::fmt;

pub mod yaml;

/// One problem found while loading a file. `line` and `column` are 1-based;
/// both are 0 when the problem concerns the file as a whole (it cannot be
/// read, a glob matched nothing) and then `Display` leaves them out.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: &str, line: usize, column: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }

    /// A problem with the file as a whole, e.g. it cannot be read.
    pub fn whole_file(file: &str, message: impl Into<String>) -> Self {
        Diagnostic::new(file, 0, 0, message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for Diagnostic {}

/// An error and its causes on one line (`a: b: c`), as `main` and the
/// diagnostics of a client or receiver print them.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// What a URL may hold that is a secret, replaced by `<redacted>`: the
/// userinfo (`user:password@`) and the query string and fragment (API
/// tokens: `?token=`). Works on text, so a URL that does not even parse
/// (`http://user:PASS@host:190900`) can be named in its error message.
pub fn redact(raw: &str) -> String {
    const HIDDEN: &str = "<redacted>";
    let raw = raw.trim();
    let (scheme, rest) = match raw.find("://") {
        Some(i) => raw.split_at(i + 3),
        None => ("", raw),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut out = String::with_capacity(raw.len());
    out.push_str(scheme);
    match authority.rfind('@') {
        Some(at) => {
            out.push_str(HIDDEN);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    match tail.find(['?', '#']) {
        Some(q) => {
            out.push_str(&tail[..q]);
            out.push_str(&tail[q..=q]);
            out.push_str(HIDDEN);
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_a_compiler() {
        let d = Diagnostic::new("slos/a.yaml", 3, 5, "unknown field");
        assert_eq!(d.to_string(), "slos/a.yaml:3:5: unknown field");
        let d = Diagnostic::whole_file("slos/a.yaml", "cannot read");
        assert_eq!(d.to_string(), "slos/a.yaml: cannot read");
    }
}
