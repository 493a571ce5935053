//! The audio codecs voxline puts on the wire (PCMU, PCMA, Opus) and their
//! per-call encoder and decoder state. G.711 runs at 8 kHz; Opus is carried
//! with a 48 kHz RTP clock but encoded and decoded at 16 kHz (wideband, what
//! speech recognition wants), with in-band FEC and Opus' own concealment.

use crate::g711::{alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear};
use crate::MediaError;

/// An audio codec voxline can put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// G.711 μ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// Opus (RFC 7587), dynamic payload type, 48 kHz RTP clock.
    Opus,
}

/// Largest Opus packet voxline writes (well above 20 ms at any voice bitrate).
const OPUS_MAX_PACKET: usize = 400;

impl Codec {
    /// The codec's SDP encoding name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Opus => "opus",
        }
    }

    /// Looks a codec up by its SDP encoding name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Codec> {
        [Codec::Pcmu, Codec::Pcma, Codec::Opus]
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// The RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::Opus => 48_000,
        }
    }

    /// The rate of the PCM voxline encodes from and decodes to.
    pub fn pcm_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::Opus => 16_000,
        }
    }

    /// RTP timestamp units in one 20 ms frame.
    pub fn frame_timestamps(self) -> u32 {
        self.clock_rate() / 50
    }

    /// PCM samples in one 20 ms frame.
    pub fn frame_samples(self) -> usize {
        (self.pcm_rate() / 50) as usize
    }

    /// RTP timestamp units of audio in a payload of this codec (0 when it
    /// cannot be read: an empty or corrupt packet).
    pub fn payload_timestamps(self, payload: &[u8]) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => payload.len() as u32,
            Codec::Opus => opus::packet::get_nb_samples(payload, 48_000).map_or(0, |n| n as u32),
        }
    }
}

/// Encodes 20 ms frames of PCM for one call.
pub enum Encoder {
    /// PCMU or PCMA: stateless.
    G711(Codec),
    /// Opus at 16 kHz, FEC on.
    Opus(Box<opus::Encoder>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encoder::G711(c) => write!(f, "Encoder({})", c.name()),
            Encoder::Opus(_) => f.write_str("Encoder(opus)"),
        }
    }
}

fn opus_err(what: &str, e: opus::Error) -> MediaError {
    MediaError::Codec(format!("opus {what}: {e}"))
}

impl Encoder {
    /// An encoder for `codec` taking PCM at `codec.pcm_rate()`.
    pub fn new(codec: Codec) -> Result<Encoder, MediaError> {
        match codec {
            Codec::Pcmu | Codec::Pcma => Ok(Encoder::G711(codec)),
            Codec::Opus => {
                let mut e = opus::Encoder::new(codec.pcm_rate(), opus::Channels::Mono, opus::Application::Voip)
                    .map_err(|e| opus_err("encoder", e))?;
                // Voice at 24 kbit/s with in-band FEC sized for ~10% loss;
                // complexity 5 keeps thousands of calls affordable.
                e.set_bitrate(opus::Bitrate::Bits(24_000))
                    .map_err(|e| opus_err("bitrate", e))?;
                e.set_inband_fec(true).map_err(|e| opus_err("FEC", e))?;
                e.set_packet_loss_perc(10).map_err(|e| opus_err("loss", e))?;
                e.set_complexity(5).map_err(|e| opus_err("complexity", e))?;
                e.set_signal(opus::Signal::Voice).map_err(|e| opus_err("signal", e))?;
                Ok(Encoder::Opus(Box::new(e)))
            }
        }
    }

    /// Encodes one frame into `out` (cleared first).
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), MediaError> {
        out.clear();
        match self {
            Encoder::G711(Codec::Pcma) => out.extend(pcm.iter().map(|&s| linear_to_alaw(s))),
            Encoder::G711(_) => out.extend(pcm.iter().map(|&s| linear_to_ulaw(s))),
            Encoder::Opus(e) => {
                out.resize(OPUS_MAX_PACKET, 0);
                let n = e.encode(pcm, out).map_err(|e| opus_err("encode", e))?;
                out.truncate(n);
            }
        }
        Ok(())
    }
}

/// Decodes one call's packets to PCM, and conceals lost ones.
pub enum Decoder {
    /// PCMU or PCMA: stateless; concealment is done by the caller.
    G711(Codec),
    /// Opus at 16 kHz.
    Opus(Box<opus::Decoder>),
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decoder::G711(c) => write!(f, "Decoder({})", c.name()),
            Decoder::Opus(_) => f.write_str("Decoder(opus)"),
        }
    }
}

/// Most samples one Opus packet may hold at 16 kHz (120 ms).
const OPUS_MAX_FRAME_16K: usize = 1920;

impl Decoder {
    /// A decoder for `codec` giving PCM at `codec.pcm_rate()`.
    pub fn new(codec: Codec) -> Result<Decoder, MediaError> {
        match codec {
            Codec::Pcmu | Codec::Pcma => Ok(Decoder::G711(codec)),
            Codec::Opus => opus::Decoder::new(codec.pcm_rate(), opus::Channels::Mono)
                .map(|d| Decoder::Opus(Box::new(d)))
                .map_err(|e| opus_err("decoder", e)),
        }
    }

