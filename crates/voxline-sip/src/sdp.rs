//! SDP offer/answer for one audio stream (RFC 3264): parse a peer's offer or
//! answer with the `sdp` crate, choose a codec and (for RTP/SAVP) the SRTP
//! keys (`sdes`), and write our own SDP.

use crate::sdes::{parse_crypto, Crypto, SrtpKeys, SrtpLocal, SrtpPolicy, SrtpSuite};
use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

/// An audio codec voxline negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// G.711 μ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// Opus (RFC 7587): dynamic payload type, 48 kHz RTP clock.
    Opus,
}

/// The payload type voxline uses for Opus when it offers.
pub const OFFER_OPUS_PT: u8 = 111;

impl AudioCodec {
    /// SDP encoding name.
    pub fn name(self) -> &'static str {
        match self {
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
            AudioCodec::Opus => "opus",
        }
    }
    /// The payload type voxline offers it with (static for G.711).
    pub fn static_pt(self) -> u8 {
        match self {
            AudioCodec::Pcmu => 0,
            AudioCodec::Pcma => 8,
            AudioCodec::Opus => OFFER_OPUS_PT,
        }
    }
    /// The RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma => 8000,
            AudioCodec::Opus => 48_000,
        }
    }
    /// Whether switching between `self` and `other` mid-call keeps the
    /// call's audio rate (narrowband G.711 vs wideband Opus).
    pub fn same_band(self, other: AudioCodec) -> bool {
        (self == AudioCodec::Opus) == (other == AudioCodec::Opus)
    }
    /// The `a=rtpmap` value after the payload type.
    fn rtpmap(self) -> &'static str {
        match self {
            AudioCodec::Pcmu => "PCMU/8000",
            AudioCodec::Pcma => "PCMA/8000",
            AudioCodec::Opus => "opus/48000/2",
        }
    }
    /// The `a=fmtp` parameters voxline writes for it.
    fn fmtp(self) -> Option<&'static str> {
        // Mono voice, in-band FEC asked of the far end too.
        (self == AudioCodec::Opus).then_some("useinbandfec=1; stereo=0; sprop-stereo=0")
    }
    /// Looks up by SDP encoding name.
    pub fn from_name(name: &str) -> Option<AudioCodec> {
        match name.to_ascii_uppercase().as_str() {
            "PCMU" => Some(AudioCodec::Pcmu),
            "PCMA" => Some(AudioCodec::Pcma),
            "OPUS" => Some(AudioCodec::Opus),
            _ => None,
        }
    }
}

/// Media direction as written in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The direction an answerer uses for a given offered direction.
    pub fn answer_to(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }
    /// Attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    fn parse(s: &str) -> Option<Direction> {
        match s {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// Why an SDP could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdpError {
    /// Not parseable SDP.
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// No usable audio stream or no codec in common (488).
    #[error("not acceptable: {0}")]
    NotAcceptable(String),
    /// Encrypted or plain media where the SRTP policy says otherwise, or
    /// no usable key (488).
    #[error("encryption not acceptable: {0}")]
    Encryption(String),
}

impl SdpError {
    /// What is wrong, without the kind (for a `Warning` header).
    pub fn detail(&self) -> &str {
        match self {
            SdpError::Malformed(d) | SdpError::NotAcceptable(d) | SdpError::Encryption(d) => d,
        }
    }
}

/// One format offered on the audio line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Format {
    pt: u8,
    name: String,
    rate: u32,
}

/// The parts of a peer's SDP that matter for one audio call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSdp {
    /// The audio m-lines voxline could take (RTP/AVP or RTP/SAVP, port not
    /// 0), in the peer's order; never empty. An offer may carry two, the
    /// same audio as RTP/SAVP and as RTP/AVP ("SRTP with fallback"), and
    /// the answer takes one of them (RFC 3264 6: the others get port 0).
    streams: Vec<AudioStream>,
    /// All m-lines as (media, proto, first format) to mirror in an answer.
    mlines: Vec<(String, String, String)>,
    /// `o=` session id and version, to spot a refresh with no change.
    pub origin: (u64, u64),
}

/// One audio m-line of a peer's SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AudioStream {
    /// Index of this m-line among all m-lines.
    index: usize,
    /// The peer's RTP address (`0.0.0.0` means old-style hold).
    rtp_addr: SocketAddr,
    /// The direction the peer wrote.
    direction: Direction,
    /// Formats on the line, in the peer's order of preference.
    formats: Vec<Format>,
    /// `a=rtcp-mux`: the peer multiplexes RTCP on the RTP port.
    rtcp_mux: bool,
    /// `a=rtcp`: the peer's RTCP address, when not RTP port + 1.
    rtcp_addr: Option<SocketAddr>,
    /// The line is RTP/SAVP (SRTP).
    secure: bool,
    /// Its `a=crypto` lines voxline can use, in the peer's order.
    crypto: Vec<Crypto>,
}

