//! What the one-shot commands print. `println!` panics when stdout is gone;
//! here a closed pipe (`errbudget eval | head -1`) ends the command quietly
//! with exit 0, as ripgrep does, and any other failure to write (a full
//! disk) is one message on stderr and exit 2. Messages on stderr are
//! best-effort: there is nobody left to tell when stderr fails.

use std::fmt;
use std::io::{ErrorKind, Write};

/// The exit code when the output cannot be written.
pub const EXIT_WRITE_FAILED: i32 = 2;

/// Writes to stdout and flushes; never returns if that fails.
pub fn out(args: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(args).and_then(|()| stdout.flush());
    if let Err(e) = written {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        err(format_args!("errbudget: cannot write the output: {e}\n"));
        std::process::exit(EXIT_WRITE_FAILED);
    }
}

/// Writes to stderr, ignoring failure.
pub fn err(args: fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `println!` to stdout through [`out`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::console::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::console::err(format_args!("{}\n", format_args!($($arg)*)))
    };
}
