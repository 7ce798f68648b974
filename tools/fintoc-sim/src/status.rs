//! A payment intent's status as Fintoc writes it — the simulator's own type, so a
//! stand-in for Fintoc speaks only Fintoc's API, never the backend's.

/// A Fintoc payment intent's status (`created`, `in_progress`, `requires_action`,
/// `pending`: not final; `succeeded`, `failed`, `rejected`, `expired`: final).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// `created`.
    Created,
    /// `in_progress`.
    InProgress,
    /// `requires_action`.
    RequiresAction,
    /// `pending`.
    Pending,
    /// `succeeded`.
    Succeeded,
    /// `failed`.
    Failed,
    /// `rejected`.
    Rejected,
    /// `expired`.
    Expired,
    /// Any other status a request named.
    Other(String),
}

impl PaymentStatus {
    /// Reads Fintoc's name of a status.
    pub fn parse(s: &str) -> Self {
        match s {
            "created" => Self::Created,
            "in_progress" => Self::InProgress,
            "requires_action" => Self::RequiresAction,
            "pending" => Self::Pending,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "rejected" => Self::Rejected,
            "expired" => Self::Expired,
            other => Self::Other(other.to_string()),
        }
    }

    /// Fintoc's name of it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Created => "created",
            Self::InProgress => "in_progress",
            Self::RequiresAction => "requires_action",
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Other(s) => s,
        }
    }

    /// Whether Fintoc never moves it again.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Rejected | Self::Expired
        )
    }
}

impl serde::Serialize for PaymentStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_its_name_and_only_the_four_ends_are_final() {
        let finals = ["succeeded", "failed", "rejected", "expired"];
        for name in [
            "created",
            "in_progress",
            "requires_action",
            "pending",
            "succeeded",
            "failed",
            "rejected",
            "expired",
            "something_new",
        ] {
            let status = PaymentStatus::parse(name);
            assert_eq!(status.as_str(), name);
            assert_eq!(status.is_final(), finals.contains(&name), "{name}");
            assert_eq!(serde_json::to_value(&status).unwrap(), name);
        }
    }
}
