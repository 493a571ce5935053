//! Call-leg glue: what turns a SIP call and its RTP session into a leg of
//! the call-leg contract (`voxline_media::leg`) the voice session runs on.
//! Answering with media and completing the record (`call_media`), the SIP
//! inbound leg (`sip_leg`), the bridge that joins a colleague's call
//! (`bridge`), and the small conversions between the SIP and media layers.

pub mod bridge;
pub mod call_media;
pub mod sip_leg;

use tokio_util::sync::CancellationToken;
use voxline_media::leg::{EndedBy, LegEnd};
use voxline_media::{CallRecorder, Codec, MediaClock, MediaDirection, RtpSession, RtpTarget, SrtpKeys, SrtpProfile};
use voxline_sip::{Direction, EndReason, Negotiated, Party};

/// Turns a negotiation result into the media layer's target.
pub fn rtp_target(n: &Negotiated) -> RtpTarget {
    RtpTarget {
        addr: n.remote_rtp,
        codec: match n.codec {
            voxline_sip::AudioCodec::Pcmu => Codec::Pcmu,
            voxline_sip::AudioCodec::Pcma => Codec::Pcma,
            voxline_sip::AudioCodec::Opus => Codec::Opus,
        },
        payload_type: n.payload_type,
        telephone_event_pt: n.telephone_event_pt,
        telephone_event_rate: n.telephone_event_rate,
        comfort_noise_pt: n.comfort_noise_pt,
        rtcp_mux: n.rtcp_mux,
        rtcp_addr: n.remote_rtcp,
        srtp: n.srtp.map(|k| SrtpKeys {
            profile: match k.suite {
                voxline_sip::SrtpSuite::AesCm128HmacSha1_80 => SrtpProfile::Aes128Sha1_80,
                voxline_sip::SrtpSuite::AesCm128HmacSha1_32 => SrtpProfile::Aes128Sha1_32,
            },
            local: k.local,
            remote: k.remote,
        }),
        direction: if n.we_send() {
            match n.local_direction {
                Direction::SendRecv => MediaDirection::SendRecv,
                _ => MediaDirection::SendOnly,
            }
        } else {
            match n.local_direction {
                Direction::Inactive | Direction::SendOnly => MediaDirection::Inactive,
                _ => MediaDirection::RecvOnly,
            }
        },
    }
}

/// A file name made of the safe characters of a Call-ID.
pub fn safe_name(call_id: &str) -> String {
    let s: String = call_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if s.is_empty() {
        "call".into()
    } else {
        s
    }
}

/// Today's date (UTC) as `YYYY-MM-DD`, for recording folders.
pub fn chrono_day() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A call's RTP session running on the media clock until stopped.
pub struct RunningMedia {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RunningMedia {
    /// Runs `rtp` on `clock`, recording into `recorder` when there is one.
    pub fn start(rtp: &RtpSession, clock: &MediaClock, recorder: Option<CallRecorder>) -> RunningMedia {
        let cancel = CancellationToken::new();
        let (rtp, clock, c) = (rtp.clone(), clock.clone(), cancel.clone());
        let task = tokio::spawn(async move { rtp.run(&clock, recorder, c).await });
        RunningMedia { cancel, task }
    }

    /// Stops it and waits until its last frame is done (the recording closed).
    pub async fn stop(self) {
        self.cancel.cancel();
        self.task.await.ok();
    }
}

/// A SIP call's end as the call-leg contract has it.
pub fn leg_end(e: EndReason) -> LegEnd {
    LegEnd {
        by: match e.by {
            Party::Local => EndedBy::Local,
            Party::Remote => EndedBy::Remote,
        },
        reason: e.reason,
        status: e.status,
    }
}

/// A leg's end as a SIP call's record keeps it.
pub fn end_reason(e: LegEnd) -> EndReason {
    EndReason {
        by: match e.by {
            EndedBy::Local => Party::Local,
            EndedBy::Remote => Party::Remote,
        },
        reason: e.reason,
        status: e.status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_become_safe_file_names() {
        assert_eq!(safe_name("1-234@127.0.0.1"), "1-234_127.0.0.1");
        assert_eq!(safe_name("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(safe_name(""), "call");
    }

    #[test]
    fn day_is_formatted() {
        let d = chrono_day();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"));
    }
}