/// The result of negotiation: what both sides will use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP.
    pub remote_rtp: SocketAddr,
    /// The chosen codec.
    pub codec: AudioCodec,
    /// Its payload type on this call.
    pub payload_type: u8,
    /// telephone-event payload type, when both sides have it.
    pub telephone_event_pt: Option<u8>,
    /// telephone-event's clock rate (the codec's, or 8000).
    pub telephone_event_rate: u32,
    /// Comfort noise (RFC 3389) payload type, when the peer offered CN/8000
    /// with a G.711 codec: voxline then sends CN instead of silence packets.
    pub comfort_noise_pt: Option<u8>,
    /// voxline's direction (what we write in our SDP).
    pub local_direction: Direction,
    /// RTCP shares the RTP port (the peer offered `a=rtcp-mux`).
    pub rtcp_mux: bool,
    /// The peer's RTCP address from `a=rtcp`, if given.
    pub remote_rtcp: Option<SocketAddr>,
    /// The SRTP keys, when the media is encrypted (RTP/SAVP).
    pub srtp: Option<SrtpKeys>,
    /// Index of the m-line taken among the SDP's m-lines.
    pub audio_index: usize,
}

impl Negotiated {
    /// Whether voxline should send RTP.
    pub fn we_send(&self) -> bool {
        matches!(self.local_direction, Direction::SendRecv | Direction::SendOnly)
            && !self.remote_rtp.ip().is_unspecified()
            && self.remote_rtp.port() != 0
    }

    /// The SRTP suite's name when the media is encrypted, for records.
    pub fn srtp_suite(&self) -> Option<&'static str> {
        self.srtp.as_ref().map(|k| k.suite.name())
    }
}

/// Parses a peer's SDP (an offer or an answer).
pub fn parse(body: &[u8]) -> Result<RemoteSdp, SdpError> {
    if body.len() > 16 * 1024 {
        return Err(SdpError::Malformed("body larger than 16 KiB".into()));
    }
    let mut cursor = Cursor::new(body);
    let sd = sdp::SessionDescription::unmarshal(&mut cursor).map_err(|e| SdpError::Malformed(e.to_string()))?;

    let session_conn = sd
        .connection_information
        .as_ref()
        .and_then(|c| c.address.as_ref())
        .map(|a| a.address.clone());
    let session_dir = sd
        .attributes
        .iter()
        .find_map(|a| Direction::parse(&a.key))
        .unwrap_or(Direction::SendRecv);

    let mlines = sd
        .media_descriptions
        .iter()
        .map(|m| {
            (
                m.media_name.media.clone(),
                m.media_name.protos.join("/"),
                m.media_name.formats.first().cloned().unwrap_or_else(|| "0".into()),
            )
        })
        .collect();

    // RTP/AVP or RTP/SAVP (SRTP keyed in `a=crypto`): an answer must use
    // the offer's profile (RFC 3264 6.1), and voxline does not do feedback
    // profiles (AVPF) or DTLS-SRTP (UDP/TLS/RTP/SAVP).
    let audio = |m: &&sdp::MediaDescription| m.media_name.media == "audio" && m.media_name.port.value > 0;
    // A line voxline cannot read (say, a host name for its address) is left
    // out, as it was before more than one line was kept; it is an error
    // only when no line is left.
    let mut streams = Vec::new();
    let mut unreadable = None;
    for (index, media) in sd.media_descriptions.iter().enumerate() {
        if !(audio(&media) && matches!(media.media_name.protos.join("/").as_str(), "RTP/AVP" | "RTP/SAVP")) {
            continue;
        }
        match audio_stream(index, media, session_conn.as_deref(), session_dir) {
            Ok(s) => streams.push(s),
            Err(e) => {
                unreadable.get_or_insert(e);
            }
        }
    }
    if let (true, Some(e)) = (streams.is_empty(), unreadable) {
        return Err(e);
    }
    if streams.is_empty() {
        let other: Vec<String> = sd
            .media_descriptions
            .iter()
            .filter(audio)
            .map(|m| m.media_name.protos.join("/"))
            .collect();
        return Err(SdpError::NotAcceptable(if other.is_empty() {
            "no active RTP audio stream".into()
        } else {
            format!(
                "audio offered only as {} (voxline takes RTP/AVP and RTP/SAVP)",
                other.join(", ")
            )
        }));
    }

    Ok(RemoteSdp {
        streams,
        mlines,
        origin: (sd.origin.session_id, sd.origin.session_version),
    })
}

