//! Call recordings as call recorders write them: WAV files in 16-bit PCM
//! (or any PCM depth, or float), G.711 μ-law or A-law, plain or
//! WAVE_FORMAT_EXTENSIBLE, mono or stereo (agent and customer on their own
//! channels). PCM is read and written with hound; G.711, which hound does
//! not read or write, is found by walking the RIFF chunks here (symphonia
//! 0.5.5 was tried: it takes the extensible μ-law sub-format for GUID
//! 0x0004, where ksmedia.h and recorders use 0x0007).

use crate::g711::{alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear};
use crate::MediaError;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// How a recording's samples are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavEncoding {
    /// Linear PCM (integer of any depth, or float).
    Pcm,
    /// G.711 μ-law, 8 bits a sample.
    MuLaw,
    /// G.711 A-law, 8 bits a sample.
    ALaw,
}

impl WavEncoding {
    /// Its name, as in a recording's description ("pcm", "ulaw", "alaw").
    pub fn name(self) -> &'static str {
        match self {
            WavEncoding::Pcm => "pcm",
            WavEncoding::MuLaw => "ulaw",
            WavEncoding::ALaw => "alaw",
        }
    }
}

/// A recording: each channel's 16-bit samples at one rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// Samples per second.
    pub rate: u32,
    /// One vector of samples per channel, all the same length.
    pub channels: Vec<Vec<i16>>,
    /// How the file stored them.
    pub encoding: WavEncoding,
}

impl Recording {
    /// Its length in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        let frames = self.channels.first().map_or(0, Vec::len) as u64;
        frames * 1000 / u64::from(self.rate.max(1))
    }
}

/// The tail every WAVE_FORMAT_EXTENSIBLE sub-format GUID shares after its
/// two-byte format tag (ksmedia.h).
const GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// Decodes one G.711 byte.
type G711Decode = fn(u8) -> i16;

/// What the `fmt ` and `data` chunks of a WAV file say.
struct Chunks<'a> {
    /// The format tag (an extensible file's sub-format).
    tag: u16,
    channels: usize,
    rate: u32,
    bits: u16,
    /// Where the data chunk's length field is.
    data_len_at: usize,
    /// The data, as much of it as the file holds (a recording cut short
    /// keeps what was written).
    data: &'a [u8],
    /// The data chunk's length is more than the file holds.
    cut: bool,
}

/// Walks the RIFF chunks of a WAV file to its `fmt ` and `data` chunks.
fn chunks(bytes: &[u8]) -> Result<Chunks<'_>, String> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a WAV file (no RIFF/WAVE header)".into());
    }
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut format = None;
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32_at(bytes, at + 4) as usize;
        let end = (at + 8).saturating_add(len);
        let body = &bytes[at + 8..end.min(bytes.len())];
        match id {
            b"fmt " => {
                if body.len() < 16 {
                    return Err(format!("a fmt chunk of {} bytes", body.len()));
                }
                let mut tag = u16_at(body, 0);
                if tag == 0xFFFE {
                    if body.len() < 40 {
                        return Err("an extensible fmt chunk without its sub-format".into());
                    }
                    if body[26..40] == GUID_TAIL {
                        tag = u16_at(body, 24);
                    }
                }
                format = Some((tag, usize::from(u16_at(body, 2)), u32_at(body, 4), u16_at(body, 14)));
            }
            b"data" => {
                let (tag, channels, rate, bits) = format.ok_or("the data chunk comes before the fmt chunk")?;
                if channels == 0 || rate == 0 {
                    return Err(format!("{channels} channels at {rate} Hz"));
                }
                return Ok(Chunks {
                    tag,
                    channels,
                    rate,
                    bits,
                    data_len_at: at + 4,
                    data: body,
                    cut: end > bytes.len(),
                });
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at = end.saturating_add(len % 2);
    }
    match format {
        Some(_) => Err("no data chunk".into()),
        None => Err("no fmt chunk".into()),
    }
}

