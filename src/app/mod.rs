//! The edge: reading the files (`load`), the daemon (`run`) and the
//! one-shot commands (`commands`).

pub mod commands;
pub mod load;
pub mod run;
