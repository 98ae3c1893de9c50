//! Plugin configuration: the JSON object the recipe gives for the plugin.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Error;

/// A plugin's configuration. Empty text or `null` means "no settings" (an empty object).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    value: Value,
}

impl Config {
    /// Parses config text; anything but a JSON object (or nothing) is rejected.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::new(format!("config is not valid JSON: {e}")))?;
        match value {
            Value::Null => Ok(Config::default()),
            Value::Object(_) => Ok(Config { value }),
            other => Err(Error::new(format!(
                "config must be a JSON object, got {other}"
            ))),
        }
    }

    /// The config as a JSON object.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Deserializes the config into the plugin's settings type. Add
    /// `#[serde(deny_unknown_fields)]` to that type so a misspelt key is an error.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&self.value).map_err(|e| Error::new(format!("invalid config: {e}")))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            value: Value::Object(Map::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[serde(default)]
        scale: f32,
    }

    #[test]
    fn empty_and_null_mean_no_settings() {
        for text in ["", "  ", "null"] {
            let config = Config::from_json(text).unwrap();
            assert_eq!(config.value(), &Value::Object(Map::new()));
            assert_eq!(config.parse::<Settings>().unwrap(), Settings { scale: 0.0 });
        }
    }

    #[test]
    fn non_objects_and_bad_json_are_rejected() {
        let err = Config::from_json("[1, 2]").unwrap_err();
        assert_eq!(err.message(), "config must be a JSON object, got [1,2]");
        let err = Config::from_json("{").unwrap_err();
        assert!(
            err.message().starts_with("config is not valid JSON: EOF"),
            "{err}"
        );
    }

    #[test]
    fn parse_reports_unknown_keys() {
        let config = Config::from_json(r#"{"scale": 2.5}"#).unwrap();
        assert_eq!(config.parse::<Settings>().unwrap(), Settings { scale: 2.5 });
        let config = Config::from_json(r#"{"scael": 2.5}"#).unwrap();
        let err = config.parse::<Settings>().unwrap_err();
        assert!(
            err.message()
                .starts_with("invalid config: unknown field `scael`"),
            "{err}"
        );
    }
}
