//! Digest authentication of SIP phones (`[[user]]`) calling in (RFC 3261
//! §22, RFC 2617 with `qop=auth`). Unknown users and wrong passwords get the
//! same answer, so nothing can be learned about which extensions exist.
//!
//! Against replay and guessing (decision 0061):
//! - nonces are minted without state: their expiry and an HMAC of it under a
//!   key drawn at start-up, so a flood of challenges holds no memory, a nonce
//!   we never issued is refused and an expired one answered `stale=true`;
//! - each nonce and count (`nc`) is taken once: a replayed `Authorization`
//!   header is challenged again, however fresh its nonce;
//! - the digest's `uri` must name the Request-URI's user and host (a sniffed
//!   header cannot dial another route);
//! - responses are compared in constant time;
//! - a user name with [`USER_MAX_FAILURES`] failures in [`FAILURE_WINDOW`]
//!   is refused for [`USER_LOCKOUT`] whatever it sends, and a source with
//!   [`SOURCE_MAX_FAILURES`] failures is reported for a ban.

use crate::config::UserConfig;
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use rsipstack::sip::typed::tokenizers::AuthTokenizer;
use rsipstack::sip::{Header, Request, Uri};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// How long a nonce we issued stays valid.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Failures counted within this window (per user name and per source).
pub const FAILURE_WINDOW: Duration = Duration::from_secs(600);
/// Failed attempts on one user name before it is locked.
pub const USER_MAX_FAILURES: u32 = 5;
/// How long a locked user name is refused.
pub const USER_LOCKOUT: Duration = Duration::from_secs(600);
/// Failed attempts from one source before it is reported for a ban.
pub const SOURCE_MAX_FAILURES: u32 = 10;
/// Most nonces in use (authenticated) or failure counters kept.
const MAX_ENTRIES: usize = 50_000;

/// The outcome of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Authenticated as this user.
    Authenticated(String),
    /// No (usable) credentials yet, a nonce we did not issue, or one
    /// already used or expired (`stale`: the client may retry with its
    /// credentials on a fresh nonce without asking its user): answer 401.
    Challenge {
        /// Say `stale=true` in the challenge.
        stale: bool,
    },
    /// Wrong credentials, unknown or locked user, or a digest for another
    /// URI: answer 403.
    Forbidden,
    /// As [`AuthOutcome::Forbidden`], and the source has failed
    /// [`SOURCE_MAX_FAILURES`] times: ban it.
    BanSource,
}

/// Failures counted for one user name or source.
#[derive(Debug, Clone, Copy)]
struct Strikes {
    count: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

impl Strikes {
    /// Counts one failure at `now`; returns the count in the window.
    fn add(&mut self, now: Instant) -> u32 {
        if now.duration_since(self.since) >= FAILURE_WINDOW {
            self.count = 0;
            self.since = now;
        }
        self.count += 1;
        self.count
    }

    fn locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|u| now < u)
    }

    fn idle(&self, now: Instant) -> bool {
        !self.locked(now) && now.duration_since(self.since) >= FAILURE_WINDOW
    }
}

#[derive(Debug, Default)]
struct Failures {
    by_user: HashMap<String, Strikes>,
    by_source: HashMap<IpAddr, Strikes>,
}

/// The parts of a digest `Authorization` header we check.
#[derive(Debug)]
struct Credentials<'a> {
    username: &'a str,
    realm: &'a str,
    nonce: &'a str,
    uri: &'a str,
    response: &'a str,
    /// `(nc as sent, nc, cnonce)` for `qop=auth`.
    qop: Option<(&'a str, u32, &'a str)>,
}

/// Why a header could not be read as digest credentials.
#[derive(Debug, PartialEq, Eq)]
enum Unreadable {
    /// Not a digest header (another scheme): challenge.
    NotDigest,
    /// A digest header missing a field or with one we do not accept.
    Malformed,
}

