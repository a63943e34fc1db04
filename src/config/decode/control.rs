//! The `control` section: where the control socket listens.

use std::path::PathBuf;

use super::fields::{Fields, no_special};
use super::values;
use crate::config::error::Reporter;
use crate::config::model::ControlConfig;
use crate::config::source::{Spanned, Value};

pub(crate) const CONTROL_KEYS: &[&str] = &["socket"];

pub fn decode(v: &Spanned<Value>, path: &str, rep: &mut Reporter<'_>) -> ControlConfig {
    let mut config = ControlConfig::default();
    let Some(mut f) = Fields::open(v, path, "control options", CONTROL_KEYS, rep) else {
        return config;
    };
    if let Some(v) = f.get("socket", rep).filter(|v| !values::is_blank(v))
        && let Some(socket) = values::string(v, &f.path_of("socket"), rep)
    {
        config.socket = PathBuf::from(socket);
    }
    f.finish(rep, &no_special);
    config
}
