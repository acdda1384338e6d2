//! The machine stage Talos reports in `MachineStatuses.runtime.talos.dev`
//! (`stage`): one definition for the client that reads it and the
//! simulator that reports it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A Talos machine stage. Numbered as `RuntimeMachineStage` / `MachineStage`
/// on the wire; the text forms are Talos's YAML spellings (note the space in
/// `shutting down`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Unknown = 0,
    Booting = 1,
    Installing = 2,
    Maintenance = 3,
    Running = 4,
    Rebooting = 5,
    #[serde(rename = "shutting down")]
    ShuttingDown = 6,
    Resetting = 7,
    Upgrading = 8,
}

impl Stage {
    /// Every stage, in wire order.
    pub const ALL: [Stage; 9] = [
        Stage::Unknown,
        Stage::Booting,
        Stage::Installing,
        Stage::Maintenance,
        Stage::Running,
        Stage::Rebooting,
        Stage::ShuttingDown,
        Stage::Resetting,
        Stage::Upgrading,
    ];

    /// The YAML text Talos uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Unknown => "unknown",
            Stage::Booting => "booting",
            Stage::Installing => "installing",
            Stage::Maintenance => "maintenance",
            Stage::Running => "running",
            Stage::Rebooting => "rebooting",
            Stage::ShuttingDown => "shutting down",
            Stage::Resetting => "resetting",
            Stage::Upgrading => "upgrading",
        }
    }

    /// Parses the YAML text; `None` for a spelling this version does not know.
    pub fn from_yaml_text(text: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == text.trim())
    }

    /// The enum number on the wire.
    pub fn proto(self) -> i32 {
        self as i32
    }

    /// From the enum number; unknown numbers map to [`Stage::Unknown`].
    pub fn from_i32(value: i32) -> Stage {
        usize::try_from(value)
            .ok()
            .and_then(|i| Stage::ALL.get(i).copied())
            .unwrap_or(Stage::Unknown)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_text_round_trip() {
        for stage in Stage::ALL {
            assert_eq!(Stage::from_i32(stage.proto()), stage);
            assert_eq!(Stage::from_yaml_text(stage.as_str()), Some(stage));
        }
        assert_eq!(Stage::ShuttingDown.proto(), 6);
        assert_eq!(Stage::from_i32(9), Stage::Unknown);
    }

    #[test]
    fn serde_uses_the_yaml_spelling() {
        for stage in Stage::ALL {
            let json = serde_json::to_string(&stage).unwrap();
            assert_eq!(json, format!("\"{}\"", stage.as_str()));
            assert_eq!(serde_json::from_str::<Stage>(&json).unwrap(), stage);
        }
    }
}