impl<'a> Credentials<'a> {
    fn read(value: &'a str) -> Result<Credentials<'a>, Unreadable> {
        let tok = AuthTokenizer::parse(value).map_err(|_| Unreadable::Malformed)?;
        if !tok.scheme.eq_ignore_ascii_case("digest") {
            return Err(Unreadable::NotDigest);
        }
        let param = |name: &str| {
            tok.params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        let need = |name: &str| param(name).ok_or(Unreadable::Malformed);
        if param("algorithm").is_some_and(|a| !a.eq_ignore_ascii_case("md5")) {
            return Err(Unreadable::Malformed);
        }
        let qop = match param("qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let nc_text = need("nc")?;
                let nc = u32::from_str_radix(nc_text, 16).map_err(|_| Unreadable::Malformed)?;
                Some((nc_text, nc, need("cnonce")?))
            }
            Some(_) => return Err(Unreadable::Malformed),
        };
        Ok(Credentials {
            username: need("username")?,
            realm: need("realm")?,
            nonce: need("nonce")?,
            uri: need("uri")?,
            response: need("response")?,
            qop,
        })
    }

    /// The response these credentials should carry for `password`.
    fn expected(&self, password: &str, method: &str) -> String {
        let ha1 = md5_hex(&format!("{}:{}:{password}", self.username, self.realm));
        let ha2 = md5_hex(&format!("{method}:{}", self.uri));
        match self.qop {
            Some((nc, _, cnonce)) => md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce)),
            None => md5_hex(&format!("{ha1}:{}:{ha2}", self.nonce)),
        }
    }
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Verifies digest credentials against the configured users.
pub struct DigestAuthenticator {
    realm: String,
    users: HashMap<String, String>,
    /// The key nonces are signed with (drawn at start-up).
    key: [u8; 32],
    /// Nonces that authenticated a request: the highest `nc` taken (0 for
    /// a nonce used without `qop`) and when the nonce expires.
    used: Mutex<HashMap<String, (u32, u64)>>,
    failures: Mutex<Failures>,
}

