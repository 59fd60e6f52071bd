//! The edge: reading the files (`load`), the daemon (`run`), the one-shot
//! commands (`commands`) and the release gate's decision (`gate`).

pub mod commands;
pub mod gate;
pub mod load;
pub mod run;
