//! A bounds check of an RTP header before the `rtp` crate parses it: the
//! crate (0.17) walks RFC 8285 header-extension elements without checking
//! each against the packet's end, so a crafted datagram panics it (found by
//! the `media_ingress` fuzz target). Any UDP sender can reach a media port,
//! so every datagram passes this check first.

/// RFC 8285 one-byte header-extension profile.
const ONE_BYTE: u16 = 0xBEDE;
/// RFC 8285 two-byte header-extension profile.
const TWO_BYTE: u16 = 0x1000;

/// Whether `data` is an RTP version 2 packet whose CSRC list and header
/// extension (including each RFC 8285 element) lie inside it.
pub fn rtp_parseable(data: &[u8]) -> bool {
    if data.len() < 12 || data[0] >> 6 != 2 {
        return false;
    }
    let mut off = 12 + 4 * usize::from(data[0] & 0x0F);
    if data.len() < off {
        return false;
    }
    if data[0] & 0x10 == 0 {
        return true;
    }
    let Some(ext) = data.get(off..off + 4) else {
        return false;
    };
    let profile = u16::from_be_bytes([ext[0], ext[1]]);
    let end = off + 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    if data.len() < end {
        return false;
    }
    off += 4;
    match profile {
        ONE_BYTE => {
            while off < end {
                let b = data[off];
                off += 1;
                if b == 0 {
                    continue;
                }
                if b >> 4 == 15 {
                    break;
                }
                off += usize::from(b & 0x0F) + 1;
                if off > end {
                    return false;
                }
            }
            true
        }
        TWO_BYTE => {
            while off < end {
                if data[off] == 0 {
                    off += 1;
                    continue;
                }
                let Some(&len) = data.get(off + 1).filter(|_| off + 1 < end) else {
                    return false;
                };
                off += 2 + usize::from(len);
                if off > end {
                    return false;
                }
            }
            true
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webrtc_util::marshal::Unmarshal;

    #[test]
    fn the_fuzzers_crashing_packet_is_refused() {
        // From fuzz/artifacts/media_ingress (crash-eedd0b1e…): a one-byte
        // extension element longer than the packet.
        let crash = [
            50, 1, 234, 32, 201, 255, 255, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 1, 234, 32, 201, 255, 255,
            2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 154, 51, 46, 30, 0, 154, 51, 46, 30,
        ];
        assert!(!rtp_parseable(&crash));
    }

    #[test]
    fn ordinary_and_extended_packets_pass_and_parse() {
        let plain = crate::rtp_packet(0, true, 7, 160, 1, bytes::Bytes::from_static(&[0xFF; 160])).unwrap();
        assert!(rtp_parseable(&plain));
        // One-byte extension: id 1, two bytes of data, padded to 4.
        let mut ext = plain[..12].to_vec();
        ext[0] |= 0x10;
        ext.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x11, 0xAA, 0xBB, 0x00]);
        ext.extend_from_slice(&[0xFF; 20]);
        assert!(rtp_parseable(&ext));
        let mut d = &ext[..];
        assert!(rtp::packet::Packet::unmarshal(&mut d).is_ok());
        // The same element claiming 16 bytes overruns its block.
        ext[16] = 0x1F;
        assert!(!rtp_parseable(&ext));
        // Too short, wrong version, CSRCs past the end.
        assert!(!rtp_parseable(&plain[..11]));
        let mut v1 = plain.to_vec();
        v1[0] = 0x40;
        assert!(!rtp_parseable(&v1));
        let mut cc = plain[..12].to_vec();
        cc[0] |= 0x0F;
        assert!(!rtp_parseable(&cc));
    }
}
