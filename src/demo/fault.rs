//! Injectable faults (`--fault NAME`): parsing, display, and the resolved `FaultSet` the server
//! consults. Owns no behaviour itself: handlers, the worker and the payment simulator read it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One fault to inject into the demo API.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// The profile of a heavy investor does one query per investment and skips the index.
    SlowProfile,
    /// `POST /onboarding/complete` answers 500 for a German locale with flag `new_kyc_form`.
    OnboardingLocale,
    /// Every payment simulator call takes this long.
    PaymentLatency(Duration),
    /// This percentage (0..=100) of charges is declined.
    PaymentDeclines(f64),
    /// This percentage (0..=100) of charges times out (outcome unknown, reconciled later).
    PaymentTimeouts(f64),
    /// The worker crashes right after a fresh successful charge, before recording it.
    WorkerCrashAfterCharge,
}

/// The names `FromStr` accepts, as shown in error messages and `--help`.
pub const FAULT_NAMES: &str = "slow-profile, onboarding-locale, payment-latency=MS, \
     payment-declines=PCT, payment-timeouts=PCT, worker-crash-after-charge";

/// Why a `--fault` value was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultParseError {
    #[error("unknown fault `{0}`; valid faults: {FAULT_NAMES}")]
    Unknown(String),
    #[error("fault `{name}` needs a value: {name}={hint}")]
    MissingValue {
        name: &'static str,
        hint: &'static str,
    },
    #[error("fault `{name}` takes no value (got `{value}`)")]
    UnexpectedValue { name: &'static str, value: String },
    #[error("fault `{name}`: `{value}` is not {hint}")]
    BadValue {
        name: &'static str,
        value: String,
        hint: &'static str,
    },
}

const MS_HINT: &str = "a whole number of milliseconds (0..=600000)";
const PCT_HINT: &str = "a percentage between 0 and 100";

impl FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, value) = match s.trim().split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (s.trim(), None),
        };
        let flag = |name: &'static str, fault: Fault| match value {
            None => Ok(fault),
            Some(v) => Err(FaultParseError::UnexpectedValue {
                name,
                value: v.to_string(),
            }),
        };
        match name {
            "slow-profile" => flag("slow-profile", Fault::SlowProfile),
            "onboarding-locale" => flag("onboarding-locale", Fault::OnboardingLocale),
            "worker-crash-after-charge" => {
                flag("worker-crash-after-charge", Fault::WorkerCrashAfterCharge)
            }
            "payment-latency" => {
                let name = "payment-latency";
                let v = value.ok_or(FaultParseError::MissingValue { name, hint: "MS" })?;
                let bad = || FaultParseError::BadValue {
                    name,
                    value: v.to_string(),
                    hint: MS_HINT,
                };
                let ms: u64 = v.parse().map_err(|_| bad())?;
                if ms > 600_000 {
                    return Err(bad());
                }
                Ok(Fault::PaymentLatency(Duration::from_millis(ms)))
            }
            "payment-declines" => percentage("payment-declines", value).map(Fault::PaymentDeclines),
            "payment-timeouts" => percentage("payment-timeouts", value).map(Fault::PaymentTimeouts),
            other => Err(FaultParseError::Unknown(other.to_string())),
        }
    }
}

fn percentage(name: &'static str, value: Option<&str>) -> Result<f64, FaultParseError> {
    let v = value.ok_or(FaultParseError::MissingValue { name, hint: "PCT" })?;
    let bad = || FaultParseError::BadValue {
        name,
        value: v.to_string(),
        hint: PCT_HINT,
    };
    let pct: f64 = v.trim_end_matches('%').parse().map_err(|_| bad())?;
    if !(0.0..=100.0).contains(&pct) {
        return Err(bad());
    }
    Ok(pct)
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::SlowProfile => f.write_str("slow-profile"),
            Fault::OnboardingLocale => f.write_str("onboarding-locale"),
            Fault::PaymentLatency(d) => write!(f, "payment-latency={}", d.as_millis()),
            Fault::PaymentDeclines(p) => write!(f, "payment-declines={p}"),
            Fault::PaymentTimeouts(p) => write!(f, "payment-timeouts={p}"),
            Fault::WorkerCrashAfterCharge => f.write_str("worker-crash-after-charge"),
        }
    }
}

/// The faults resolved into the knobs the server reads (later entries win for valued faults).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FaultSet {
    pub slow_profile: bool,
    pub onboarding_locale: bool,
    pub payment_latency: Duration,
    /// Percent of charges declined, 0..=100.
    pub payment_declines: f64,
    /// Percent of charges timing out, 0..=100.
    pub payment_timeouts: f64,
    pub worker_crash_after_charge: bool,
}

impl FaultSet {
    pub fn from_faults(faults: &[Fault]) -> Self {
        let mut set = FaultSet::default();
        for fault in faults {
            match fault {
                Fault::SlowProfile => set.slow_profile = true,
                Fault::OnboardingLocale => set.onboarding_locale = true,
                Fault::PaymentLatency(d) => set.payment_latency = *d,
                Fault::PaymentDeclines(p) => set.payment_declines = p.clamp(0.0, 100.0),
                Fault::PaymentTimeouts(p) => set.payment_timeouts = p.clamp(0.0, 100.0),
                Fault::WorkerCrashAfterCharge => set.worker_crash_after_charge = true,
            }
        }
        set
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn parses_every_name_and_round_trips_through_display() {
        for text in [
            "slow-profile",
            "onboarding-locale",
            "payment-latency=250",
            "payment-declines=10",
            "payment-timeouts=2.5",
            "worker-crash-after-charge",
        ] {
            let fault: Fault = text.parse().unwrap();
            assert_eq!(fault.to_string(), text);
        }
        assert_eq!(
            "payment-latency=250".parse::<Fault>().unwrap(),
            Fault::PaymentLatency(Duration::from_millis(250))
        );
    }

    #[test]
    fn rejects_bad_values_with_a_useful_message() {
        let err = "slow-profiel".parse::<Fault>().unwrap_err().to_string();
        assert!(
            err.contains("slow-profile") && err.contains("payment-timeouts=PCT"),
            "{err}"
        );
        for bad in [
            "payment-latency",
            "payment-latency=-1",
            "payment-latency=fast",
            "payment-declines=101",
            "payment-declines=NaN",
            "payment-timeouts=",
            "slow-profile=1",
        ] {
            assert!(bad.parse::<Fault>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn fault_set_resolves_knobs() {
        let set = FaultSet::from_faults(&[
            Fault::PaymentDeclines(10.0),
            Fault::SlowProfile,
            Fault::PaymentDeclines(20.0),
        ]);
        assert!(set.slow_profile && !set.onboarding_locale);
        assert_eq!(set.payment_declines, 20.0);
    }
}
