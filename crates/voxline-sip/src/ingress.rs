//! Raw checks on every SIP datagram before the stack parses it. A malformed
//! request that says where it came from gets a 400 (an unknown method a 501);
//! anything else malformed is dropped. Nothing here panics, whatever the bytes.

/// What to do with one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingress {
    /// Well-formed as far as framing goes: hand it to the stack.
    Pass,
    /// Answer with these bytes and drop the request.
    Reply(Vec<u8>),
    /// Drop silently (no usable address or not SIP at all).
    Drop(&'static str),
}

/// Largest header section accepted, bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header lines accepted.
pub const MAX_HEADER_LINES: usize = 200;

/// Methods the stack knows (RFC 3261 and extensions it implements).
const KNOWN_METHODS: &[&str] = &[
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "INFO",
    "UPDATE",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "MESSAGE",
    "PUBLISH",
];

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// Long and compact names of a header, lower-case.
fn header_is(name: &str, long: &str, compact: Option<&str>) -> bool {
    name.eq_ignore_ascii_case(long) || compact.is_some_and(|c| name.eq_ignore_ascii_case(c))
}

struct Parsed<'a> {
    method: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body_len: usize,
}

fn split_head(data: &[u8]) -> Option<(&[u8], usize)> {
    let pos = data.windows(4).position(|w| w == b"\r\n\r\n").map(|p| (p, p + 4));
    let pos = pos.or_else(|| data.windows(2).position(|w| w == b"\n\n").map(|p| (p, p + 2)));
    pos.map(|(end, body)| (&data[..end], data.len() - body))
}

/// Inspects one datagram.
pub fn inspect(data: &[u8]) -> Ingress {
    if data.iter().all(|b| b.is_ascii_whitespace()) {
        return Ingress::Pass; // keep-alive
    }
    if data.starts_with(b"SIP/2.0 ") {
        return Ingress::Pass; // responses: the stack matches or drops them
    }
    let Some((head, body_len)) = split_head(data) else {
        return reply_or_drop(data, 400, "Missing Header Terminator");
    };
    let Ok(head) = std::str::from_utf8(head) else {
        return reply_or_drop(data, 400, "Invalid UTF-8 In Header");
    };
    if head.len() > MAX_HEADER_BYTES {
        return reply_or_drop(data, 400, "Header Too Large");
    }
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return reply_or_drop(data, 400, "Bad Request Line");
    };
    if !is_token(method) || uri.is_empty() || !version.eq_ignore_ascii_case("SIP/2.0") {
        return reply_or_drop(data, 400, "Bad Request Line");
    }
    let mut headers = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            continue; // folded continuation of the previous header
        }
        let Some((name, value)) = line.split_once(':') else {
            return reply_or_drop(data, 400, "Malformed Header Line");
        };
        let name = name.trim();
        if !is_token(name) {
            return reply_or_drop(data, 400, "Malformed Header Name");
        }
        headers.push((name, value.trim()));
        if headers.len() > MAX_HEADER_LINES {
            return reply_or_drop(data, 400, "Too Many Headers");
        }
    }
    let p = Parsed {
        method,
        headers,
        body_len,
    };
    check_request(&p, data)
}

fn check_request(p: &Parsed<'_>, data: &[u8]) -> Ingress {
    let find = |long: &str, compact: Option<&str>| {
        p.headers
            .iter()
            .filter(|(n, _)| header_is(n, long, compact))
            .map(|(_, v)| *v)
            .collect::<Vec<_>>()
    };
    let vias = find("Via", Some("v"));
    if vias.is_empty() || !vias.iter().all(|v| valid_via(v)) {
        return Ingress::Drop("no usable Via");
    }
    for (long, compact) in [
        ("From", Some("f")),
        ("To", Some("t")),
        ("Call-ID", Some("i")),
        ("CSeq", None),
    ] {
        let v = find(long, compact);
        if v.len() != 1 || v[0].is_empty() {
            return reply(p, 400, &format!("Missing Or Repeated {long}"));
        }
    }
    let cseq = find("CSeq", None)[0];
    let mut cs = cseq.split_whitespace();
    let (Some(num), Some(m), None) = (cs.next(), cs.next(), cs.next()) else {
        return reply(p, 400, "Bad CSeq");
    };
    if num.parse::<u32>().is_err() || !m.eq_ignore_ascii_case(p.method) {
        return reply(p, 400, "Bad CSeq");
    }
    let lengths = find("Content-Length", Some("l"));
    match lengths.as_slice() {
        [] => {}
        [l] => match l.parse::<usize>() {
            Ok(n) if n == p.body_len => {}
            // RFC 3261 §18.3: over UDP extra bytes after Content-Length are discarded.
            Ok(n) if n < p.body_len => {}
            Ok(_) => return reply(p, 400, "Content-Length Larger Than Body"),
            Err(_) => return reply(p, 400, "Invalid Content-Length"),
        },
        _ => return reply(p, 400, "Repeated Content-Length"),
    }
    if let Some(mf) = find("Max-Forwards", None).first() {
        if mf.parse::<u8>().is_err() {
            return reply(p, 400, "Invalid Max-Forwards");
        }
    }
    if !KNOWN_METHODS.contains(&p.method) {
        return reply(p, 501, "Not Implemented");
    }
    let _ = data;
    Ingress::Pass
}

