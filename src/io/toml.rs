//! TOML with errors that name the file, the key path and the line.

use std::path::Path;

use crate::error::{Error, Result};

/// Deserialises TOML, turning errors into [`Error::Config`] with the key path and line.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    let line_of = |span: Option<std::ops::Range<usize>>| {
        span.map(|s| text[..s.start.min(text.len())].lines().count().max(1))
    };
    let deserializer = toml::de::Deserializer::parse(text).map_err(|e| Error::Config {
        file: path.to_owned(),
        key: String::new(),
        message: format!(
            "not valid TOML{}: {}",
            line_of(e.span())
                .map(|l| format!(" (line {l})"))
                .unwrap_or_default(),
            e.message().trim()
        ),
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        Error::Config {
            file: path.to_owned(),
            key: if key == "." { String::new() } else { key },
            message: format!(
                "{}{}",
                inner.message().trim(),
                line_of(inner.span())
                    .map(|l| format!(" (line {l})"))
                    .unwrap_or_default()
            ),
        }
    })
}