/// Reads a WAV recording: every channel, at its own rate. A file that is
/// not a WAV, an encoding other than PCM, float or G.711, or a corrupt
/// header is an error naming the file and why; a file cut short (a
/// recorder that stopped mid-write) gives the samples it holds.
pub fn read_recording(path: &Path) -> Result<Recording, MediaError> {
    let err = |reason: String| MediaError::Wav {
        path: path.display().to_string(),
        reason,
    };
    let mut bytes = std::fs::read(path).map_err(|e| err(format!("opening: {e}")))?;
    let c = chunks(&bytes).map_err(err)?;
    let g711: Option<(WavEncoding, G711Decode)> = match c.tag {
        7 => Some((WavEncoding::MuLaw, ulaw_to_linear)),
        6 => Some((WavEncoding::ALaw, alaw_to_linear)),
        _ => None,
    };
    if let Some((encoding, decode)) = g711 {
        if c.bits != 8 {
            return Err(err(format!("G.711 with {} bits a sample (must be 8)", c.bits)));
        }
        let mut channels = vec![Vec::with_capacity(c.data.len() / c.channels); c.channels];
        for frame in c.data.chunks_exact(c.channels) {
            for (ch, &b) in channels.iter_mut().zip(frame) {
                ch.push(decode(b));
            }
        }
        return Ok(Recording {
            rate: c.rate,
            channels,
            encoding,
        });
    }
    if c.cut {
        // Cut short: the data chunk says what the file holds, whole frames.
        let frame = c.channels * usize::from(c.bits.div_ceil(8)).max(1);
        let held = (c.data.len() / frame * frame) as u32;
        let at = c.data_len_at;
        bytes[at..at + 4].copy_from_slice(&held.to_le_bytes());
    }
    let mut reader = hound::WavReader::new(std::io::Cursor::new(&bytes[..])).map_err(|e| err(e.to_string()))?;
    let spec = reader.spec();
    let n = usize::from(spec.channels);
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader.samples::<f32>().collect::<Result<_, _>>(),
        (hound::SampleFormat::Int, bits @ 1..=32) => {
            let k = 1.0 / (1u64 << (bits - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * k))
                .collect::<Result<_, _>>()
        }
        (f, b) => return Err(err(format!("{b}-bit {f:?} samples are not supported"))),
    }
    .map_err(|e| err(e.to_string()))?;
    let mut channels = vec![Vec::with_capacity(interleaved.len() / n); n];
    for frame in interleaved.chunks_exact(n) {
        for (ch, &v) in channels.iter_mut().zip(frame) {
            ch.push((v * 32768.0).round().clamp(-32768.0, 32767.0) as i16);
        }
    }
    Ok(Recording {
        rate: spec.sample_rate,
        channels,
        encoding: WavEncoding::Pcm,
    })
}