/// Reads one RTP/AVP or RTP/SAVP audio m-line (`index` among all m-lines).
fn audio_stream(
    index: usize,
    media: &sdp::MediaDescription,
    session_conn: Option<&str>,
    session_dir: Direction,
) -> Result<AudioStream, SdpError> {
    let addr = media
        .connection_information
        .as_ref()
        .and_then(|c| c.address.as_ref())
        .map(|a| a.address.as_str())
        .or(session_conn)
        .ok_or_else(|| SdpError::Malformed("no connection address (c=)".into()))?;
    // Multicast-style "addr/ttl" is not used on phone calls; take the host part.
    let host = addr.split('/').next().unwrap_or(addr);
    let ip: IpAddr = host
        .parse()
        .map_err(|_| SdpError::NotAcceptable(format!("connection address {host:?} is not an IP address")))?;
    let port = u16::try_from(media.media_name.port.value)
        .map_err(|_| SdpError::Malformed("audio port out of range".into()))?;

    let direction = media
        .attributes
        .iter()
        .find_map(|a| Direction::parse(&a.key))
        .unwrap_or(session_dir);

    let mut formats = Vec::new();
    for f in &media.media_name.formats {
        let Ok(pt) = f.parse::<u8>() else { continue };
        if pt > 127 {
            continue;
        }
        let rtpmap = media.attributes.iter().find_map(|a| {
            if a.key != "rtpmap" {
                return None;
            }
            let v = a.value.as_deref()?;
            let (p, rest) = v.split_once(' ')?;
            (p.trim().parse::<u8>().ok()? == pt).then(|| rest.trim().to_string())
        });
        let (name, rate) = match rtpmap {
            Some(map) => {
                let mut parts = map.split('/');
                let name = parts.next().unwrap_or("").to_string();
                let rate = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
                (name, rate)
            }
            None => match pt {
                0 => ("PCMU".to_string(), 8000),
                8 => ("PCMA".to_string(), 8000),
                13 => ("CN".to_string(), 8000),
                _ => continue,
            },
        };
        formats.push(Format { pt, name, rate });
    }

    let rtcp_mux = media.attributes.iter().any(|a| a.key == "rtcp-mux");
    // a=rtcp:PORT [IN IP4 ADDR] (RFC 3605).
    let rtcp_addr = media.attributes.iter().find(|a| a.key == "rtcp").and_then(|a| {
        let v = a.value.as_deref()?;
        let mut parts = v.split_whitespace();
        let port: u16 = parts.next()?.parse().ok()?;
        let addr = parts.nth(2).and_then(|h| h.parse().ok()).unwrap_or(ip);
        Some(SocketAddr::new(addr, port))
    });

    let secure = media.media_name.protos.join("/") == "RTP/SAVP";
    // Keys only count on an RTP/SAVP line: `a=crypto` on RTP/AVP ("best
    // effort SRTP") is not RFC 4568 and is answered as plain RTP.
    let crypto = media
        .attributes
        .iter()
        .filter(|a| secure && a.key == "crypto")
        .filter_map(|a| parse_crypto(a.value.as_deref()?))
        .collect();

    Ok(AudioStream {
        index,
        rtp_addr: SocketAddr::new(ip, port),
        direction,
        formats,
        rtcp_mux,
        rtcp_addr,
        secure,
        crypto,
    })
}

impl RemoteSdp {
    /// Chooses the first audio line the policies accept and, on it, the
    /// first of the peer's formats that voxline supports (`supported` is
    /// voxline's allowed set); `offered` restricts the choice to what voxline
    /// itself offered when this SDP is an answer. `srtp` is voxline's side
    /// of SRTP: the policy decides whether a plain or an RTP/SAVP line is
    /// acceptable, and the first usable `a=crypto` line gives the far end's
    /// key. When no line is acceptable, the first line's reason is given.
    pub fn negotiate(
        &self,
        supported: &[AudioCodec],
        offered: Option<&[AudioCodec]>,
        srtp: &SrtpLocal,
    ) -> Result<Negotiated, SdpError> {
        let mut first_error = None;
        for stream in &self.streams {
            match stream.negotiate(supported, offered, srtp) {
                Ok(n) => return Ok(n),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| SdpError::NotAcceptable("no active RTP audio stream".into())))
    }
}

