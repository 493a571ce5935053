//! Calling windows: the hours of each weekday a contact may be called, in
//! the contact's own time zone, with holidays excluded. A contact outside
//! its window waits for the next opening; it is never dialled.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet};

/// Days searched for the next opening (a year and a bit: holidays and
/// single-day windows included).
const SEARCH_DAYS: i64 = 400;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A calling-window specification that cannot be used; `field` names the
/// entry (`windows.mon-fri`, `holidays[2]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct WindowError {
    /// The entry at fault.
    pub field: String,
    /// Why.
    pub why: String,
}

fn bad(field: impl Into<String>, why: impl Into<String>) -> WindowError {
    WindowError {
        field: field.into(),
        why: why.into(),
    }
}

/// When contacts may be called: per weekday, ranges of local time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingWindows {
    /// Monday first: each day's ranges [start, end), sorted, not overlapping.
    days: [Vec<(NaiveTime, NaiveTime)>; 7],
    holidays: BTreeSet<NaiveDate>,
}

impl CallingWindows {
    /// Reads windows written as `{"mon-fri": "09:00-20:00", "sat":
    /// "10:00-12:00,14:00-16:00"}` (days `mon`…`sun`, a range `mon-fri` or
    /// a list `sat,sun`; a day named twice is an error) and holidays as
    /// `YYYY-MM-DD` dates. At least one day must have a window.
    pub fn parse(windows: &BTreeMap<String, String>, holidays: &[String]) -> Result<CallingWindows, WindowError> {
        let mut days: [Vec<(NaiveTime, NaiveTime)>; 7] = Default::default();
        let mut named = [false; 7];
        for (key, value) in windows {
            let field = format!("windows.{key}");
            for day in day_set(key).map_err(|why| bad(&field, why))? {
                if std::mem::replace(&mut named[day], true) {
                    return Err(bad(&field, format!("{} is named by more than one entry", DAYS[day])));
                }
                days[day] = ranges(value).map_err(|why| bad(&field, why))?;
            }
        }
        if days.iter().all(Vec::is_empty) {
            return Err(bad(
                "windows",
                "no day has a calling window: contacts could never be called",
            ));
        }
        let mut set = BTreeSet::new();
        for (i, h) in holidays.iter().enumerate() {
            let date = NaiveDate::parse_from_str(h.trim(), "%Y-%m-%d")
                .map_err(|_| bad(format!("holidays[{i}]"), format!("{h:?} is not a date (YYYY-MM-DD)")))?;
            set.insert(date);
        }
        Ok(CallingWindows { days, holidays: set })
    }

    /// Whether a contact in `tz` may be called at `at`.
    pub fn is_open(&self, at: DateTime<Utc>, tz: Tz) -> bool {
        let local = at.with_timezone(&tz).naive_local();
        !self.holidays.contains(&local.date())
            && self
                .day(local.date())
                .iter()
                .any(|&(s, e)| s <= local.time() && local.time() < e)
    }

    /// The first moment from `at` on when a contact in `tz` may be called
    /// (`at` itself when open); `None` when no window opens within a year.
    pub fn next_open(&self, at: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        if self.is_open(at, tz) {
            return Some(at);
        }
        let local = at.with_timezone(&tz).naive_local();
        for offset in 0..SEARCH_DAYS {
            let date = local.date() + Duration::days(offset);
            if self.holidays.contains(&date) {
                continue;
            }
            for &(start, end) in self.day(date) {
                let from = if offset == 0 { start.max(local.time()) } else { start };
                if from >= end {
                    continue;
                }
                if let Some(t) = earliest_instant(tz, date.and_time(from), date.and_time(end)) {
                    if t >= at && self.is_open(t, tz) {
                        return Some(t);
                    }
                }
            }
        }
        None
    }

    fn day(&self, date: NaiveDate) -> &[(NaiveTime, NaiveTime)] {
        &self.days[date.weekday().num_days_from_monday() as usize]
    }
}

/// The first instant at or after local `from` (before `end`) that exists in
/// `tz`: a start inside a daylight-saving gap moves to the gap's end.
fn earliest_instant(tz: Tz, from: NaiveDateTime, end: NaiveDateTime) -> Option<DateTime<Utc>> {
    let mut t = from;
    while t < end {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(d) => return Some(d.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, _) => return Some(a.with_timezone(&Utc)),
            LocalResult::None => t += Duration::minutes(1),
        }
    }
    None
}

/// The days a key names: `mon`, `mon-fri`, `sat,sun`.
fn day_set(key: &str) -> Result<Vec<usize>, String> {
    let index = |d: &str| {
        let d = d.trim().to_ascii_lowercase();
        DAYS.iter()
            .position(|x| *x == d)
            .ok_or_else(|| format!("{d:?} is not a day (mon, tue, wed, thu, fri, sat, sun)"))
    };
    let mut out = Vec::new();
    for part in key.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (index(a)?, index(b)?);
                if b < a {
                    return Err(format!("{part:?}: a range of days runs from Monday towards Sunday"));
                }
                out.extend(a..=b);
            }
            None => out.push(index(part)?),
        }
    }
    Ok(out)
}

