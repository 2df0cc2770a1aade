//! placeholder
use super::Config;
/// placeholder
#[derive(Debug)]
pub struct ConfigError;
/// placeholder
pub fn load(
    _p: Option<&std::path::Path>,
    _env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    Ok(Config::default())
}
/// placeholder
pub fn load_str(_t: &str, _env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
    Ok(Config::default())
}
impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("x")
    }
}