impl std::fmt::Debug for DigestAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestAuthenticator")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl DigestAuthenticator {
    /// An authenticator for `users` in `realm`.
    pub fn new(realm: &str, users: &[UserConfig]) -> DigestAuthenticator {
        DigestAuthenticator {
            realm: realm.to_string(),
            users: users.iter().map(|u| (u.username.clone(), u.password.clone())).collect(),
            key: rand::random(),
            used: Mutex::new(HashMap::new()),
            failures: Mutex::new(Failures::default()),
        }
    }

    /// Whether any user is configured (otherwise untrusted sources get 403).
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    fn mac(&self, expires: u64) -> String {
        // A 32-byte key is always a valid HMAC key.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("{}:{expires}", self.realm).as_bytes());
        mac.finalize().into_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A nonce valid until `expires` (Unix seconds).
    fn nonce(&self, expires: u64) -> String {
        format!("{expires:016x}{}", self.mac(expires))
    }

    /// When a nonce we issued expires; `None` for one we did not issue.
    fn nonce_expiry(&self, nonce: &str) -> Option<u64> {
        if nonce.len() != 48 || !nonce.is_ascii() {
            return None;
        }
        let expires = u64::from_str_radix(&nonce[..16], 16).ok()?;
        let mac = self.mac(expires);
        bool::from(mac.as_bytes().ct_eq(&nonce.as_bytes()[16..])).then_some(expires)
    }

    /// A fresh `WWW-Authenticate` challenge header (`stale`: the client's
    /// credentials were right, its nonce was not).
    pub fn challenge(&self, stale: bool) -> Header {
        let nonce = self.nonce(unix_now() + NONCE_LIFETIME.as_secs());
        Header::WwwAuthenticate(
            format!(
                "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"{}",
                self.realm,
                if stale { ", stale=true" } else { "" }
            )
            .into(),
        )
    }

    /// Checks the request's `Authorization` header, from `source`.
    pub fn verify(&self, req: &Request, source: IpAddr) -> AuthOutcome {
        self.verify_at(req, source, Instant::now(), unix_now())
    }

    fn verify_at(&self, req: &Request, source: IpAddr, now: Instant, unix: u64) -> AuthOutcome {
        let raw = req.headers.iter().find_map(|h| match h {
            Header::Authorization(a) => Some(a.to_string()),
            _ => None,
        });
        let Some(raw) = raw else {
            return AuthOutcome::Challenge { stale: false };
        };
        // "Authorization: Digest …" as written; the value after the name.
        let raw = raw.split_once(':').map(|(_, v)| v.trim().to_string()).unwrap_or(raw);
        let creds = match Credentials::read(&raw) {
            Ok(c) => c,
            Err(Unreadable::NotDigest) => return AuthOutcome::Challenge { stale: false },
            Err(Unreadable::Malformed) => return self.fail(None, source, now),
        };
        if creds.realm != self.realm {
            return AuthOutcome::Challenge { stale: false };
        }
        let Some(expires) = self.nonce_expiry(creds.nonce) else {
            return AuthOutcome::Challenge { stale: false };
        };
        if expires <= unix {
            return AuthOutcome::Challenge { stale: true };
        }
        if self.locked(creds.username, source, now) {
            // Refused unchecked; still a failure of the source's.
            return self.fail(None, source, now);
        }
        // Same work whether the user exists or not (no timing oracle).
        let (password, known) = match self.users.get(creds.username) {
            Some(p) => (p.as_str(), true),
            None => ("\u{0}no-such-user", false),
        };
        let expected = creds.expected(password, req.method.to_string().as_str());
        let right = bool::from(
            expected
                .as_bytes()
                .ct_eq(creds.response.to_ascii_lowercase().as_bytes()),
        );
        let aimed = same_target(creds.uri, &req.uri);
        if !(right && known && aimed) {
            tracing::debug!(aimed, "digest credentials refused");
            return self.fail(Some(creds.username), source, now);
        }
        if !self.take(creds.nonce, creds.qop.map(|(_, nc, _)| nc), expires, unix) {
            // A replay: the header was right once, on this nonce and count.
            return AuthOutcome::Challenge { stale: true };
        }
        if let Ok(mut f) = self.failures.lock() {
            f.by_user.remove(creds.username);
        }
        AuthOutcome::Authenticated(creds.username.to_string())
    }

    /// Takes `nonce` at count `nc` (none without `qop`) once: false when it
    /// was taken at this count or a later one already.
    fn take(&self, nonce: &str, nc: Option<u32>, expires: u64, unix: u64) -> bool {
        let Ok(mut used) = self.used.lock() else {
            return false;
        };
        let nc = nc.unwrap_or(0);
        if let Some((last, _)) = used.get(nonce) {
            // Without qop a nonce is good once; with it, each count once and rising.
            if nc == 0 || nc <= *last {
                return false;
            }
        }
        if used.len() >= MAX_ENTRIES && !used.contains_key(nonce) {
            used.retain(|_, (_, e)| *e > unix);
            if used.len() >= MAX_ENTRIES {
                // Full of live nonces: the soonest to expire goes.
                if let Some(k) = used.iter().min_by_key(|(_, (_, e))| *e).map(|(k, _)| k.clone()) {
                    used.remove(&k);
                }
            }
        }
        used.insert(nonce.to_string(), (nc, expires));
        true
    }

    fn locked(&self, user: &str, source: IpAddr, now: Instant) -> bool {
        self.failures.lock().is_ok_and(|f| {
            f.by_user.get(user).is_some_and(|s| s.locked(now))
                || f.by_source.get(&source).is_some_and(|s| s.locked(now))
        })
    }

    /// Counts a failure for `user` (when named) and `source`.
    fn fail(&self, user: Option<&str>, source: IpAddr, now: Instant) -> AuthOutcome {
        let Ok(mut f) = self.failures.lock() else {
            return AuthOutcome::Forbidden;
        };
        let fresh = Strikes {
            count: 0,
            since: now,
            locked_until: None,
        };
        if f.by_user.len() >= MAX_ENTRIES || f.by_source.len() >= MAX_ENTRIES {
            f.by_user.retain(|_, s| !s.idle(now));
            f.by_source.retain(|_, s| !s.idle(now));
        }
        if let Some(user) = user {
            // Past the bound (a spray of made-up names) names go uncounted;
            // the source's own count still bans it.
            if f.by_user.len() < MAX_ENTRIES || f.by_user.contains_key(user) {
                let s = f.by_user.entry(user.to_string()).or_insert(fresh);
                if s.add(now) >= USER_MAX_FAILURES {
                    s.locked_until = Some(now + USER_LOCKOUT);
                }
            }
        }
        if f.by_source.len() < MAX_ENTRIES || f.by_source.contains_key(&source) {
            let s = f.by_source.entry(source).or_insert(fresh);
            if s.add(now) >= SOURCE_MAX_FAILURES {
                s.locked_until = Some(now + USER_LOCKOUT);
                return AuthOutcome::BanSource;
            }
        }
        AuthOutcome::Forbidden
    }
}

