//! A campaign's settings as stored (JSON) and checked: where numbers
//! without a country code belong, the campaign's time zone, and its
//! calling windows.

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        Ok(Checked {
            default_country,
            timezone,
            windows,
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
        }
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
    }
}
