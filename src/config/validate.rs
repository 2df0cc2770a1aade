//! placeholder
use super::Config;
/// placeholder
pub fn validate(_c: &Config) -> Result<(), Vec<String>> {
    Ok(())
}