impl AudioStream {
    /// [`RemoteSdp::negotiate`] on this line alone.
    fn negotiate(
        &self,
        supported: &[AudioCodec],
        offered: Option<&[AudioCodec]>,
        srtp: &SrtpLocal,
    ) -> Result<Negotiated, SdpError> {
        let keys = self.srtp_keys(offered.is_some(), srtp)?;
        let pick = self.formats.iter().find_map(|f| {
            let codec = AudioCodec::from_name(&f.name)?;
            let ok = f.rate == codec.clock_rate()
                && supported.contains(&codec)
                && offered.is_none_or(|o| o.contains(&codec));
            ok.then_some((codec, f.pt))
        });
        let (codec, payload_type) = pick.ok_or_else(|| {
            let names: Vec<&str> = self.formats.iter().map(|f| f.name.as_str()).collect();
            SdpError::NotAcceptable(format!("no common codec (peer offered {names:?})"))
        })?;
        // telephone-event at the codec's clock rate if offered (RFC 4733), else at 8 kHz.
        let events = |rate: u32| {
            self.formats
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case("telephone-event") && f.rate == rate)
                .map(|f| (f.pt, rate))
        };
        let te = events(codec.clock_rate()).or_else(|| events(8000));
        // CN goes with narrowband codecs only (Opus has its own DTX).
        let comfort_noise_pt = self
            .formats
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case("CN") && f.rate == 8000 && codec.clock_rate() == 8000)
            .map(|f| f.pt);
        let mut local_direction = self.direction.answer_to();
        if self.rtp_addr.ip().is_unspecified() {
            // RFC 2543 hold: c=0.0.0.0 means "don't send to me".
            local_direction = match local_direction {
                Direction::SendRecv => Direction::RecvOnly,
                Direction::SendOnly => Direction::Inactive,
                d => d,
            };
        }
        Ok(Negotiated {
            remote_rtp: self.rtp_addr,
            codec,
            payload_type,
            telephone_event_pt: te.map(|t| t.0),
            telephone_event_rate: te.map_or(8000, |t| t.1),
            comfort_noise_pt,
            local_direction,
            rtcp_mux: self.rtcp_mux,
            remote_rtcp: self.rtcp_addr,
            srtp: keys,
            audio_index: self.index,
        })
    }

    /// The SRTP keys of this stream, or why its profile is not acceptable
    /// (`answer`: this SDP answers voxline's own offer).
    fn srtp_keys(&self, answer: bool, srtp: &SrtpLocal) -> Result<Option<SrtpKeys>, SdpError> {
        if answer && self.secure != srtp.offers_secure {
            let (ours, theirs) = if srtp.offers_secure {
                ("RTP/SAVP", "RTP/AVP")
            } else {
                ("RTP/AVP", "RTP/SAVP")
            };
            return Err(SdpError::Encryption(format!("answered in {theirs} to an {ours} offer")));
        }
        if !self.secure {
            if srtp.policy == SrtpPolicy::Required {
                return Err(SdpError::Encryption(
                    "plain RTP where encrypted media is required ([sip] srtp = \"required\")".into(),
                ));
            }
            return Ok(None);
        }
        if srtp.policy == SrtpPolicy::Off {
            return Err(SdpError::Encryption(
                "audio offered as RTP/SAVP and SRTP is off ([sip] srtp = \"off\")".into(),
            ));
        }
        let Some(c) = self.crypto.first() else {
            return Err(SdpError::Encryption(format!(
                "no usable a=crypto line on RTP/SAVP (voxline takes {} or {} with one inline key, no MKI)",
                SrtpSuite::AesCm128HmacSha1_80.name(),
                SrtpSuite::AesCm128HmacSha1_32.name()
            )));
        };
        Ok(Some(SrtpKeys {
            suite: c.suite,
            tag: c.tag,
            local: *srtp.key(),
            remote: c.key,
        }))
    }
}