fn valid_via(v: &str) -> bool {
    // SIP/2.0/UDP host[:port][;params], possibly several comma-separated.
    v.split(',').all(|one| {
        let one = one.trim();
        let mut it = one.splitn(2, char::is_whitespace);
        let proto = it.next().unwrap_or("");
        let sent_by = it.next().unwrap_or("").trim();
        let host = sent_by.split(';').next().unwrap_or("").trim();
        let mut p = proto.split('/');
        matches!((p.next(), p.next(), p.next(), p.next()), (Some(a), Some(b), Some(t), None)
            if a.eq_ignore_ascii_case("SIP") && b == "2.0" && is_token(t))
            && !host.is_empty()
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    })
}

/// Replies when the request has a Via to answer to, else drops.
fn reply_or_drop(data: &[u8], code: u16, reason: &'static str) -> Ingress {
    // Salvage what headers we can from a lossy view of the bytes.
    let text = String::from_utf8_lossy(data);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
    let first = lines.next().unwrap_or("");
    let method = first.split(' ').next().unwrap_or("");
    if !is_token(method) {
        return Ingress::Drop(reason);
    }
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim(), v.trim()))
        .filter(|(n, v)| is_token(n) && v.len() < 1024)
        .take(MAX_HEADER_LINES)
        .collect();
    let vias: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| header_is(n, "Via", Some("v")))
        .map(|(_, v)| *v)
        .collect();
    if vias.is_empty() || !vias.iter().all(|v| valid_via(v)) {
        return Ingress::Drop(reason);
    }
    let p = Parsed {
        method,
        headers,
        body_len: 0,
    };
    reply(&p, code, reason)
}

