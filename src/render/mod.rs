//! Views of a state snapshot: `/metrics` (`metrics`, with its `gzip` and
//! `openmetrics` encodings), the JSON document (`json`), the table `eval`
//! prints (`table`) and the HTML status pages (`pages`). Renders only what
//! it is given: imports state, model, budget and time, never the loop.

pub mod gzip;
pub mod json;
pub mod metrics;
pub mod openmetrics;
pub mod pages;
pub mod table;
