//! Raw checks on every SIP datagram before the stack parses it. A malformed
//! request that says where it came from gets a 400 (an unknown method a 501);
//! anything else malformed is dropped. Nothing here panics, whatever the bytes.
//!
//! RFC 3261's answers to odd but possible requests are given here too
//! (decision 0062): another SIP version gets 505, a Request-URI scheme other
//! than sip, sips or tel 416, an option-tag we do not support in `Require`
//! 420 with `Unsupported`, an INVITE whose `Accept` excludes SDP 406; a
//! Request-URI in angle brackets or with headers, a display name with an
//! unbalanced quote or unquoted non-token characters, and a `Date` not in
//! RFC 1123 GMT form get 400. A legal request with folded lines, bare LF
//! line ends or whitespace the stack's parser does not take is rewritten in
//! plain form ([`Ingress::Rewrite`]) rather than lost.

use regex::Regex;
use std::sync::LazyLock;

/// What to do with one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingress {
    /// Well-formed as far as framing goes: hand it to the stack.
    Pass,
    /// Legal, but in a form the stack cannot parse (folded lines, spaces
    /// around separators): hand it these bytes instead, the same request
    /// written plainly.
    Rewrite(Vec<u8>),
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

/// Option-tags a request may `Require` (those voxline says it `Supported`).
pub const SUPPORTED_OPTION_TAGS: &[&str] = &["replaces", "timer"];

/// Request-URI schemes voxline serves.
const URI_SCHEMES: &[&str] = &["sip", "sips", "tel"];

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
    uri: &'a str,
    version: &'a str,
    /// Names and values, folded lines joined, names and values trimmed.
    headers: Vec<(String, String)>,
    body_len: usize,
}

fn split_head(data: &[u8]) -> Option<(&[u8], usize)> {
    let pos = data.windows(4).position(|w| w == b"\r\n\r\n").map(|p| (p, p + 4));
    let pos = pos.or_else(|| data.windows(2).position(|w| w == b"\n\n").map(|p| (p, p + 2)));
    pos.map(|(end, body)| (&data[..end], data.len() - body))
}

/// A Via value with the whitespace RFC 3261 allows around its separators
/// taken out ("SIP / 2.0 / UDP h ; branch = z9" is "SIP/2.0/UDP h;branch=z9").
fn plain_via(v: &str) -> String {
    static AROUND: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s*([/;=])\s*").expect("valid regex"));
    static COMMA: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s*,\s*").expect("valid regex"));
    COMMA.replace_all(&AROUND.replace_all(v, "$1"), ", ").into_owned()
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
    if !is_token(method) || uri.is_empty() || !is_version(version) {
        return reply_or_drop(data, 400, "Bad Request Line");
    }
    // Headers, folded lines joined to the line they continue (RFC 3261 §7.3.1).
    let mut headers: Vec<(String, String)> = Vec::new();
    // Lines ended by a bare LF are written again with CRLF.
    let mut rewritten = head.matches('\n').count() != head.matches("\r\n").count()
        || !data[..data.len() - body_len].ends_with(b"\r\n\r\n");
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            let Some((_, value)) = headers.last_mut() else {
                return reply_or_drop(data, 400, "Malformed Header Line");
            };
            if !value.is_empty() {
                value.push(' ');
            }
            value.push_str(line.trim());
            rewritten = true;
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return reply_or_drop(data, 400, "Malformed Header Line");
        };
        let trimmed = name.trim();
        if !is_token(trimmed) {
            return reply_or_drop(data, 400, "Malformed Header Name");
        }
        rewritten |= trimmed.len() != name.len();
        headers.push((trimmed.to_string(), value.trim().to_string()));
        if headers.len() > MAX_HEADER_LINES {
            return reply_or_drop(data, 400, "Too Many Headers");
        }
    }
    for (name, value) in headers.iter_mut() {
        if header_is(name, "Via", Some("v")) {
            let plain = plain_via(value);
            rewritten |= plain != *value;
            *value = plain;
        }
    }
    let p = Parsed {
        method,
        uri,
        version,
        headers,
        body_len,
    };
    match check_request(&p) {
        Ingress::Pass if rewritten => {
            let mut out = format!("{method} {uri} {version}\r\n");
            for (name, value) in &p.headers {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
            out.push_str("\r\n");
            let mut bytes = out.into_bytes();
            bytes.extend_from_slice(&data[data.len() - body_len..]);
            Ingress::Rewrite(bytes)
        }
        other => other,
    }
}

