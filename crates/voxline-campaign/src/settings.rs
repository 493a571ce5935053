//! A campaign's settings as stored (JSON) and checked: where numbers
//! without a country code belong, the campaign's time zone, its calling
//! windows, how it dials (trunk, caller ID, pacing, ring timeout) and when
//! it dials a contact again.

use crate::window::{CallingWindows, WindowError};
use chrono_tz::Tz;
use phonenumber::country::Id as Country;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A setting that cannot be used; `field` names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct SettingsError {
    /// The setting at fault (`timezone`, `windows.mon-fri`…).
    pub field: String,
    /// Why.
    pub why: String,
}

impl From<WindowError> for SettingsError {
    fn from(e: WindowError) -> SettingsError {
        SettingsError {
            field: e.field,
            why: e.why,
        }
    }
}

/// What a campaign is set up with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSettings {
    /// The country (ISO 3166 code, "US") of numbers written without a
    /// country code; none: such numbers are rejected.
    #[serde(default)]
    pub default_country: Option<String>,
    /// The time zone of contacts whose own cannot be told (IANA name).
    pub timezone: String,
    /// Calling windows per weekday (`{"mon-fri": "09:00-20:00"}`).
    pub windows: BTreeMap<String, String>,
    /// Days not called (`YYYY-MM-DD`, in the contact's calendar).
    #[serde(default)]
    pub holidays: Vec<String>,
    /// The last day contacts are called (`YYYY-MM-DD`, in the contact's
    /// calendar); a contact whose next window opens later is `window_expired`.
    #[serde(default)]
    pub last_day: Option<String>,
    /// The trunk (`[[trunk]]` name) its calls leave by.
    #[serde(default)]
    pub trunk: Option<String>,
    /// The caller ID its calls show (else the trunk's).
    #[serde(default)]
    pub caller_id: Option<String>,
    /// Calls up at once, at most (a node also stays within its trunk's
    /// `max_calls` and its own agent capacity).
    #[serde(default = "default_max_calls")]
    pub max_calls: u32,
    /// New calls per second, at most (also within the trunk's `max_cps`).
    #[serde(default = "default_max_cps")]
    pub max_cps: f64,
    /// A call not answered this long is cancelled (no answer), seconds.
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_s: u64,
    /// When a contact is dialled again.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Answering-machine detection: `off`, `hangup` on a machine, or leave
    /// `voicemail` after its beep (`message`).
    #[serde(default)]
    pub amd: crate::amd::MachineAction,
    /// The message left on a machine (`{first_name}` and the contact's
    /// other variables filled in).
    #[serde(default)]
    pub voicemail: Option<String>,
    /// The campaign's own webhook receivers (besides the server's).
    #[serde(default)]
    pub webhooks: Vec<crate::webhook::WebhookTarget>,
}

/// When a contact is dialled again, by how its last attempt ended; a delay
/// of `null` means that outcome is final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts per contact, at most (the first call included).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// After busy (486, 600), seconds.
    #[serde(default = "default_busy_s")]
    pub busy_s: Option<u64>,
    /// After no answer (the ring timeout, 408, 480), seconds.
    #[serde(default = "default_no_answer_s")]
    pub no_answer_s: Option<u64>,
    /// After an answering machine, seconds (default: final).
    #[serde(default)]
    pub machine_s: Option<u64>,
    /// After a failure (5xx, no response, an error), seconds.
    #[serde(default = "default_failed_s")]
    pub failed_s: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: default_max_attempts(),
            busy_s: default_busy_s(),
            no_answer_s: default_no_answer_s(),
            machine_s: None,
            failed_s: default_failed_s(),
        }
    }
}

fn default_max_calls() -> u32 {
    2
}
fn default_max_cps() -> f64 {
    1.0
}
fn default_ring_timeout() -> u64 {
    30
}
fn default_max_attempts() -> u32 {
    3
}
fn default_busy_s() -> Option<u64> {
    Some(600)
}
fn default_no_answer_s() -> Option<u64> {
    Some(3600)
}
fn default_failed_s() -> Option<u64> {
    Some(900)
}

/// Settings checked and ready to use.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The default country.
    pub default_country: Option<Country>,
    /// The campaign's time zone.
    pub timezone: Tz,
    /// The calling windows.
    pub windows: CallingWindows,
    /// The last day called.
    pub last_day: Option<chrono::NaiveDate>,
}