/// `09:00-12:00,14:00-20:00` → sorted ranges; empty text → no window.
fn ranges(value: &str) -> Result<Vec<(NaiveTime, NaiveTime)>, String> {
    let mut out = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part
            .split_once('-')
            .ok_or_else(|| format!("{part:?} is not a range of times (09:00-20:00)"))?;
        let time = |t: &str| {
            let t = t.trim();
            if t == "24:00" {
                return NaiveTime::from_hms_opt(23, 59, 59).ok_or_else(|| "24:00".to_string());
            }
            NaiveTime::parse_from_str(t, "%H:%M").map_err(|_| format!("{t:?} is not a time of day (HH:MM)"))
        };
        let (start, end) = (time(a)?, time(b)?);
        if end <= start {
            return Err(format!(
                "{part:?} ends before it starts (a window past midnight is two entries)"
            ));
        }
        out.push((start, end));
    }
    out.sort();
    if let Some(w) = out.windows(2).find(|w| w[1].0 < w[0].1) {
        return Err(format!(
            "{}-{} overlaps the range before it",
            w[1].0.format("%H:%M"),
            w[1].1.format("%H:%M")
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(entries: &[(&str, &str)], holidays: &[&str]) -> Result<CallingWindows, WindowError> {
        let map = entries.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let hol: Vec<String> = holidays.iter().map(|h| h.to_string()).collect();
        CallingWindows::parse(&map, &hol)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("test time").with_timezone(&Utc)
    }

    #[test]
    fn open_in_the_contacts_own_time_only() {
        let w = windows(&[("mon-fri", "09:00-20:00"), ("sat", "10:00-16:00")], &["2026-12-25"]).unwrap();
        let ny: Tz = "America/New_York".parse().unwrap();
        let london: Tz = "Europe/London".parse().unwrap();
        // Friday 2026-12-04 14:30 UTC: 09:30 in New York, 14:30 in London.
        let t = utc("2026-12-04T14:30:00Z");
        assert!(w.is_open(t, ny) && w.is_open(t, london));
        // 13:30 UTC: 08:30 in New York (not yet), 13:30 in London.
        let t = utc("2026-12-04T13:30:00Z");
        assert!(!w.is_open(t, ny) && w.is_open(t, london));
        // The New York contact waits until 09:00 local = 14:00 UTC.
        assert_eq!(w.next_open(t, ny), Some(utc("2026-12-04T14:00:00Z")));
        // Saturday 17:00 in London: closed; next Monday 09:00.
        let sat = utc("2026-12-05T17:00:00Z");
        assert!(!w.is_open(sat, london));
        assert_eq!(w.next_open(sat, london), Some(utc("2026-12-07T09:00:00Z")));
        // A holiday (Friday 25 December) is skipped: Saturday 10:00.
        let xmas = utc("2026-12-25T12:00:00Z");
        assert!(!w.is_open(xmas, london));
        assert_eq!(w.next_open(xmas, london), Some(utc("2026-12-26T10:00:00Z")));
        // The end is not inside: 20:00 sharp is closed.
        assert!(!w.is_open(utc("2026-12-04T20:00:00Z"), london));
    }

    #[test]
    fn a_start_inside_a_daylight_saving_gap_moves_to_its_end() {
        // Europe/Berlin skips 02:00-03:00 on Sunday 2027-03-28.
        let w = windows(&[("sun", "02:30-04:00")], &[]).unwrap();
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let t = utc("2027-03-27T12:00:00Z");
        // 03:00 CEST = 01:00 UTC.
        assert_eq!(w.next_open(t, berlin), Some(utc("2027-03-28T01:00:00Z")));
    }

    #[test]
    fn bad_windows_name_their_entry() {
        let e = windows(&[("mon-fri", "09:00-20:00"), ("fri", "10:00-12:00")], &[]).unwrap_err();
        assert_eq!(e.field, "windows.mon-fri");
        assert!(e.why.contains("fri is named by more than one entry"), "{e}");
        let e = windows(&[("mon", "9-20")], &[]).unwrap_err();
        assert_eq!(e.field, "windows.mon");
        let e = windows(&[("mon", "20:00-09:00")], &[]).unwrap_err();
        assert!(e.why.contains("ends before it starts"), "{e}");
        let e = windows(&[("mon", "09:00-12:00,11:00-13:00")], &[]).unwrap_err();
        assert!(e.why.contains("overlaps"), "{e}");
        let e = windows(&[("monday", "09:00-12:00")], &[]).unwrap_err();
        assert!(e.why.contains("not a day"), "{e}");
        let e = windows(&[("fri-mon", "09:00-12:00")], &[]).unwrap_err();
        assert!(e.why.contains("Monday towards Sunday"), "{e}");
        let e = windows(&[("mon", "")], &[]).unwrap_err();
        assert_eq!(e.field, "windows");
        let e = windows(&[("mon", "09:00-12:00")], &["2026-13-01"]).unwrap_err();
        assert_eq!(e.field, "holidays[0]");
    }

    #[test]
    fn windows_that_never_open_within_a_year_say_so() {
        // Only Mondays, and the next ~60 Mondays are holidays: still found
        // past them; a window that never opens at all is refused at parse.
        let mondays: Vec<String> = (0..60)
            .map(|i| (NaiveDate::from_ymd_opt(2026, 12, 7).unwrap() + Duration::weeks(i)).to_string())
            .collect();
        let refs: Vec<&str> = mondays.iter().map(String::as_str).collect();
        let w = windows(&[("mon", "09:00-10:00")], &refs).unwrap();
        let london: Tz = "Europe/London".parse().unwrap();
        let next = w.next_open(utc("2026-12-05T00:00:00Z"), london);
        assert_eq!(next, None, "60 Monday holidays: nothing within {SEARCH_DAYS} days");
        let w = windows(&[("mon", "09:00-10:00")], &refs[..3]).unwrap();
        assert_eq!(
            w.next_open(utc("2026-12-05T00:00:00Z"), london),
            Some(utc("2026-12-28T09:00:00Z"))
        );
    }
}
