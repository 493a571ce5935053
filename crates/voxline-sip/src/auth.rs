//! Digest authentication of SIP phones (`[[user]]`) calling in (RFC 3261
//! §22, RFC 2617). Unknown users and wrong passwords get the same answer, so
//! nothing can be learned about which extensions exist.

use crate::config::UserConfig;
use rsipstack::dialog::authenticate::verify_digest;
use rsipstack::sip::typed::Authorization;
use rsipstack::sip::{Header, Request};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a nonce we issued stays valid.
const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Most outstanding nonces kept (older ones are dropped first).
const MAX_NONCES: usize = 50_000;

/// The outcome of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Authenticated as this user.
    Authenticated(String),
    /// No (usable) credentials yet, or a stale nonce: answer 401 with a challenge.
    Challenge,
    /// Wrong credentials or unknown user: answer 403.
    Forbidden,
}

/// Verifies digest credentials against the configured users.
#[derive(Debug)]
pub struct DigestAuthenticator {
    realm: String,
    users: HashMap<String, String>,
    nonces: Mutex<HashMap<String, Instant>>,
}

impl DigestAuthenticator {
    /// An authenticator for `users` in `realm`.
    pub fn new(realm: &str, users: &[UserConfig]) -> DigestAuthenticator {
        DigestAuthenticator {
            realm: realm.to_string(),
            users: users.iter().map(|u| (u.username.clone(), u.password.clone())).collect(),
            nonces: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any user is configured (otherwise untrusted sources get 403).
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    /// A fresh `WWW-Authenticate` challenge header.
    pub fn challenge(&self) -> Header {
        let nonce = format!("{:032x}", rand::random::<u128>());
        if let Ok(mut n) = self.nonces.lock() {
            let now = Instant::now();
            if n.len() >= MAX_NONCES {
                n.retain(|_, t| now.duration_since(*t) < NONCE_LIFETIME);
                if n.len() >= MAX_NONCES {
                    n.clear();
                }
            }
            n.insert(nonce.clone(), now);
        }
        Header::WwwAuthenticate(
            format!(
                "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"",
                self.realm
            )
            .into(),
        )
    }

    /// Checks the request's `Authorization` header.
    pub fn verify(&self, req: &Request) -> AuthOutcome {
        let raw = req.headers.iter().find_map(|h| match h {
            Header::Authorization(a) => Some(a.to_string()),
            _ => None,
        });
        let Some(raw) = raw else {
            return AuthOutcome::Challenge;
        };
        let value = raw
            .split_once(':')
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or(raw.clone());
        let Ok(auth) = Authorization::parse(&value) else {
            return AuthOutcome::Forbidden;
        };
        let fresh = self
            .nonces
            .lock()
            .map(|n| n.get(&auth.nonce).is_some_and(|t| t.elapsed() < NONCE_LIFETIME))
            .unwrap_or(false);
        if !fresh || auth.realm != self.realm {
            return AuthOutcome::Challenge;
        }
        // Same work whether the user exists or not (no timing oracle).
        let (password, known) = match self.users.get(&auth.username) {
            Some(p) => (p.as_str(), true),
            None => ("\u{0}no-such-user", false),
        };
        let ok = verify_digest(&auth, password, &req.method, &value);
        if ok && known {
            AuthOutcome::Authenticated(auth.username.clone())
        } else {
            AuthOutcome::Forbidden
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::dialog::authenticate::compute_digest;
    use rsipstack::sip::headers::auth::Algorithm;
    use rsipstack::sip::headers::auth::AuthQop;

    fn invite(auth: Option<String>) -> Request {
        let mut msg = "INVITE sip:demo@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:alice@127.0.0.1>;tag=1\r\nTo: <sip:demo@127.0.0.1>\r\nCall-ID: a1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n".to_string();
        if let Some(a) = auth {
            msg.push_str(&format!("Authorization: {a}\r\n"));
        }
        msg.push_str("Content-Length: 0\r\n\r\n");
        Request::try_from(msg.as_str()).expect("request parses")
    }

    fn answer(a: &DigestAuthenticator, user: &str, password: &str) -> AuthOutcome {
        let challenge = a.challenge().to_string();
        let nonce = challenge
            .split("nonce=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_string();
        let qop = AuthQop::Auth {
            cnonce: "abc".into(),
            nc: 1,
        };
        let resp = compute_digest(
            user,
            password,
            "voxline",
            &nonce,
            &rsipstack::sip::Method::Invite,
            "sip:demo@127.0.0.1",
            Algorithm::Md5,
            Some(&qop),
        );
        let header = format!(
            "Digest username=\"{user}\", realm=\"voxline\", nonce=\"{nonce}\", uri=\"sip:demo@127.0.0.1\", response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"abc\""
        );
        a.verify(&invite(Some(header)))
    }

    fn authenticator() -> DigestAuthenticator {
        DigestAuthenticator::new(
            "voxline",
            &[UserConfig {
                username: "alice".into(),
                password: "correct horse".into(),
            }],
        )
    }

    #[test]
    fn no_credentials_get_a_challenge() {
        assert_eq!(authenticator().verify(&invite(None)), AuthOutcome::Challenge);
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
        let h = "Digest username=\"alice\", realm=\"voxline\", nonce=\"deadbeef\", uri=\"sip:demo@127.0.0.1\", response=\"00\", algorithm=MD5";
        assert_eq!(authenticator().verify(&invite(Some(h.into()))), AuthOutcome::Challenge);
    }
}
