//! How sure a match is: a number from 1 to 100 as Microsoft Purview has it, where 65 is medium
//! and 85 high; a rule's minimum is a level or a number.

use serde::{Deserialize, Serialize};

/// A match's confidence, 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Confidence(pub u8);

impl Confidence {
    /// An unvalidated pattern on its own.
    pub const LOW: Confidence = Confidence(40);
    /// A validated pattern (checksum, layout) on its own, or a plain one with supporting
    /// keywords nearby.
    pub const MEDIUM: Confidence = Confidence(65);
    /// A validated pattern with supporting keywords nearby.
    pub const HIGH: Confidence = Confidence(85);

    /// The level this confidence is at.
    pub fn level(self) -> Level {
        if self >= Level::High.threshold() {
            Level::High
        } else if self >= Level::Medium.threshold() {
            Level::Medium
        } else {
            Level::Low
        }
    }
}

/// A confidence level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Below 65.
    Low,
    /// 65 to 84.
    Medium,
    /// 85 and above.
    High,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        })
    }
}

impl Level {
    /// The lowest confidence at this level: 1, 65 or 85.
    pub fn threshold(self) -> Confidence {
        match self {
            Level::Low => Confidence(1),
            Level::Medium => Confidence(65),
            Level::High => Confidence(85),
        }
    }
}

/// A rule's minimum confidence: `"low"`, `"medium"`, `"high"` or a number from 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MinConfidence {
    /// At this level or above.
    Level(Level),
    /// At this number or above.
    Number(u8),
}

impl MinConfidence {
    /// The lowest confidence that passes.
    pub fn threshold(self) -> Confidence {
        match self {
            MinConfidence::Level(level) => level.threshold(),
            MinConfidence::Number(n) => Confidence(n),
        }
    }
}

impl Default for MinConfidence {
    fn default() -> Self {
        MinConfidence::Level(Level::Medium)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_purviews_thresholds() {
        assert_eq!(Confidence(64).level(), Level::Low);
        assert_eq!(Confidence(65).level(), Level::Medium);
        assert_eq!(Confidence(84).level(), Level::Medium);
        assert_eq!(Confidence(85).level(), Level::High);
        assert_eq!(Confidence::LOW.level(), Level::Low);
        assert_eq!(MinConfidence::Number(70).threshold(), Confidence(70));
        assert_eq!(MinConfidence::default().threshold(), Confidence(65));
    }
}
