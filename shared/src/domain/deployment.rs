//! Which events belong to this deployment: an intent it created carries its tag in
//! Fintoc's metadata and was made with a key of its mode. Anything else — another
//! deployment's payment on a shared Fintoc account, an untagged intent, the other
//! mode — is acknowledged and kept apart for a human, never stored as an intent.

use super::report::PaymentReport;

/// The metadata key that carries the deployment's tag to Fintoc and back.
pub const DEPLOYMENT_TAG_METADATA_KEY: &str = "deployment_tag";

/// The tag of a deployment that sets none.
pub const DEFAULT_DEPLOYMENT_TAG: &str = "default";

/// This deployment, as events are matched against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// `DEPLOYMENT_TAG`: written into every intent's metadata at creation.
    pub tag: String,
    /// `FINTOC_MODE` (`live` | `test`), when set: events of the other mode are foreign.
    pub mode: Option<String>,
}

/// Why an event is not this deployment's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignReason {
    /// The event's mode is not this deployment's.
    ModeMismatch,
    /// An intent unknown here that carries no deployment tag.
    Untagged,
    /// An intent unknown here that carries another deployment's tag.
    OtherDeployment,
    /// A refund of a payment this deployment does not hold.
    UnknownRefund,
}

impl ForeignReason {
    /// Stable name, stored and logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ModeMismatch => "mode_mismatch",
            Self::Untagged => "untagged",
            Self::OtherDeployment => "other_deployment",
            Self::UnknownRefund => "unknown_refund",
        }
    }
}

/// An event kept apart: what a human needs to look into it, nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignEvent {
    /// `evt_...`.
    pub event_id: String,
    /// e.g. `payment_intent.succeeded`.
    pub event_type: String,
    /// The intent it is about.
    pub intent_id: String,
    /// Why it is not this deployment's.
    pub reason: ForeignReason,
    /// The event's mode.
    pub mode: Option<String>,
    /// The tag it carried.
    pub tag: Option<String>,
    /// When it was received (Unix ms).
    pub received_at_ms: i64,
}

impl Deployment {
    /// Whether an event (with `event_mode`, about `report`) is this deployment's;
    /// `known` says whether the table already holds the intent (this deployment
    /// created it, so its tag need not be checked).
    pub fn check(
        &self,
        event_mode: Option<&str>,
        report: &PaymentReport,
        known: bool,
    ) -> Result<(), ForeignReason> {
        if let Some(mode) = &self.mode {
            // An intent this deployment created was made with a key of its mode:
            // an event that does not say its mode (or says it unreadably: another
            // type, or neither `live` nor `test`) is not foreign for that; one that
            // names the other mode is.
            let known_mode = |m: &&str| matches!(*m, "live" | "test");
            let event_mode = event_mode
                .filter(known_mode)
                .or(report.mode.as_deref().filter(known_mode));
            match event_mode {
                Some(event_mode) if event_mode != mode => return Err(ForeignReason::ModeMismatch),
                None if !known => return Err(ForeignReason::ModeMismatch),
                _ => {}
            }
        }
        if known {
            return Ok(());
        }
        match report.metadata.get(DEPLOYMENT_TAG_METADATA_KEY) {
            None => Err(ForeignReason::Untagged),
            Some(tag) if *tag != self.tag => Err(ForeignReason::OtherDeployment),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(tag: Option<&str>) -> PaymentReport {
        let mut r = PaymentReport {
            id: "pi_1".into(),
            mode: Some("live".into()),
            ..PaymentReport::default()
        };
        if let Some(tag) = tag {
            r.metadata
                .insert(DEPLOYMENT_TAG_METADATA_KEY.into(), tag.into());
        }
        r
    }

    const SHOP_A: fn() -> Deployment = || Deployment {
        tag: "shop-a".into(),
        mode: Some("live".into()),
    };

    #[test]
    fn an_unknown_intent_must_carry_this_deployments_tag() {
        let a = SHOP_A();
        assert_eq!(
            a.check(Some("live"), &report(Some("shop-a")), false),
            Ok(())
        );
        assert_eq!(
            a.check(Some("live"), &report(Some("shop-b")), false),
            Err(ForeignReason::OtherDeployment)
        );
        assert_eq!(
            a.check(Some("live"), &report(None), false),
            Err(ForeignReason::Untagged)
        );
        assert_eq!(a.check(Some("live"), &report(None), true), Ok(()), "known");
    }

    #[test]
    fn the_other_mode_is_foreign_even_for_a_known_intent() {
        let a = SHOP_A();
        assert_eq!(
            a.check(Some("test"), &report(Some("shop-a")), true),
            Err(ForeignReason::ModeMismatch)
        );
        assert_eq!(
            a.check(None, &report(Some("shop-a")), false),
            Ok(()),
            "data.mode"
        );
        let no_mode = PaymentReport {
            mode: None,
            ..report(Some("shop-a"))
        };
        assert_eq!(
            a.check(None, &no_mode, true),
            Ok(()),
            "a known intent whose event does not say its mode"
        );
        assert_eq!(
            a.check(None, &no_mode, false),
            Err(ForeignReason::ModeMismatch),
            "an unknown intent must say its mode"
        );
        let any_mode = Deployment {
            mode: None,
            ..SHOP_A()
        };
        assert_eq!(
            any_mode.check(Some("test"), &report(Some("shop-a")), false),
            Ok(())
        );
    }
}