/// voxline's side of the session: address and o= line state.
#[derive(Debug, Clone)]
pub struct LocalSdp {
    /// Address written in `c=` and `o=`.
    pub addr: IpAddr,
    /// Local RTP port.
    pub port: u16,
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` version, bumped whenever our SDP changes.
    pub version: u64,
    /// voxline's SRTP side of the call (policy, key).
    pub srtp: SrtpLocal,
}

/// The payload type voxline uses for telephone-event when it offers.
pub const OFFER_TELEPHONE_EVENT_PT: u8 = 101;

fn header(local: &LocalSdp) -> String {
    let ipv = if local.addr.is_ipv6() { "IP6" } else { "IP4" };
    format!(
        "v=0\r\no=voxline {} {} IN {ipv} {}\r\ns=voxline\r\nc=IN {ipv} {}\r\nt=0 0\r\n",
        local.session_id, local.version, local.addr, local.addr
    )
}

/// Writes an answer to `offer` with the negotiated result.
pub fn answer(local: &LocalSdp, offer: &RemoteSdp, neg: &Negotiated) -> String {
    let mut s = header(local);
    for (i, (media, proto, fmt)) in offer.mlines.iter().enumerate() {
        if i != neg.audio_index {
            // Reject other streams (video, a second audio) with port 0.
            s.push_str(&format!("m={media} 0 {proto} {fmt}\r\n"));
            continue;
        }
        let mut fmts = neg.payload_type.to_string();
        for extra in [neg.telephone_event_pt, neg.comfort_noise_pt].into_iter().flatten() {
            fmts.push_str(&format!(" {extra}"));
        }
        let proto = if neg.srtp.is_some() { "RTP/SAVP" } else { "RTP/AVP" };
        s.push_str(&format!("m=audio {} {proto} {fmts}\r\n", local.port));
        if let Some(k) = &neg.srtp {
            s.push_str(&format!("a={}\r\n", local.srtp.crypto_line(k.tag, k.suite)));
        }
        s.push_str(&format!("a=rtpmap:{} {}\r\n", neg.payload_type, neg.codec.rtpmap()));
        if let Some(f) = neg.codec.fmtp() {
            s.push_str(&format!("a=fmtp:{} {f}\r\n", neg.payload_type));
        }
        if let Some(te) = neg.telephone_event_pt {
            let rate = neg.telephone_event_rate;
            s.push_str(&format!("a=rtpmap:{te} telephone-event/{rate}\r\na=fmtp:{te} 0-16\r\n"));
        }
        if let Some(cn) = neg.comfort_noise_pt {
            s.push_str(&format!("a=rtpmap:{cn} CN/8000\r\n"));
        }
        if neg.rtcp_mux {
            s.push_str("a=rtcp-mux\r\n");
        }
        s.push_str(&format!("a=ptime:20\r\na={}\r\n", neg.local_direction.as_str()));
    }
    s
}

/// Writes an offer with `codecs` (in preference order) and telephone-event;
/// RTP/SAVP with both AES-CM-128 suites when `local.srtp` offers SRTP.
pub fn offer(local: &LocalSdp, codecs: &[AudioCodec], direction: Direction) -> String {
    let mut s = header(local);
    let mut fmts: Vec<String> = codecs.iter().map(|c| c.static_pt().to_string()).collect();
    fmts.push(OFFER_TELEPHONE_EVENT_PT.to_string());
    let proto = if local.srtp.offers_secure {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    s.push_str(&format!("m=audio {} {proto} {}\r\n", local.port, fmts.join(" ")));
    if local.srtp.offers_secure {
        for (tag, suite) in [(1, SrtpSuite::AesCm128HmacSha1_80), (2, SrtpSuite::AesCm128HmacSha1_32)] {
            s.push_str(&format!("a={}\r\n", local.srtp.crypto_line(tag, suite)));
        }
    }
    for c in codecs {
        s.push_str(&format!("a=rtpmap:{} {}\r\n", c.static_pt(), c.rtpmap()));
        if let Some(f) = c.fmtp() {
            s.push_str(&format!("a=fmtp:{} {f}\r\n", c.static_pt()));
        }
    }
    s.push_str(&format!(
        "a=rtpmap:{t} telephone-event/8000\r\na=fmtp:{t} 0-16\r\na=ptime:20\r\na={}\r\n",
        direction.as_str(),
        t = OFFER_TELEPHONE_EVENT_PT
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP_OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

    fn local() -> LocalSdp {
        LocalSdp {
            addr: "127.0.0.1".parse().unwrap(),
            port: 20000,
            session_id: 1,
            version: 1,
            srtp: plain(),
        }
    }

    /// The default SRTP side: plain offers, RTP/SAVP taken when offered.
    fn plain() -> SrtpLocal {
        SrtpLocal::new(SrtpPolicy::Optional)
    }

    const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn sipp_default_offer_negotiates_pcmu() {
        let o = parse(SIPP_OFFER.as_bytes()).unwrap();
        let n = o
            .negotiate(&[AudioCodec::Pcmu, AudioCodec::Pcma], None, &plain())
            .unwrap();
        assert_eq!(n.codec, AudioCodec::Pcmu);
        assert_eq!(n.payload_type, 0);
        assert_eq!(n.remote_rtp, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(n.local_direction, Direction::SendRecv);
        let a = answer(&local(), &o, &n);
        assert!(a.contains("m=audio 20000 RTP/AVP 0\r\n"), "{a}");
        // Our own answer parses back.
        parse(a.as_bytes()).unwrap();
    }

    #[test]
    fn offerer_preference_order_wins_and_telephone_event_is_kept() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n";
        let n = parse(offer.as_bytes())
            .unwrap()
            .negotiate(&[AudioCodec::Pcmu, AudioCodec::Pcma], None, &plain())
            .unwrap();
        assert_eq!(n.codec, AudioCodec::Pcma);
        assert_eq!(n.telephone_event_pt, Some(96));
    }

    #[test]
    fn no_common_codec_is_not_acceptable() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18 3\r\na=rtpmap:18 G729/8000\r\n";
        let e = parse(offer.as_bytes())
            .unwrap()
            .negotiate(&[AudioCodec::Pcmu, AudioCodec::Pcma], None, &plain())
            .unwrap_err();
        assert!(matches!(e, SdpError::NotAcceptable(_)));
    }

    #[test]
    fn hold_with_sendonly_is_answered_recvonly() {
        let offer = SIPP_OFFER.replace("a=rtpmap:0 PCMU/8000\r\n", "a=rtpmap:0 PCMU/8000\r\na=sendonly\r\n");
        let n = parse(offer.as_bytes())
            .unwrap()
            .negotiate(&[AudioCodec::Pcmu], None, &plain())
            .unwrap();
        assert_eq!(n.local_direction, Direction::RecvOnly);
        assert!(!n.we_send());
    }

    #[test]
    fn hold_with_inactive_and_with_zero_address() {
        let offer = SIPP_OFFER.replace("a=rtpmap:0 PCMU/8000\r\n", "a=rtpmap:0 PCMU/8000\r\na=inactive\r\n");
        let n = parse(offer.as_bytes())
            .unwrap()
            .negotiate(&[AudioCodec::Pcmu], None, &plain())
            .unwrap();
        assert_eq!(n.local_direction, Direction::Inactive);
        let offer = SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        let n = parse(offer.as_bytes())
            .unwrap()
            .negotiate(&[AudioCodec::Pcmu], None, &plain())
            .unwrap();
        assert!(!n.we_send());
    }

    #[test]
    fn video_stream_is_rejected_with_port_zero_in_the_answer() {
        let offer = format!("{SIPP_OFFER}m=video 6002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n");
        let o = parse(offer.as_bytes()).unwrap();
        let n = o.negotiate(&[AudioCodec::Pcmu], None, &plain()).unwrap();
        let a = answer(&local(), &o, &n);
        assert!(a.contains("m=video 0 RTP/AVP 96\r\n"), "{a}");
    }

    #[test]
    fn an_answer_to_our_offer_is_restricted_to_what_we_offered() {
        let our = offer(&local(), &[AudioCodec::Pcma], Direction::SendRecv);
        parse(our.as_bytes()).unwrap();
        let their = SIPP_OFFER; // PCMU only
        let e = parse(their.as_bytes()).unwrap().negotiate(
            &[AudioCodec::Pcmu, AudioCodec::Pcma],
            Some(&[AudioCodec::Pcma]),
            &plain(),
        );
        assert!(e.is_err());
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for body in [
            &b""[..],
            b"v=0\r\n",
            b"\xff\xfe\x00",
            b"v=0\r\no=x\r\n",
            b"m=audio 99999999999 RTP/AVP 0\r\n",
        ] {
            assert!(parse(body).is_err());
        }
    }

    /// What baresip and WebRTC gateways offer: Opus on a dynamic payload
    /// type, telephone-event at both clocks, RTCP multiplexed.
    #[test]
    fn an_srtp_offer_is_answered_in_rtp_savp_with_our_own_key() {
        let savp = SIPP_OFFER.replace("RTP/AVP", "RTP/SAVP")
            + &format!("a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}{KEY}\r\na=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:{KEY}|2^31\r\n");
        let offer = parse(savp.as_bytes()).expect("parsed");
        assert!(offer.streams[0].secure);
        let local = local();
        let n = offer
            .negotiate(&[AudioCodec::Pcmu], None, &local.srtp)
            .expect("acceptable");
        let keys = n.srtp.expect("SRTP");
        // The first line voxline can use (AES-256 it cannot), its tag kept.
        assert_eq!((keys.tag, keys.suite), (7, SrtpSuite::AesCm128HmacSha1_32));
        assert_eq!(&keys.local, local.srtp.key());
        assert_ne!(keys.local, keys.remote);
        let ans = answer(&local, &offer, &n);
        assert!(ans.contains("m=audio 20000 RTP/SAVP 0\r\n"), "{ans}");
        assert!(ans.contains("a=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:"), "{ans}");
        assert!(!ans.contains(KEY), "{ans}");
        // The far end reads our key back from the answer.
        let back = parse(ans.as_bytes()).expect("our answer parses");
        assert_eq!(back.streams[0].crypto[0].key, keys.local);
    }

    #[test]
    fn srtp_policy_decides_which_profiles_are_acceptable() {
        let savp =
            SIPP_OFFER.replace("RTP/AVP", "RTP/SAVP") + &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n");
        let savp = parse(savp.as_bytes()).expect("parsed");
        let avp = parse(SIPP_OFFER.as_bytes()).expect("parsed");
        let with = |p| SrtpLocal::new(p);
        let codecs = [AudioCodec::Pcmu];
        let why = |r: Result<Negotiated, SdpError>| match r {
            Err(SdpError::Encryption(why)) => why,
            other => panic!("{other:?}"),
        };
        assert!(why(savp.negotiate(&codecs, None, &with(SrtpPolicy::Off))).contains("srtp = \"off\""));
        assert!(why(avp.negotiate(&codecs, None, &with(SrtpPolicy::Required))).contains("required"));
        assert!(savp
            .negotiate(&codecs, None, &with(SrtpPolicy::Required))
            .is_ok_and(|n| n.srtp.is_some()));
        assert!(avp
            .negotiate(&codecs, None, &with(SrtpPolicy::Optional))
            .is_ok_and(|n| n.srtp.is_none()));
        // RTP/SAVP with no key voxline can use.
        let mki = SIPP_OFFER.replace("RTP/AVP", "RTP/SAVP")
            + &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4\r\n");
        let mki = parse(mki.as_bytes()).expect("parsed");
        assert!(why(mki.negotiate(&codecs, None, &plain())).contains("no usable a=crypto"));
        // An answer must keep the profile voxline offered in.
        assert!(why(savp.negotiate(&codecs, Some(&codecs), &plain())).contains("to an RTP/AVP offer"));
        assert!(
            why(avp.negotiate(&codecs, Some(&codecs), &with(SrtpPolicy::Required))).contains("to an RTP/SAVP offer")
        );
    }

    /// "SRTP with fallback": the same audio offered twice, RTP/SAVP first
    /// and RTP/AVP second (as Grandstream, Snom and Asterisk's
    /// `media_encryption_optimistic` peers do). The policy picks the line; the
    /// other is answered with port 0.
    #[test]
    fn a_savp_line_with_an_avp_fallback_is_answered_on_the_line_the_policy_takes() {
        let both = format!(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n\
             m=audio 4002 RTP/AVP 0\r\n"
        );
        let o = parse(both.as_bytes()).expect("parsed");
        let codecs = [AudioCodec::Pcmu];
        for (policy, port, secure) in [
            (SrtpPolicy::Optional, 4000, true),
            (SrtpPolicy::Required, 4000, true),
            (SrtpPolicy::Off, 4002, false),
        ] {
            let mut l = local();
            l.srtp = SrtpLocal::new(policy);
            let n = o.negotiate(&codecs, None, &l.srtp).expect("acceptable");
            assert_eq!((n.remote_rtp.port(), n.srtp.is_some()), (port, secure), "{policy:?}");
            let ans = answer(&l, &o, &n);
            let lines: Vec<&str> = ans.lines().filter(|l| l.starts_with("m=")).collect();
            let want = if secure {
                ["m=audio 20000 RTP/SAVP 0", "m=audio 0 RTP/AVP 0"]
            } else {
                ["m=audio 0 RTP/SAVP 0", "m=audio 20000 RTP/AVP 0"]
            };
            assert_eq!(lines, want, "{policy:?}: {ans}");
            assert_eq!(ans.contains("a=crypto:1 "), secure, "{ans}");
        }
        // The plain line first: optional takes it, required the RTP/SAVP one.
        let plain_first = format!(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
             m=audio 4002 RTP/AVP 0\r\n\
             m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"
        );
        let o = parse(plain_first.as_bytes()).expect("parsed");
        let n = o.negotiate(&codecs, None, &plain()).expect("optional");
        assert_eq!((n.remote_rtp.port(), n.srtp.is_some(), n.audio_index), (4002, false, 0));
        let n = o
            .negotiate(&codecs, None, &SrtpLocal::new(SrtpPolicy::Required))
            .expect("required");
        assert_eq!((n.remote_rtp.port(), n.srtp.is_some(), n.audio_index), (4000, true, 1));
        // An RTP/SAVP line without a usable key falls back to the plain one.
        let no_key = both.replace("AES_CM_128_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_80");
        let n = parse(no_key.as_bytes())
            .expect("parsed")
            .negotiate(&codecs, None, &plain())
            .expect("fallback");
        assert_eq!((n.remote_rtp.port(), n.srtp.is_some()), (4002, false));
        // A second line voxline cannot read does not spoil the first.
        let odd = format!("{SIPP_OFFER}m=audio 4002 RTP/AVP 0\r\nc=IN IP4 media.example.com\r\n");
        let o = parse(odd.as_bytes()).expect("the first line is enough");
        let n = o.negotiate(&codecs, None, &plain()).expect("acceptable");
        assert_eq!(n.remote_rtp.port(), 6000);
        assert!(answer(&local(), &o, &n).contains("m=audio 0 RTP/AVP 0\r\n"));
        // Neither line acceptable: the first line's reason.
        let e = parse(no_key.as_bytes())
            .expect("parsed")
            .negotiate(&codecs, None, &SrtpLocal::new(SrtpPolicy::Required))
            .unwrap_err();
        assert!(
            matches!(&e, SdpError::Encryption(why) if why.contains("no usable a=crypto")),
            "{e:?}"
        );
    }

    #[test]
    fn crypto_on_a_plain_line_is_best_effort_and_answered_plain() {
        let best_effort = format!("{SIPP_OFFER}a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n");
        let offer = parse(best_effort.as_bytes()).expect("parsed");
        let n = offer
            .negotiate(&[AudioCodec::Pcmu], None, &plain())
            .expect("acceptable");
        assert_eq!(n.srtp, None);
        let ans = answer(&local(), &offer, &n);
        assert!(ans.contains("RTP/AVP") && !ans.contains("crypto"), "{ans}");
    }

    #[test]
    fn a_required_offer_is_rtp_savp_with_both_suites() {
        let mut l = local();
        l.srtp = SrtpLocal::new(SrtpPolicy::Required);
        let o = offer(&l, &[AudioCodec::Pcmu], Direction::SendRecv);
        assert!(o.contains("m=audio 20000 RTP/SAVP 0 101\r\n"), "{o}");
        assert!(o.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"), "{o}");
        assert!(o.contains("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"), "{o}");
        assert!(!offer(&local(), &[AudioCodec::Pcmu], Direction::SendRecv).contains("SAVP"));
    }

    #[test]
    fn feedback_and_dtls_profiles_are_not_taken() {
        for proto in ["RTP/SAVPF", "UDP/TLS/RTP/SAVP"] {
            let o = SIPP_OFFER.replace("RTP/AVP", proto);
            match parse(o.as_bytes()) {
                Err(SdpError::NotAcceptable(why)) => assert!(why.contains(proto), "{why}"),
                other => panic!("{other:?}"),
            }
        }
    }

    const OPUS_OFFER: &str = "v=0\r\no=- 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 96 0 8 101 102\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtpmap:101 telephone-event/48000\r\na=rtpmap:102 telephone-event/8000\r\na=rtcp-mux\r\na=rtcp:5004\r\n";

    #[test]
    fn opus_is_taken_on_its_dynamic_payload_type_with_events_at_its_clock() {
        let o = parse(OPUS_OFFER.as_bytes()).unwrap();
        assert!(o.streams[0].rtcp_mux);
        assert_eq!(o.streams[0].rtcp_addr, Some("127.0.0.1:5004".parse().unwrap()));
        let all = [AudioCodec::Pcmu, AudioCodec::Pcma, AudioCodec::Opus];
        let n = o.negotiate(&all, None, &plain()).unwrap();
        assert_eq!((n.codec, n.payload_type), (AudioCodec::Opus, 96));
        assert_eq!((n.telephone_event_pt, n.telephone_event_rate), (Some(101), 48_000));
        assert!(n.rtcp_mux);
        let a = answer(&local(), &o, &n);
        assert!(a.contains("m=audio 20000 RTP/AVP 96 101\r\n"), "{a}");
        assert!(
            a.contains("a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1"),
            "{a}"
        );
        assert!(a.contains("a=rtpmap:101 telephone-event/48000\r\n"), "{a}");
        assert!(a.contains("a=rtcp-mux\r\n"), "{a}");
        // Without Opus allowed, G.711 from the same offer, events at 8 kHz.
        let n = o.negotiate(&[AudioCodec::Pcma], None, &plain()).unwrap();
        assert_eq!((n.codec, n.payload_type), (AudioCodec::Pcma, 8));
        assert_eq!((n.telephone_event_pt, n.telephone_event_rate), (Some(102), 8000));
    }

    #[test]
    fn opus_at_a_wrong_clock_rate_is_not_opus() {
        let bad = OPUS_OFFER.replace("opus/48000/2", "opus/16000");
        let n = parse(bad.as_bytes())
            .unwrap()
            .negotiate(&[AudioCodec::Opus, AudioCodec::Pcmu], None, &plain())
            .unwrap();
        assert_eq!(n.codec, AudioCodec::Pcmu);
    }

    #[test]
    fn our_offer_lists_opus_with_its_fmtp() {
        let our = offer(&local(), &[AudioCodec::Opus, AudioCodec::Pcmu], Direction::SendRecv);
        assert!(our.contains("m=audio 20000 RTP/AVP 111 0 101\r\n"), "{our}");
        assert!(
            our.contains("a=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1"),
            "{our}"
        );
        let n = parse(our.as_bytes())
            .unwrap()
            .negotiate(&[AudioCodec::Opus], Some(&[AudioCodec::Opus]), &plain())
            .unwrap();
        assert_eq!((n.codec, n.payload_type), (AudioCodec::Opus, 111));
        assert!(!n.rtcp_mux);
    }

    #[test]
    fn comfort_noise_is_accepted_with_g711_but_not_with_opus() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 13 101\r\na=rtpmap:101 telephone-event/8000\r\n";
        let o = parse(offer.as_bytes()).unwrap();
        let n = o.negotiate(&[AudioCodec::Pcmu], None, &plain()).unwrap();
        assert_eq!(n.comfort_noise_pt, Some(13));
        let a = answer(&local(), &o, &n);
        assert!(a.contains("m=audio 20000 RTP/AVP 0 101 13\r\n"), "{a}");
        assert!(a.contains("a=rtpmap:13 CN/8000\r\n"), "{a}");
        let opus = OPUS_OFFER.replace("RTP/AVP 96 0 8 101 102", "RTP/AVP 96 13 101");
        let n = parse(opus.as_bytes())
            .unwrap()
            .negotiate(&[AudioCodec::Opus], None, &plain())
            .unwrap();
        assert_eq!(n.comfort_noise_pt, None);
    }
}
