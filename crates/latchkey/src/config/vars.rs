//! Typed reads of the raw `LATCHKEY_*` strings: every area parser reads through [`Vars`], so
//! the unit tests can record which names the parsers read.

use std::collections::HashMap;
use std::time::Duration;

use super::{ConfigError, err, parse_duration};

/// The raw variables; blank values count as unset.
pub(super) struct Vars<'a> {
    map: &'a HashMap<String, String>,
    /// Every name asked for, to prove the list of known variables complete.
    #[cfg(test)]
    pub(super) read: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl<'a> Vars<'a> {
    pub(super) fn new(map: &'a HashMap<String, String>) -> Self {
        Self {
            map,
            #[cfg(test)]
            read: std::cell::RefCell::default(),
        }
    }

    pub(super) fn get(&self, name: &str) -> Option<&'a str> {
        #[cfg(test)]
        self.read.borrow_mut().insert(name.to_owned());
        self.map
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn duration(
        &self,
        name: &'static str,
        default: &str,
    ) -> Result<Duration, ConfigError> {
        parse_duration(self.get(name).unwrap_or(default)).map_err(|m| err(name, m))
    }

    pub(super) fn number<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| err(name, format!("`{v}` is not a whole number"))),
        }
    }

    pub(super) fn boolean(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(v) => Err(err(name, format!("`{v}` is not true or false"))),
        }
    }

    pub(super) fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}