/// Whether a digest `uri` names the same user and host as the Request-URI.
fn same_target(digest_uri: &str, request_uri: &Uri) -> bool {
    let Ok(uri) = Uri::try_from(digest_uri) else {
        return false;
    };
    let user = |u: &Uri| u.auth.as_ref().map(|a| a.user.clone());
    user(&uri) == user(request_uri) && uri.host_with_port == request_uri.host_with_port
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    fn invite(uri: &str, auth: Option<String>) -> Request {
        let mut msg = format!("INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:alice@127.0.0.1>;tag=1\r\nTo: <{uri}>\r\nCall-ID: a1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n");
        if let Some(a) = auth {
            msg.push_str(&format!("Authorization: {a}\r\n"));
        }
        msg.push_str("Content-Length: 0\r\n\r\n");
        Request::try_from(msg.as_str()).expect("request parses")
    }

    fn nonce_of(challenge: &Header) -> String {
        let c = challenge.to_string();
        c.split("nonce=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("nonce")
            .to_string()
    }

    /// The Authorization header a client computes (`nc` as sent, in hex).
    fn header(user: &str, password: &str, nonce: &str, uri: &str, nc: &str) -> String {
        let creds = Credentials {
            username: user,
            realm: "voxline",
            nonce,
            uri,
            response: "",
            qop: Some((nc, 0, "abc")),
        };
        let resp = creds.expected(password, "INVITE");
        format!("Digest username=\"{user}\", realm=\"voxline\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"abc\"")
    }

    const URI: &str = "sip:demo@127.0.0.1";

    fn answer(a: &DigestAuthenticator, user: &str, password: &str) -> AuthOutcome {
        let nonce = nonce_of(&a.challenge(false));
        a.verify(
            &invite(URI, Some(header(user, password, &nonce, URI, "00000001"))),
            SOURCE,
        )
    }

    fn authenticator() -> DigestAuthenticator {
        DigestAuthenticator::new(
            "voxline",
            &[UserConfig {
                username: "alice".into(),
                password: "correct horse".into(),
                max_calls: 2,
            }],
        )
    }

    #[test]
    fn no_credentials_get_a_challenge() {
        assert_eq!(
            authenticator().verify(&invite(URI, None), SOURCE),
            AuthOutcome::Challenge { stale: false }
        );
    }

    #[test]
    fn right_password_authenticates() {
        assert_eq!(
            answer(&authenticator(), "alice", "correct horse"),
            AuthOutcome::Authenticated("alice".into())
        );
    }

    #[test]
    fn wrong_password_and_unknown_user_look_the_same() {
        let a = authenticator();
        assert_eq!(answer(&a, "alice", "wrong"), AuthOutcome::Forbidden);
        assert_eq!(answer(&a, "mallory", "correct horse"), AuthOutcome::Forbidden);
    }

    #[test]
    fn a_nonce_we_never_issued_is_challenged_again() {
        let a = authenticator();
        let forged = format!("{:016x}{}", unix_now() + 100, "0".repeat(32));
        let h = header("alice", "correct horse", &forged, URI, "00000001");
        assert_eq!(
            a.verify(&invite(URI, Some(h)), SOURCE),
            AuthOutcome::Challenge { stale: false }
        );
        let h = header("alice", "correct horse", "deadbeef", URI, "00000001");
        assert_eq!(
            a.verify(&invite(URI, Some(h)), SOURCE),
            AuthOutcome::Challenge { stale: false }
        );
    }

    #[test]
    fn an_expired_nonce_is_stale() {
        let a = authenticator();
        let old = a.nonce(unix_now() - 1);
        let h = header("alice", "correct horse", &old, URI, "00000001");
        assert_eq!(
            a.verify(&invite(URI, Some(h)), SOURCE),
            AuthOutcome::Challenge { stale: true }
        );
    }

    #[test]
    fn a_replayed_header_is_challenged_and_rising_counts_are_taken() {
        let a = authenticator();
        let nonce = nonce_of(&a.challenge(false));
        let first = invite(URI, Some(header("alice", "correct horse", &nonce, URI, "00000001")));
        assert_eq!(a.verify(&first, SOURCE), AuthOutcome::Authenticated("alice".into()));
        assert_eq!(a.verify(&first, SOURCE), AuthOutcome::Challenge { stale: true });
        // The client's next requests on the same nonce count up, in hex.
        for nc in ["00000002", "0000000a", "00000010"] {
            let next = invite(URI, Some(header("alice", "correct horse", &nonce, URI, nc)));
            assert_eq!(
                a.verify(&next, SOURCE),
                AuthOutcome::Authenticated("alice".into()),
                "nc {nc}"
            );
        }
        let back = invite(URI, Some(header("alice", "correct horse", &nonce, URI, "00000003")));
        assert_eq!(a.verify(&back, SOURCE), AuthOutcome::Challenge { stale: true });
    }

    #[test]
    fn a_digest_for_another_uri_is_refused() {
        let a = authenticator();
        let nonce = nonce_of(&a.challenge(false));
        // Right for sip:demo@…, sent to dial sip:premium@….
        let h = header("alice", "correct horse", &nonce, URI, "00000001");
        assert_eq!(
            a.verify(&invite("sip:premium@127.0.0.1", Some(h)), SOURCE),
            AuthOutcome::Forbidden
        );
    }

    #[test]
    fn a_user_is_locked_after_repeated_failures_and_a_source_banned() {
        let a = authenticator();
        for _ in 0..USER_MAX_FAILURES {
            assert_eq!(answer(&a, "alice", "guess"), AuthOutcome::Forbidden);
        }
        // Locked: the right password is refused too, without a count.
        assert_eq!(answer(&a, "alice", "correct horse"), AuthOutcome::Forbidden);
        let other = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 8));
        let nonce = nonce_of(&a.challenge(false));
        let h = header("alice", "correct horse", &nonce, URI, "00000001");
        assert_eq!(a.verify(&invite(URI, Some(h)), other), AuthOutcome::Forbidden);
        // Names made up one after another: the source is banned at its tenth failure.
        let b = authenticator();
        let outcomes: Vec<_> = (0..SOURCE_MAX_FAILURES)
            .map(|i| answer(&b, &format!("user{i}"), "guess"))
            .collect();
        assert!(outcomes[..outcomes.len() - 1]
            .iter()
            .all(|o| *o == AuthOutcome::Forbidden));
        assert_eq!(outcomes.last(), Some(&AuthOutcome::BanSource));
    }

    #[test]
    fn failures_age_out_of_the_window() {
        let a = authenticator();
        let t0 = Instant::now();
        let req = |a: &DigestAuthenticator| {
            let nonce = nonce_of(&a.challenge(false));
            invite(URI, Some(header("alice", "guess", &nonce, URI, "00000001")))
        };
        for i in 0..USER_MAX_FAILURES - 1 {
            let out = a.verify_at(&req(&a), SOURCE, t0 + Duration::from_secs(u64::from(i)), unix_now());
            assert_eq!(out, AuthOutcome::Forbidden);
        }
        // Past the window the count starts again: one more failure does not lock.
        let later = t0 + FAILURE_WINDOW + Duration::from_secs(1);
        assert_eq!(a.verify_at(&req(&a), SOURCE, later, unix_now()), AuthOutcome::Forbidden);
        let nonce = nonce_of(&a.challenge(false));
        let good = invite(URI, Some(header("alice", "correct horse", &nonce, URI, "00000001")));
        assert_eq!(
            a.verify_at(&good, SOURCE, later, unix_now()),
            AuthOutcome::Authenticated("alice".into())
        );
    }
}
