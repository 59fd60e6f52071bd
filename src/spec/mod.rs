//! Placeholder of the spec loader interface.
use std::path::Path;

use crate::config::Settings;
use crate::model::Slo;

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}
impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}
pub fn load(_config_path: &Path) -> Result<(Settings, Vec<Slo>), Vec<Diagnostic>> {
    Err(vec![])
}
pub fn load_specs(_p: &[std::path::PathBuf]) -> Result<Vec<Slo>, Vec<Diagnostic>> {
    Err(vec![])
}