impl CampaignSettings {
    /// Checks every setting; the error names the first one at fault.
    pub fn check(&self) -> Result<Checked, SettingsError> {
        let default_country = match self.default_country.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(cc) => Some(cc.to_ascii_uppercase().parse::<Country>().map_err(|_| SettingsError {
                field: "default_country".into(),
                why: format!("{cc:?} is not an ISO 3166 country code (such as US or GB)"),
            })?),
        };
        let timezone = self.timezone.trim().parse::<Tz>().map_err(|_| SettingsError {
            field: "timezone".into(),
            why: format!(
                "{:?} is not a tz database name (such as America/New_York)",
                self.timezone
            ),
        })?;
        let windows = CallingWindows::parse(&self.windows, &self.holidays)?;
        let last_day = match self.last_day.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(d) => Some(
                chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| SettingsError {
                    field: "last_day".into(),
                    why: format!("{d:?} is not a date (YYYY-MM-DD)"),
                })?,
            ),
        };
        let bad = |field: &str, why: String| {
            Err(SettingsError {
                field: field.into(),
                why,
            })
        };
        if !(1..=1000).contains(&self.max_calls) {
            return bad("max_calls", format!("{} is not 1 to 1000", self.max_calls));
        }
        if !(self.max_cps.is_finite() && self.max_cps > 0.0 && self.max_cps <= 100.0) {
            return bad("max_cps", format!("{} is not above 0 and at most 100", self.max_cps));
        }
        if !(5..=300).contains(&self.ring_timeout_s) {
            return bad(
                "ring_timeout_s",
                format!("{} is not 5 to 300 seconds", self.ring_timeout_s),
            );
        }
        if !(1..=20).contains(&self.retry.max_attempts) {
            return bad(
                "retry.max_attempts",
                format!("{} is not 1 to 20", self.retry.max_attempts),
            );
        }
        if self.amd == crate::amd::MachineAction::Message
            && self.voicemail.as_deref().is_none_or(|m| m.trim().is_empty())
        {
            return bad("voicemail", "amd = \"message\" needs the message to leave".into());
        }
        if self.trunk.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return bad("trunk", "must name a [[trunk]] when given".into());
        }
        if let Some(c) = &self.caller_id {
            if c.trim().is_empty()
                || c.len() > 256
                || c.chars()
                    .any(|ch| ch.is_control() || ch.is_whitespace() || "<>\"".contains(ch))
            {
                return bad(
                    "caller_id",
                    format!("{c:?} is not a caller ID (a number or sip: URI, no spaces or quotes)"),
                );
            }
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            if let Err((field, why)) = w.check() {
                return bad(&format!("webhooks[{i}].{field}"), why);
            }
        }
        Ok(Checked {
            default_country,
            timezone,
            windows,
            last_day,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CampaignSettings {
        CampaignSettings {
            default_country: Some("us".into()),
            timezone: "America/Chicago".into(),
            windows: [("mon-fri".to_string(), "09:00-20:00".to_string())].into(),
            holidays: vec!["2026-12-25".into()],
            last_day: None,
            trunk: Some("carrier".into()),
            caller_id: None,
            max_calls: 2,
            max_cps: 1.0,
            ring_timeout_s: 30,
            retry: RetryPolicy::default(),
            amd: crate::amd::MachineAction::Off,
            voicemail: None,
            webhooks: Vec::new(),
        }
    }

    #[test]
    fn settings_stored_before_the_dialer_read_with_its_defaults() {
        let old = r#"{"default_country":"US","timezone":"America/Chicago","windows":{"mon-fri":"09:00-20:00"},"holidays":[]}"#;
        let s: CampaignSettings = serde_json::from_str(old).unwrap();
        assert_eq!((s.max_calls, s.max_cps, s.ring_timeout_s), (2, 1.0, 30));
        assert_eq!(s.retry, RetryPolicy::default());
        assert_eq!(s.trunk, None);
        // A retry delay of null makes that outcome final.
        let s: CampaignSettings = serde_json::from_str(
            r#"{"timezone":"UTC","windows":{"mon":"09:00-10:00"},"retry":{"busy_s":null,"max_attempts":5}}"#,
        )
        .unwrap();
        assert_eq!(
            (s.retry.busy_s, s.retry.no_answer_s, s.retry.max_attempts),
            (None, Some(3600), 5)
        );
    }

    #[test]
    fn good_settings_check_and_round_trip_as_json() {
        let s = settings();
        let c = s.check().expect("valid");
        assert_eq!(c.default_country, Some(Country::US));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<CampaignSettings>(&json).unwrap(), s);
    }

    #[test]
    fn each_bad_setting_is_named() {
        let field = |s: CampaignSettings| s.check().unwrap_err().field;
        assert_eq!(
            field(CampaignSettings {
                default_country: Some("Narnia".into()),
                ..settings()
            }),
            "default_country"
        );
        assert_eq!(
            field(CampaignSettings {
                timezone: "Mars/Olympus".into(),
                ..settings()
            }),
            "timezone"
        );
        assert_eq!(
            field(CampaignSettings {
                windows: BTreeMap::new(),
                ..settings()
            }),
            "windows"
        );
        assert_eq!(
            field(CampaignSettings {
                max_cps: 0.0,
                ..settings()
            }),
            "max_cps"
        );
        assert_eq!(
            field(CampaignSettings {
                max_calls: 0,
                ..settings()
            }),
            "max_calls"
        );
        assert_eq!(
            field(CampaignSettings {
                amd: crate::amd::MachineAction::Message,
                voicemail: Some("  ".into()),
                ..settings()
            }),
            "voicemail"
        );
        assert_eq!(
            field(CampaignSettings {
                caller_id: Some("sip:a@b\r\nX-Evil: 1".into()),
                ..settings()
            }),
            "caller_id"
        );
        assert_eq!(
            field(CampaignSettings {
                last_day: Some("31/12/2026".into()),
                ..settings()
            }),
            "last_day"
        );
        assert_eq!(
            field(CampaignSettings {
                retry: RetryPolicy {
                    max_attempts: 0,
                    ..RetryPolicy::default()
                },
                ..settings()
            }),
            "retry.max_attempts"
        );
    }
}
