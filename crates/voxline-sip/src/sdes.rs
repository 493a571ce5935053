//! SDES: SRTP keys exchanged in SDP `a=crypto` lines (RFC 4568).
//!
//! voxline takes the two AES-CM-128 suites of RFC 4568 that carriers and
//! phones offer (`AES_CM_128_HMAC_SHA1_80` and `_32`), with an inline key
//! and no MKI. A line it cannot use (another suite, an MKI, a session
//! parameter it does not know) is skipped, as RFC 4568 6.1 asks; if none is
//! left the offer is not acceptable (488). Keys are 30 bytes (a 16-byte
//! master key and a 14-byte master salt), random per call, and never shown
//! in `Debug` output or logs.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Master key and master salt together (RFC 4568 "inline" key).
pub const KEY_LEN: usize = 30;

/// How calls take encrypted media (`[sip] srtp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    /// RTP/SAVP offers are refused (488); voxline offers plain RTP.
    Off,
    /// RTP/SAVP offers are answered with SRTP, plain offers with plain RTP;
    /// voxline offers plain RTP.
    #[default]
    Optional,
    /// Only SRTP: plain offers are refused (488); voxline offers RTP/SAVP.
    Required,
}

impl SrtpPolicy {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpPolicy::Off => "off",
            SrtpPolicy::Optional => "optional",
            SrtpPolicy::Required => "required",
        }
    }
}

/// An SRTP crypto suite voxline takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpSuite {
    /// AES counter mode, 128-bit key, 80-bit HMAC-SHA1 tag.
    AesCm128HmacSha1_80,
    /// The same with a 32-bit tag on SRTP (SRTCP keeps 80 bits).
    AesCm128HmacSha1_32,
}

impl SrtpSuite {
    /// Its name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    fn from_name(name: &str) -> Option<SrtpSuite> {
        [SrtpSuite::AesCm128HmacSha1_80, SrtpSuite::AesCm128HmacSha1_32]
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }
}

/// The keys of an SRTP call: what voxline encrypts with (its own, sent in
/// its SDP) and what the far end encrypts with (from the far end's SDP).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The suite both sides use.
    pub suite: SrtpSuite,
    /// The `a=crypto` tag agreed on.
    pub tag: u32,
    /// voxline's master key and salt.
    pub local: [u8; KEY_LEN],
    /// The far end's master key and salt.
    pub remote: [u8; KEY_LEN],
}

impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("suite", &self.suite)
            .field("tag", &self.tag)
            .field("local", &"<redacted>")
            .field("remote", &"<redacted>")
            .finish()
    }
}

/// voxline's side of SRTP on one call: the policy, whether its own offers
/// are RTP/SAVP, and its key for the call.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpLocal {
    /// The configured policy.
    pub policy: SrtpPolicy,
    /// voxline's offers on this call are RTP/SAVP (the policy requires it,
    /// or the call's media is already encrypted).
    pub offers_secure: bool,
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for SrtpLocal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpLocal")
            .field("policy", &self.policy)
            .field("offers_secure", &self.offers_secure)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl SrtpLocal {
    /// A fresh random key under `policy`.
    pub fn new(policy: SrtpPolicy) -> SrtpLocal {
        let mut key = [0u8; KEY_LEN];
        rand::fill(&mut key[..]);
        SrtpLocal {
            policy,
            offers_secure: policy == SrtpPolicy::Required,
            key,
        }
    }

    /// voxline's master key and salt for this call.
    pub fn key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// The `a=crypto` line voxline writes (without `a=` and line end).
    pub fn crypto_line(&self, tag: u32, suite: SrtpSuite) -> String {
        format!("crypto:{tag} {} inline:{}", suite.name(), STANDARD.encode(self.key))
    }
}

/// One `a=crypto` line of a peer's SDP that voxline can use.
#[derive(Clone, PartialEq, Eq)]
pub struct Crypto {
    /// Its tag.
    pub tag: u32,
    /// Its suite.
    pub suite: SrtpSuite,
    /// The peer's master key and salt.
    pub key: [u8; KEY_LEN],
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypto")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// Reads the value of an `a=crypto` attribute (`TAG SUITE KEY-PARAMS
/// [SESSION-PARAMS]`); `None` when voxline cannot use it.
pub fn parse_crypto(value: &str) -> Option<Crypto> {
    let mut parts = value.split_whitespace();
    let tag: u32 = parts.next()?.parse().ok()?;
    if tag > 999_999_999 {
        return None;
    }
    let suite = SrtpSuite::from_name(parts.next()?)?;
    let key_params = parts.next()?;
    // Session parameters (UNENCRYPTED_SRTP, KDR, FEC_ORDER…) change how
    // SRTP runs; voxline runs it only the default way.
    if parts.next().is_some() {
        return None;
    }
    // One key (several ';'-separated keys need an MKI to tell them apart).
    let inline = key_params.strip_prefix("inline:")?;
    if inline.contains(';') {
        return None;
    }
    let mut fields = inline.split('|');
    let encoded = fields.next()?;
    for extra in fields {
        // A lifetime ("2^31" or a number) is fine; an MKI ("1:4") is not.
        if extra.contains(':') {
            return None;
        }
    }
    let bytes = STANDARD.decode(encoded).ok()?;
    let key: [u8; KEY_LEN] = bytes.try_into().ok()?;
    Some(Crypto { tag, suite, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    // 30 bytes: the key of RFC 4568's example.
    const KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

    #[test]
    fn the_rfc_example_line_is_read() {
        let c = parse_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4")).map(|c| c.tag);
        // With an MKI it is not used.
        assert_eq!(c, None);
        let c = parse_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20")).expect("usable");
        assert_eq!((c.tag, c.suite), (1, SrtpSuite::AesCm128HmacSha1_80));
        assert_eq!(&c.key[..3], &[0x3d, 0x2d, 0x6e]);
        let c = parse_crypto(&format!("2 AES_CM_128_HMAC_SHA1_32 inline:{KEY}")).expect("usable");
        assert_eq!(c.suite, SrtpSuite::AesCm128HmacSha1_32);
    }

    #[test]
    fn lines_voxline_cannot_use_are_skipped() {
        for line in [
            format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY};inline:{KEY}"),
            "1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=".to_string(),
            "1 AES_CM_128_HMAC_SHA1_80 inline:!!!not base64!!!".to_string(),
            format!("x AES_CM_128_HMAC_SHA1_80 inline:{KEY}"),
            format!("1 AES_CM_128_HMAC_SHA1_80 {KEY}"),
            "1".to_string(),
            String::new(),
        ] {
            assert_eq!(parse_crypto(&line).map(|c| c.tag), None, "{line}");
        }
    }

    #[test]
    fn our_line_reads_back_and_keys_never_show_in_debug() {
        let local = SrtpLocal::new(SrtpPolicy::Optional);
        let line = local.crypto_line(3, SrtpSuite::AesCm128HmacSha1_32);
        let back = parse_crypto(line.strip_prefix("crypto:").expect("prefix")).expect("usable");
        assert_eq!((back.tag, &back.key), (3, local.key()));
        let encoded = STANDARD.encode(local.key());
        assert!(!format!("{local:?} {back:?}").contains(&encoded));
        assert_ne!(SrtpLocal::new(SrtpPolicy::Optional).key(), local.key());
    }
}