/// "SIP/<digits>.<digits>", any version (another than 2.0 gets 505).
fn is_version(v: &str) -> bool {
    v.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("SIP/"))
        && v[4..].split_once('.').is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && (a.to_owned() + b).bytes().all(|c| c.is_ascii_digit())
        })
}

/// Whether a From or To value's display name is well formed: quoted with
/// its closing quote, or words that are tokens.
fn name_addr_ok(v: &str) -> bool {
    let v = v.trim();
    if let Some(rest) = v.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return rest[i + 1..].trim_start().starts_with('<'),
                _ => {}
            }
        }
        return false;
    }
    match v.split_once('<') {
        // Tokens; letters beyond ASCII are let through (phones and PBXs
        // send "Müller <sip:…>" unquoted, and nothing is unclear in it).
        Some((display, _)) => display
            .split_whitespace()
            .all(|w| w.chars().all(|c| !c.is_ascii() || is_token(c.encode_utf8(&mut [0; 4])))),
        // addr-spec: no display name, no quote.
        None => !v.contains('"'),
    }
}

/// RFC 1123 dates in GMT, as SIP's `Date` requires (RFC 3261 §20.17).
fn date_ok(v: &str) -> bool {
    static DATE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$")
            .expect("valid regex")
    });
    DATE.is_match(v)
}

fn check_request(p: &Parsed<'_>) -> Ingress {
    let find = |long: &str, compact: Option<&str>| {
        p.headers
            .iter()
            .filter(|(n, _)| header_is(n, long, compact))
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    let vias = find("Via", Some("v"));
    if vias.is_empty() || !vias.iter().all(|v| valid_via(v)) {
        return Ingress::Drop("no usable Via");
    }
    if !p.version.eq_ignore_ascii_case("SIP/2.0") {
        return reply(p, 505, "Version Not Supported");
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
    if p.uri.starts_with('<') {
        return reply(p, 400, "Request-URI In Angle Brackets");
    }
    let Some((scheme, _)) = p.uri.split_once(':') else {
        return reply(p, 400, "Bad Request-URI");
    };
    let known_scheme = URI_SCHEMES.iter().any(|k| scheme.eq_ignore_ascii_case(k));
    if known_scheme && !scheme.eq_ignore_ascii_case("tel") && p.uri.contains('?') {
        return reply(p, 400, "Headers In Request-URI");
    }
    for (long, compact) in [("From", Some("f")), ("To", Some("t"))] {
        if !name_addr_ok(find(long, compact)[0]) {
            return reply(p, 400, &format!("Malformed {long} Display Name"));
        }
    }
    if find("Date", None).iter().any(|d| !date_ok(d)) {
        return reply(p, 400, "Invalid Date");
    }
    if !KNOWN_METHODS.contains(&p.method) {
        return reply(p, 501, "Not Implemented");
    }
    if !known_scheme {
        return reply(p, 416, "Unsupported URI Scheme");
    }
    // RFC 3261 §8.2.2.3: Require is not looked at on ACK and CANCEL.
    if !matches!(p.method, "ACK" | "CANCEL") {
        let unknown: Vec<&str> = find("Require", None)
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty() && !SUPPORTED_OPTION_TAGS.iter().any(|k| t.eq_ignore_ascii_case(k)))
            .collect();
        if !unknown.is_empty() {
            return reply_with(p, 420, "Bad Extension", &[("Unsupported", unknown.join(", "))]);
        }
    }
    // An INVITE is answered with SDP: an Accept without it (or empty,
    // RFC 3261 §20.1) leaves nothing to answer with.
    let accepts = find("Accept", None);
    if p.method == "INVITE" && !accepts.is_empty() {
        let sdp_ok = accepts.iter().flat_map(|v| v.split(',')).any(|range| {
            let range = range.split(';').next().unwrap_or("").trim();
            ["application/sdp", "application/*", "*/*"]
                .iter()
                .any(|ok| range.eq_ignore_ascii_case(ok))
        });
        if !sdp_ok {
            return reply_with(p, 406, "Not Acceptable", &[("Accept", "application/sdp".into())]);
        }
    }
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
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim(), v.trim()))
        .filter(|(n, v)| is_token(n) && v.len() < 1024)
        .take(MAX_HEADER_LINES)
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let vias: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| header_is(n, "Via", Some("v")))
        .map(|(_, v)| v.as_str())
        .collect();
    if vias.is_empty() || !vias.iter().all(|v| valid_via(v)) {
        return Ingress::Drop(reason);
    }
    let p = Parsed {
        method,
        uri: "",
        version: "",
        headers,
        body_len: 0,
    };
    reply(&p, code, reason)
}