/// Writes `recording` (every channel the same length) as a WAV file in
/// `encoding`: 16-bit PCM, or 8-bit μ-law / A-law (format tags 7 and 6,
/// with the `fact` chunk those need).
pub fn write_recording(path: &Path, recording: &Recording, encoding: WavEncoding) -> Result<(), MediaError> {
    let err = |reason: String| MediaError::Wav {
        path: path.display().to_string(),
        reason,
    };
    let n = recording.channels.len();
    let frames = recording.channels.first().map_or(0, Vec::len);
    if n == 0 || n > 8 || recording.channels.iter().any(|c| c.len() != frames) {
        return Err(err(format!("{n} channels of unequal or no length")));
    }
    let interleaved = (0..frames).flat_map(|i| recording.channels.iter().map(move |c| c[i]));
    match encoding {
        WavEncoding::Pcm => {
            let spec = hound::WavSpec {
                channels: n as u16,
                sample_rate: recording.rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut w = hound::WavWriter::create(path, spec).map_err(|e| err(e.to_string()))?;
            for s in interleaved {
                w.write_sample(s).map_err(|e| err(e.to_string()))?;
            }
            w.finalize().map_err(|e| err(e.to_string()))
        }
        WavEncoding::MuLaw | WavEncoding::ALaw => {
            let (tag, encode): (u16, fn(i16) -> u8) = match encoding {
                WavEncoding::MuLaw => (7, linear_to_ulaw),
                _ => (6, linear_to_alaw),
            };
            let data: Vec<u8> = interleaved.map(encode).collect();
            let data_len = u32::try_from(data.len()).map_err(|_| err("longer than a WAV file holds".into()))?;
            let pad = data.len() % 2;
            let mut out = Vec::with_capacity(58 + data.len() + pad);
            out.extend_from_slice(b"RIFF");
            out.extend_from_slice(&(4 + 26 + 12 + 8 + data_len + pad as u32).to_le_bytes());
            out.extend_from_slice(b"WAVEfmt ");
            out.extend_from_slice(&18u32.to_le_bytes());
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&(n as u16).to_le_bytes());
            out.extend_from_slice(&recording.rate.to_le_bytes());
            out.extend_from_slice(&(recording.rate * n as u32).to_le_bytes());
            out.extend_from_slice(&(n as u16).to_le_bytes());
            out.extend_from_slice(&8u16.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(b"fact");
            out.extend_from_slice(&4u32.to_le_bytes());
            out.extend_from_slice(&(frames as u32).to_le_bytes());
            out.extend_from_slice(b"data");
            out.extend_from_slice(&data_len.to_le_bytes());
            out.extend_from_slice(&data);
            out.resize(out.len() + pad, 0);
            let file = File::create(path).map_err(|e| err(format!("creating: {e}")))?;
            let mut w = BufWriter::new(file);
            w.write_all(&out)
                .and_then(|()| w.flush())
                .map_err(|e| err(format!("writing: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("voxline-recording-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join(name)
    }

    /// A stereo call: a tone on the left, a different one on the right.
    fn call(rate: u32) -> Recording {
        let tone = |hz: f32, amp: f32| -> Vec<i16> {
            (0..rate / 2)
                .map(|i| (amp * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin()) as i16)
                .collect()
        };
        Recording {
            rate,
            channels: vec![tone(440.0, 8000.0), tone(300.0, 3000.0)],
            encoding: WavEncoding::Pcm,
        }
    }

    #[test]
    fn pcm_mulaw_and_alaw_recordings_read_back_channel_by_channel() {
        for (encoding, rate, tolerance) in [
            (WavEncoding::Pcm, 16_000, 0),
            (WavEncoding::MuLaw, 8000, 300),
            (WavEncoding::ALaw, 8000, 300),
        ] {
            let path = temp(&format!("call-{}.wav", encoding.name()));
            let want = call(rate);
            write_recording(&path, &want, encoding).expect("write");
            let got = read_recording(&path).expect("read");
            assert_eq!((got.rate, got.encoding, got.channels.len()), (rate, encoding, 2));
            assert_eq!(got.channels[0].len(), want.channels[0].len(), "{encoding:?}");
            assert_eq!(got.duration_ms(), 500);
            for (g, w) in got.channels.iter().zip(&want.channels) {
                let worst = g
                    .iter()
                    .zip(w)
                    .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
                    .max();
                assert!(worst.is_some_and(|d| d <= tolerance), "{encoding:?}: off by {worst:?}");
            }
        }
    }

    #[test]
    fn an_extensible_mulaw_header_reads_too() {
        // WAVE_FORMAT_EXTENSIBLE (0xFFFE) with the μ-law sub-format GUID, as
        // some recorders write it; mono, 8 kHz, four samples.
        let samples = [0xFFu8, 0x80, 0x00, 0x7F];
        let mut f = Vec::new();
        f.extend_from_slice(b"RIFF");
        f.extend_from_slice(&(4 + 8 + 40 + 8 + samples.len() as u32).to_le_bytes());
        f.extend_from_slice(b"WAVEfmt ");
        f.extend_from_slice(&40u32.to_le_bytes());
        f.extend_from_slice(&0xFFFEu16.to_le_bytes());
        f.extend_from_slice(&1u16.to_le_bytes());
        f.extend_from_slice(&8000u32.to_le_bytes());
        f.extend_from_slice(&8000u32.to_le_bytes());
        f.extend_from_slice(&1u16.to_le_bytes());
        f.extend_from_slice(&8u16.to_le_bytes());
        f.extend_from_slice(&22u16.to_le_bytes());
        f.extend_from_slice(&8u16.to_le_bytes());
        f.extend_from_slice(&4u32.to_le_bytes()); // front centre
        f.extend_from_slice(&[
            0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
        ]);
        f.extend_from_slice(b"data");
        f.extend_from_slice(&(samples.len() as u32).to_le_bytes());
        f.extend_from_slice(&samples);
        let path = temp("extensible.wav");
        std::fs::write(&path, f).expect("write");
        let got = read_recording(&path).expect("read");
        assert_eq!(got.encoding, WavEncoding::MuLaw);
        let want: Vec<i16> = samples.iter().map(|&b| crate::g711::ulaw_to_linear(b)).collect();
        assert_eq!(got.channels, vec![want]);
    }

    #[test]
    fn files_that_are_not_recordings_are_named_with_why() {
        let path = temp("not-a-wav.wav");
        std::fs::write(&path, b"this is a text file, not audio").expect("write");
        let e = read_recording(&path).unwrap_err().to_string();
        assert!(e.contains("not-a-wav.wav") && e.contains("not a WAV"), "{e}");
        // A header cut inside the fmt chunk.
        let path = temp("short-fmt.wav");
        std::fs::write(&path, b"RIFF\x20\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x07\x00").expect("write");
        let e = read_recording(&path).unwrap_err().to_string();
        assert!(e.contains("short-fmt.wav") && e.contains("fmt chunk"), "{e}");
        let e = read_recording(&temp("missing.wav")).unwrap_err().to_string();
        assert!(e.contains("missing.wav") && e.contains("opening"), "{e}");
        // A recording cut off in the middle of its data: what is there is read.
        let path = temp("cut.wav");
        write_recording(&path, &call(8000), WavEncoding::MuLaw).expect("write");
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() - 2000]).expect("cut");
        let got = read_recording(&path).expect("a cut file reads");
        assert_eq!(got.channels[0].len(), 4000 - 1000);
        let path = temp("cut-pcm.wav");
        write_recording(&path, &call(8000), WavEncoding::Pcm).expect("write");
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() - 4000]).expect("cut");
        let got = read_recording(&path).expect("a cut PCM file reads");
        assert_eq!(got.channels[0].len(), 4000 - 1000);
    }
}