    /// Decodes one packet into `out` (cleared first).
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), MediaError> {
        out.clear();
        match self {
            Decoder::G711(Codec::Pcma) => out.extend(payload.iter().map(|&b| alaw_to_linear(b))),
            Decoder::G711(_) => out.extend(payload.iter().map(|&b| ulaw_to_linear(b))),
            Decoder::Opus(d) => {
                out.resize(OPUS_MAX_FRAME_16K, 0);
                let n = d.decode(payload, out, false).map_err(|e| opus_err("decode", e))?;
                out.truncate(n);
            }
        }
        Ok(())
    }

    /// Conceals one lost frame of `samples` PCM samples into `out`: from the
    /// FEC data of the packet that follows the loss when there is one, else
    /// by Opus' packet-loss concealment. Returns false for G.711, which has
    /// no concealment of its own.
    pub fn conceal(&mut self, next: Option<&[u8]>, samples: usize, out: &mut Vec<i16>) -> Result<bool, MediaError> {
        out.clear();
        let Decoder::Opus(d) = self else {
            return Ok(false);
        };
        out.resize(samples, 0);
        let n = match next {
            Some(p) => d.decode(p, out, true).map_err(|e| opus_err("FEC decode", e))?,
            None => d.decode(&[], out, false).map_err(|e| opus_err("concealment", e))?,
        };
        out.truncate(n);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, n: usize, hz: f32) -> Vec<i16> {
        (0..n)
            .map(|i| ((i as f32 * hz * std::f32::consts::TAU / rate as f32).sin() * 8000.0) as i16)
            .collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
    }

    #[test]
    fn codec_names_and_rates_follow_the_rtp_profiles() {
        assert_eq!(Codec::from_name("OPUS"), Some(Codec::Opus));
        assert_eq!(Codec::from_name("pcma"), Some(Codec::Pcma));
        assert_eq!(Codec::from_name("G729"), None);
        assert_eq!(Codec::Opus.frame_timestamps(), 960);
        assert_eq!(Codec::Opus.frame_samples(), 320);
        assert_eq!(Codec::Pcmu.frame_timestamps(), 160);
    }

    #[test]
    fn opus_round_trip_keeps_a_tone_and_reports_48k_duration() {
        let mut enc = Encoder::new(Codec::Opus).unwrap();
        let mut dec = Decoder::new(Codec::Opus).unwrap();
        let input = tone(16_000, 320 * 25, 440.0);
        let (mut pkt, mut out, mut decoded) = (Vec::new(), Vec::new(), Vec::new());
        for frame in input.chunks(320) {
            enc.encode(frame, &mut pkt).unwrap();
            assert!(!pkt.is_empty() && pkt.len() < OPUS_MAX_PACKET);
            assert_eq!(Codec::Opus.payload_timestamps(&pkt), 960);
            dec.decode(&pkt, &mut out).unwrap();
            assert_eq!(out.len(), 320);
            decoded.extend_from_slice(&out);
        }
        // After the codec's start-up, the level is kept within 3 dB.
        let ratio = rms(&decoded[3200..]) / rms(&input[3200..]);
        assert!((0.7..1.4).contains(&ratio), "level ratio {ratio}");
    }

    #[test]
    fn opus_fec_recovers_a_lost_frame_that_concealment_cannot_guess() {
        let mut enc = Encoder::new(Codec::Opus).unwrap();
        // Silence, then speech-like tone from frame 20 on: concealment of
        // frame 20 can only extrapolate the silence; FEC carries the tone.
        let mut input = vec![0i16; 320 * 20];
        input.extend(tone(16_000, 320 * 10, 300.0));
        let packets: Vec<Vec<u8>> = input
            .chunks(320)
            .map(|f| {
                let mut p = Vec::new();
                enc.encode(f, &mut p).unwrap();
                p
            })
            .collect();
        let heard = |fec: bool| {
            let mut dec = Decoder::new(Codec::Opus).unwrap();
            let mut out = Vec::new();
            for p in &packets[..20] {
                dec.decode(p, &mut out).unwrap();
            }
            // Packet 20 is lost; packet 21 carries its FEC copy.
            let next = fec.then_some(packets[21].as_slice());
            assert!(dec.conceal(next, 320, &mut out).unwrap());
            assert_eq!(out.len(), 320);
            rms(&out)
        };
        let (with_fec, plc_only) = (heard(true), heard(false));
        let tone_rms = rms(&input[6400..6720]);
        assert!(
            with_fec > 0.25 * tone_rms,
            "FEC frame rms {with_fec} vs tone {tone_rms}"
        );
        assert!(plc_only < 0.5 * with_fec, "PLC {plc_only} vs FEC {with_fec}");
        // G.711 leaves concealment to the caller.
        let mut g = Decoder::new(Codec::Pcmu).unwrap();
        assert!(!g.conceal(None, 160, &mut Vec::new()).unwrap());
    }

    #[test]
    fn g711_encoders_write_one_byte_per_sample() {
        for c in [Codec::Pcmu, Codec::Pcma] {
            let mut e = Encoder::new(c).unwrap();
            let mut d = Decoder::new(c).unwrap();
            let (mut p, mut o) = (Vec::new(), Vec::new());
            let t = tone(8000, 160, 1000.0);
            e.encode(&t, &mut p).unwrap();
            assert_eq!(p.len(), 160);
            assert_eq!(c.payload_timestamps(&p), 160);
            d.decode(&p, &mut o).unwrap();
            assert!((rms(&o) / rms(&t) - 1.0).abs() < 0.05);
        }
        assert_eq!(Codec::Opus.payload_timestamps(&[]), 0);
    }
}