fn reply(p: &Parsed<'_>, code: u16, reason: &str) -> Ingress {
    reply_with(p, code, reason, &[])
}

/// [`reply`] with `extra` headers.
fn reply_with(p: &Parsed<'_>, code: u16, reason: &str, extra: &[(&str, String)]) -> Ingress {
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
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
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

    /// Each kind of garbage with what must become of it: dropped when there
    /// is no Via to answer to, a 400 when there is.
    #[test]
    fn garbage_gets_the_outcome_it_should() {
        let samples: [(&[u8], Option<&str>); 8] = [
            (b"\xde\xad\xbe\xef", None),
            (b"INVITE", None),
            (b"INVITE \r\n\r\n", None),
            (b"\r\n\r\nINVITE sip:x SIP/2.0", None),
            (b"INV\x00ITE sip:b@127.0.0.1 SIP/2.0\r\n\r\n", None),
            (
                b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\n\xff\xfe: x\r\n\r\n",
                Some("SIP/2.0 400 Invalid UTF-8 In Header"),
            ),
            (
                b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\nFrom: <sip:a@b>;tag=1\r\n: no name\r\n\r\n",
                Some("SIP/2.0 400 Malformed Header Name"),
            ),
            (b":\r\n\r\n", None),
        ];
        for (bytes, want) in samples {
            let got = inspect(bytes);
            match want {
                None => assert!(
                    matches!(got, Ingress::Drop(_)),
                    "{:?}: {got:?}",
                    String::from_utf8_lossy(bytes)
                ),
                Some(line) => assert_eq!(
                    status(&got).as_deref(),
                    Some(line),
                    "{:?}",
                    String::from_utf8_lossy(bytes)
                ),
            }
        }
    }

    #[test]
    fn bare_line_feeds_and_folded_lines_are_rewritten_plainly() {
        let lf = b"OPTIONS sip:x SIP/2.0\nVia: SIP/2.0/UDP h\nFrom: <sip:a@b>;tag=1\nTo: <sip:x@y>\nCall-ID: c\nCSeq: 1 OPTIONS\n\n";
        let Ingress::Rewrite(plain) = inspect(lf) else {
            panic!("LF-only not rewritten")
        };
        let plain = String::from_utf8(plain).unwrap();
        assert!(
            plain.starts_with("OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"),
            "{plain}"
        );
        assert!(plain.ends_with("CSeq: 1 OPTIONS\r\n\r\n"), "{plain}");

        let folded = "OPTIONS sip:x@y SIP/2.0\r\nVia  :  SIP / 2.0 / UDP h:5060 ; branch = z9hG4bK9\r\nFrom:\r\n  <sip:a@b> ;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: c\r\nCSeq: 7\r\n\tOPTIONS\r\nContent-Length: 4\r\n\r\nbody";
        let Ingress::Rewrite(plain) = inspect(folded.as_bytes()) else {
            panic!("folded not rewritten")
        };
        let plain = String::from_utf8(plain).unwrap();
        assert!(
            plain.contains("\r\nVia: SIP/2.0/UDP h:5060;branch=z9hG4bK9\r\n"),
            "{plain}"
        );
        assert!(plain.contains("\r\nFrom: <sip:a@b> ;tag=1\r\n"), "{plain}");
        assert!(plain.contains("\r\nCSeq: 7 OPTIONS\r\n"), "{plain}");
        assert!(plain.ends_with("\r\n\r\nbody"), "{plain}");
        // A continuation with nothing to continue is malformed.
        let orphan = b"OPTIONS sip:x@y SIP/2.0\r\n folded: first\r\nVia: SIP/2.0/UDP h\r\n\r\n";
        assert_eq!(
            status(&inspect(orphan)).as_deref(),
            Some("SIP/2.0 400 Malformed Header Line")
        );
    }

    #[test]
    fn odd_requests_get_the_status_rfc_3261_gives() {
        let cases: [(Vec<u8>, &str); 10] = [
            (
                msg("OPTIONS sip:x@y SIP/2.0", "Require: timer, 100rel-ish\r\n", ""),
                "420 Bad Extension",
            ),
            (msg("OPTIONS mailto:x@y SIP/2.0", "", ""), "416 Unsupported URI Scheme"),
            (
                msg("INVITE sip:x@y SIP/2.0", "Accept: text/plain\r\n", ""),
                "406 Not Acceptable",
            ),
            (msg("INVITE sip:x@y SIP/2.0", "Accept: \r\n", ""), "406 Not Acceptable"),
            (
                msg("OPTIONS <sip:x@y> SIP/2.0", "", ""),
                "400 Request-URI In Angle Brackets",
            ),
            (
                msg("OPTIONS sip:x@y?Subject=hi SIP/2.0", "", ""),
                "400 Headers In Request-URI",
            ),
            (
                msg("OPTIONS sip:x@y SIP/2.0", "Date: 06 Dec 2026 16:00:00\r\n", ""),
                "400 Invalid Date",
            ),
            (msg("OPTIONS sip:x@y SIP/3.1", "", ""), "505 Version Not Supported"),
            (
                String::from_utf8(msg("OPTIONS sip:x@y SIP/2.0", "", ""))
                    .unwrap()
                    .replace("From: <", "From: \"Half <")
                    .into_bytes(),
                "400 Malformed From Display Name",
            ),
            (
                String::from_utf8(msg("OPTIONS sip:x@y SIP/2.0", "", ""))
                    .unwrap()
                    .replace("To: <", "To: J@ne <")
                    .into_bytes(),
                "400 Malformed To Display Name",
            ),
        ];
        for (m, want) in &cases {
            let got = inspect(m);
            assert_eq!(
                status(&got).as_deref(),
                Some(format!("SIP/2.0 {want}").as_str()),
                "{}",
                String::from_utf8_lossy(m)
            );
        }
        let Ingress::Reply(b) = inspect(&cases[0].0) else {
            unreachable!()
        };
        assert!(String::from_utf8(b)
            .unwrap()
            .contains("\r\nUnsupported: 100rel-ish\r\n"));
        let Ingress::Reply(b) = inspect(&cases[2].0) else {
            unreachable!()
        };
        assert!(String::from_utf8(b)
            .unwrap()
            .contains("\r\nAccept: application/sdp\r\n"));
    }

    #[test]
    fn legal_forms_of_the_checked_fields_pass() {
        for extra in [
            "Require: Timer\r\n",
            "Accept: application/sdp;level=1, text/plain\r\n",
            "Accept: */*\r\n",
            "Date: Sun, 06 Dec 2026 16:00:00 GMT\r\n",
        ] {
            assert_eq!(
                inspect(&msg("INVITE sip:x@y SIP/2.0", extra, "")),
                Ingress::Pass,
                "{extra}"
            );
        }
        assert_eq!(inspect(&msg("OPTIONS tel:+15551234567 SIP/2.0", "", "")), Ingress::Pass);
        assert_eq!(
            inspect(&msg("ACK sip:x@y SIP/2.0", "Require: anything\r\n", "")),
            Ingress::Pass
        );
        for v in [
            "\"Quoted \\\" Name\" <sip:a@b>;tag=1",
            "Plain Name <sip:a@b>",
            "Jürgen Müller <sip:a@b>",
            "sip:a@b;tag=1",
            "<sip:a@b>",
        ] {
            assert!(name_addr_ok(v), "{v}");
        }
        assert!(is_version("SIP/2.0") && is_version("sip/7.10"));
        assert!(!is_version("SIP/2") && !is_version("SIP/.0") && !is_version("SIP/2.x") && !is_version("HTTP/1.1"));
    }
}