fn reply(p: &Parsed<'_>, code: u16, reason: &str) -> Ingress {
    if p.method.eq_ignore_ascii_case("ACK") {
        return Ingress::Drop("malformed ACK"); // never answer an ACK
    }
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for (long, compact) in [
        ("Via", Some("v")),
        ("From", Some("f")),
        ("To", Some("t")),
        ("Call-ID", Some("i")),
        ("CSeq", None),
    ] {
        for (_, v) in p.headers.iter().filter(|(n, _)| header_is(n, long, compact)) {
            if long == "To" && !v.contains(";tag=") {
                out.push_str(&format!("To: {v};tag={:08x}\r\n", rand::random::<u32>()));
            } else {
                out.push_str(&format!("{long}: {v}\r\n"));
            }
        }
    }
    if code == 501 {
        out.push_str(&format!("Allow: {}\r\n", crate::endpoint::ALLOWED_METHODS));
    }
    out.push_str("Server: voxline\r\nContent-Length: 0\r\n\r\n");
    Ingress::Reply(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(first: &str, extra: &str, body: &str) -> Vec<u8> {
        format!(
            "{first}\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c1\r\nCSeq: 1 {m}\r\nMax-Forwards: 70\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len(),
            m = first.split(' ').next().unwrap()
        )
        .into_bytes()
    }

    fn status(i: &Ingress) -> Option<String> {
        match i {
            Ingress::Reply(b) => Some(String::from_utf8_lossy(b).lines().next().unwrap_or("").to_string()),
            _ => None,
        }
    }

    #[test]
    fn a_good_request_passes() {
        assert_eq!(inspect(&msg("OPTIONS sip:x@y SIP/2.0", "", "")), Ingress::Pass);
        assert_eq!(
            inspect(&msg(
                "INVITE sip:x@y SIP/2.0",
                "Content-Type: application/sdp\r\n",
                "v=0\r\n"
            )),
            Ingress::Pass
        );
        assert_eq!(inspect(b"\r\n\r\n"), Ingress::Pass);
        assert_eq!(inspect(b"SIP/2.0 200 OK\r\n\r\n"), Ingress::Pass);
    }

    #[test]
    fn negative_content_length_gets_400() {
        let m = String::from_utf8(msg("OPTIONS sip:x@y SIP/2.0", "", ""))
            .unwrap()
            .replace("Content-Length: 0", "Content-Length: -5");
        assert_eq!(
            status(&inspect(m.as_bytes())).unwrap(),
            "SIP/2.0 400 Invalid Content-Length"
        );
    }

    #[test]
    fn content_length_larger_than_body_gets_400() {
        let m = String::from_utf8(msg("INVITE sip:x@y SIP/2.0", "", "v=0\r\n"))
            .unwrap()
            .replace("Content-Length: 5", "Content-Length: 500");
        assert_eq!(
            status(&inspect(m.as_bytes())).unwrap(),
            "SIP/2.0 400 Content-Length Larger Than Body"
        );
    }

    #[test]
    fn missing_call_id_gets_400_with_the_via_copied() {
        let m = String::from_utf8(msg("OPTIONS sip:x@y SIP/2.0", "", ""))
            .unwrap()
            .replace("Call-ID: c1\r\n", "");
        let r = inspect(m.as_bytes());
        assert_eq!(status(&r).unwrap(), "SIP/2.0 400 Missing Or Repeated Call-ID");
        let Ingress::Reply(b) = r else { unreachable!() };
        let text = String::from_utf8(b).unwrap();
        assert!(text.contains("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"));
        assert!(text.contains("To: <sip:b@y>;tag="));
    }

    #[test]
    fn bad_via_is_dropped_because_there_is_nowhere_to_answer() {
        let m = String::from_utf8(msg("OPTIONS sip:x@y SIP/2.0", "", ""))
            .unwrap()
            .replace("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1", "Via: garbage;;;");
        assert!(matches!(inspect(m.as_bytes()), Ingress::Drop(_)));
    }

    #[test]
    fn unknown_method_gets_501_with_allow() {
        let r = inspect(&msg("FROBNICATE sip:x@y SIP/2.0", "", ""));
        assert_eq!(status(&r).unwrap(), "SIP/2.0 501 Not Implemented");
        let Ingress::Reply(b) = r else { unreachable!() };
        assert!(String::from_utf8(b).unwrap().contains("Allow: INVITE"));
    }

    #[test]
    fn oversized_headers_get_400() {
        let big = format!("X-Big: {}\r\n", "a".repeat(MAX_HEADER_BYTES));
        assert_eq!(
            status(&inspect(&msg("OPTIONS sip:x@y SIP/2.0", &big, ""))).unwrap(),
            "SIP/2.0 400 Header Too Large"
        );
    }

    #[test]
    fn cseq_method_mismatch_gets_400() {
        let m = String::from_utf8(msg("OPTIONS sip:x@y SIP/2.0", "", ""))
            .unwrap()
            .replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
        assert_eq!(status(&inspect(m.as_bytes())).unwrap(), "SIP/2.0 400 Bad CSeq");
    }

    #[test]
    fn a_malformed_ack_is_never_answered() {
        let m = String::from_utf8(msg("ACK sip:x@y SIP/2.0", "", ""))
            .unwrap()
            .replace("Content-Length: 0", "Content-Length: x");
        assert!(matches!(inspect(m.as_bytes()), Ingress::Drop(_)));
    }

    #[test]
    fn garbage_never_panics() {
        let samples: [&[u8]; 8] = [
            b"\xde\xad\xbe\xef",
            b"INVITE",
            b"INVITE \r\n\r\n",
            b"\r\n\r\nINVITE sip:x SIP/2.0",
            b"INV\x00ITE sip:b@127.0.0.1 SIP/2.0\r\n\r\n",
            b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\n\xff\xfe: x\r\n\r\n",
            b"OPTIONS sip:x SIP/2.0\nVia: SIP/2.0/UDP h\nFrom: a\nTo: b\nCall-ID: c\nCSeq: 1 OPTIONS\n\n",
            b":\r\n\r\n",
        ];
        for s in samples {
            let _ = inspect(s);
        }
    }
}
