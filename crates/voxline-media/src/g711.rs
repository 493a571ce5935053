//! G.711 μ-law (PCMU) and A-law (PCMA) sample conversion, ITU-T G.711.

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// Encodes one linear sample to μ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(ULAW_CLIP) + ULAW_BIAS;
    // s >> 7 is in 1..=255: the segment is the position of its highest bit.
    let exponent = (31 - ((s >> 7) as u32).leading_zeros()) as i32;
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Decodes one μ-law byte to a linear sample.
pub fn ulaw_to_linear(byte: u8) -> i16 {
    ULAW_TABLE[byte as usize]
}

/// Decodes one A-law byte to a linear sample.
pub fn alaw_to_linear(byte: u8) -> i16 {
    ALAW_TABLE[byte as usize]
}

/// Every code of one law decoded (built at compile time).
macro_rules! decode_table {
    ($decode:ident) => {{
        let mut t = [0i16; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = $decode(i as u8);
            i += 1;
        }
        t
    }};
}

/// Every μ-law code decoded.
static ULAW_TABLE: [i16; 256] = decode_table!(ulaw_decode);
/// Every A-law code decoded.
static ALAW_TABLE: [i16; 256] = decode_table!(alaw_decode);

const fn ulaw_decode(byte: u8) -> i16 {
    let b = !byte;
    let sign = b & 0x80;
    let exponent = ((b >> 4) & 0x07) as i32;
    let mantissa = (b & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one linear sample to A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let s = i32::from(sample);
    let (sign, mag) = if s >= 0 { (0xD5u8, s) } else { (0x55u8, -s - 1) };
    let mag = mag.min(0x7FFF);
    let (exponent, mantissa) = if mag < 256 {
        (0, (mag >> 4) & 0x0F)
    } else {
        let exp = 31 - (mag as u32).leading_zeros() as i32 - 7; // 1..=7
        (exp, (mag >> (exp + 3)) & 0x0F)
    };
    (((exponent << 4) | mantissa) as u8) ^ sign
}

const fn alaw_decode(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let exponent = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_silence_and_extremes_round_trip() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(linear_to_ulaw(32767)), 32124);
        assert_eq!(ulaw_to_linear(linear_to_ulaw(-32768)), -32124);
    }

    #[test]
    fn alaw_silence_and_extremes_round_trip() {
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(linear_to_alaw(32767)), 32256);
        assert_eq!(alaw_to_linear(linear_to_alaw(-32768)), -32256);
    }

    /// Every code decodes to a value that encodes back to the same code
    /// (G.711 is a bijection on its 256 code points, except μ-law's two zeros).
    #[test]
    fn every_code_point_is_stable() {
        for b in 0..=255u8 {
            let a = alaw_to_linear(b);
            assert_eq!(linear_to_alaw(a), b, "A-law code {b:#04x}");
            let u = ulaw_to_linear(b);
            let back = linear_to_ulaw(u);
            assert!(
                back == b || (b == 0x7F && back == 0xFF),
                "μ-law code {b:#04x} -> {u} -> {back:#04x}"
            );
        }
    }

    /// Quantisation error stays within the step size of each segment.
    #[test]
    fn error_is_bounded_by_segment_step() {
        for s in (-32768i32..=32767).step_by(7) {
            let s = s as i16;
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(s)));
            let a = i32::from(alaw_to_linear(linear_to_alaw(s)));
            let tol = (i32::from(s).abs() / 16).max(16) + 8;
            assert!((u - i32::from(s)).abs() <= tol.max(132), "μ-law {s} -> {u}");
            assert!((a - i32::from(s)).abs() <= tol, "A-law {s} -> {a}");
        }
    }
}
