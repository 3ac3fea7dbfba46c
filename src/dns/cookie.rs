//! DNS cookies, the server side (RFC 7873), with the interoperable server
//! cookie of RFC 9018: a client that sends a client cookie gets a server
//! cookie made from it, its address, the time and disco's secret; a client
//! that sends that server cookie back proves that it receives what is sent
//! to its address, so its answers are not rate limited (`dns::rrl`).
//!
//! A server cookie is version 1, three reserved bytes, a 32-bit timestamp
//! (seconds, serial number arithmetic) and SipHash-2-4, keyed with the
//! secret, over the client cookie, those eight bytes and the client's
//! address. It is good for an hour, and five minutes ahead of disco's clock
//! (RFC 9018 §4.3); one over half an hour old is replaced in the answer.
//! Every replica given the same secret (`--cookie-secret-file`) accepts the
//! others' cookies; a second secret in the file is accepted but not used,
//! for rolling a secret over without turning away the cookies out there.

use std::hash::Hasher;
use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use siphasher::sip::SipHasher24;

use super::packet::{Cookie, REPLY_COOKIE_LEN};

/// How long a server cookie is good for, seconds (RFC 9018 §4.3).
const LIFETIME: u32 = 3600;
/// How far ahead of disco's clock a cookie's timestamp may be, seconds.
const CLOCK_SKEW: u32 = 300;
/// A cookie older than this is replaced in the answer, seconds.
const REFRESH: u32 = 1800;

/// What a query's COOKIE option proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieCheck {
    /// A client cookie alone: a first contact, or a client that lost its
    /// server cookie.
    ClientOnly,
    /// A server cookie disco made for this client and address, in date.
    Valid,
    /// A server cookie disco did not make for this client, or out of date.
    Invalid,
}

impl CookieCheck {
    /// Every outcome, in the order the metrics use.
    pub const ALL: [CookieCheck; 3] = [
        CookieCheck::ClientOnly,
        CookieCheck::Valid,
        CookieCheck::Invalid,
    ];

    /// Its label in `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            CookieCheck::ClientOnly => "client_only",
            CookieCheck::Valid => "valid",
            CookieCheck::Invalid => "invalid",
        }
    }
}

/// Why a cookie secret file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CookieSecretError {
    /// The file cannot be read.
    #[error("cannot read it: {0}")]
    Read(#[from] std::io::Error),
    /// The file does not hold one or two secrets.
    #[error(
        "line {line}: expected a secret of 32 hex digits (16 bytes), \
         e.g. from `openssl rand -hex 16`; a second line may hold the previous one"
    )]
    Format {
        /// The line that is wrong (1-based).
        line: usize,
    },
}

/// The secret server cookies are made with, and the previous one, still
/// accepted.
#[derive(Clone)]
pub struct CookieSecret {
    current: [u8; 16],
    previous: Option<[u8; 16]>,
}

impl std::fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieSecret(..)")
    }
}

impl CookieSecret {
    /// A random secret, for a server whose cookies no other server need
    /// accept (they last until it restarts).
    pub fn random() -> Self {
        CookieSecret {
            current: rand::random(),
            previous: None,
        }
    }

    /// `current`, and `previous` still accepted.
    pub fn new(current: [u8; 16], previous: Option<[u8; 16]>) -> Self {
        CookieSecret { current, previous }
    }

    /// Reads `--cookie-secret-file`: the secret in hex on its first line,
    /// the previous one, still accepted, on an optional second.
    pub fn from_file(path: &Path) -> Result<Self, CookieSecretError> {
        Self::parse(&std::fs::read_to_string(path)?)
    }

    /// Reads the text of a secret file.
    pub fn parse(text: &str) -> Result<Self, CookieSecretError> {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect();
        let secret = |n: usize| -> Result<[u8; 16], CookieSecretError> {
            let line = lines[n];
            let mut secret = [0; 16];
            let digits = line.as_bytes();
            if digits.len() != 32 || !line.is_ascii() {
                return Err(CookieSecretError::Format { line: n + 1 });
            }
            for (byte, pair) in secret.iter_mut().zip(digits.chunks(2)) {
                let pair = std::str::from_utf8(pair).unwrap_or_default();
                *byte = u8::from_str_radix(pair, 16)
                    .map_err(|_| CookieSecretError::Format { line: n + 1 })?;
            }
            Ok(secret)
        };
        match lines.len() {
            1 => Ok(CookieSecret::new(secret(0)?, None)),
            2 => Ok(CookieSecret::new(secret(0)?, Some(secret(1)?))),
            n => Err(CookieSecretError::Format {
                line: n.clamp(1, 3),
            }),
        }
    }

    /// Checks `cookie` from `client`, and gives the COOKIE option the
    /// answer carries: the client cookie and a server cookie (the one sent,
    /// while it is valid, made with the current secret and under half an
    /// hour old; a new one otherwise).
    pub fn answer(&self, cookie: &Cookie, client: IpAddr) -> (CookieCheck, [u8; REPLY_COOKIE_LEN]) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() as u32);
        self.answer_at(cookie, client, now)
    }

    fn answer_at(
        &self,
        cookie: &Cookie,
        client: IpAddr,
        now: u32,
    ) -> (CookieCheck, [u8; REPLY_COOKIE_LEN]) {
        let mut reply = [0; REPLY_COOKIE_LEN];
        reply[..8].copy_from_slice(&cookie.client);
        let server = cookie.server();
        if server.is_empty() {
            reply[8..].copy_from_slice(&self.server_cookie(&cookie.client, client, now));
            return (CookieCheck::ClientOnly, reply);
        }
        let made_with = self.made_with(cookie, client, now);
        let check = match made_with {
            Some(_) => CookieCheck::Valid,
            None => CookieCheck::Invalid,
        };
        let timestamp = server
            .get(4..8)
            .map_or(0, |t| u32::from_be_bytes([t[0], t[1], t[2], t[3]]));
        let fresh =
            now.wrapping_sub(timestamp) < REFRESH || timestamp.wrapping_sub(now) <= CLOCK_SKEW;
        match made_with {
            Some(Secret::Current) if fresh => reply[8..].copy_from_slice(server),
            _ => reply[8..].copy_from_slice(&self.server_cookie(&cookie.client, client, now)),
        }
        (check, reply)
    }

    /// Which secret made `cookie`'s server cookie for `client`, if one did
    /// and it is in date at `now`.
    fn made_with(&self, cookie: &Cookie, client: IpAddr, now: u32) -> Option<Secret> {
        let server = cookie.server();
        if server.len() != 16 || server[0] != 1 {
            return None;
        }
        let timestamp = u32::from_be_bytes([server[4], server[5], server[6], server[7]]);
        let age = now.wrapping_sub(timestamp);
        let ahead = timestamp.wrapping_sub(now);
        if age > LIFETIME && ahead > CLOCK_SKEW {
            return None;
        }
        let head: [u8; 8] = server[..8].try_into().ok()?;
        let hash = &server[8..16];
        if hash == mac(&self.current, &cookie.client, &head, client) {
            return Some(Secret::Current);
        }
        let previous = self.previous.as_ref()?;
        (hash == mac(previous, &cookie.client, &head, client)).then_some(Secret::Previous)
    }

    /// A new server cookie for `client_cookie` from `client` at `now`,
    /// made with the current secret.
    fn server_cookie(&self, client_cookie: &[u8; 8], client: IpAddr, now: u32) -> [u8; 16] {
        let mut head = [1, 0, 0, 0, 0, 0, 0, 0];
        head[4..].copy_from_slice(&now.to_be_bytes());
        let mut cookie = [0; 16];
        cookie[..8].copy_from_slice(&head);
        cookie[8..].copy_from_slice(&mac(&self.current, client_cookie, &head, client));
        cookie
    }
}

/// Which of the two secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Secret {
    Current,
    Previous,
}

/// RFC 9018 §4.4: SipHash-2-4 over the client cookie, the version,
/// reserved and timestamp bytes (`head`) and the client's address.
fn mac(secret: &[u8; 16], client_cookie: &[u8; 8], head: &[u8; 8], client: IpAddr) -> [u8; 8] {
    let mut hasher = SipHasher24::new_with_key(secret);
    hasher.write(client_cookie);
    hasher.write(head);
    match client {
        IpAddr::V4(v4) => hasher.write(&v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => hasher.write(&v4.octets()),
            None => hasher.write(&v6.octets()),
        },
    }
    hasher.finish().to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
            .collect()
    }

    fn secret(text: &str) -> [u8; 16] {
        hex(text).try_into().unwrap()
    }

    fn cookie(text: &str) -> Cookie {
        Cookie::parse(&hex(text)).unwrap()
    }

    const SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";

    #[test]
    fn rfc9018_appendix_a1_learning_a_new_server_cookie() {
        let secret = CookieSecret::new(secret(SECRET), None);
        let client = "198.51.100.100".parse().unwrap();
        let (check, reply) = secret.answer_at(&cookie("2464c4abcf10c957"), client, 1559731985);
        assert_eq!(check, CookieCheck::ClientOnly);
        assert_eq!(
            reply.to_vec(),
            hex("2464c4abcf10c957010000005cf79f111f8130c3eee29480")
        );
    }

    #[test]
    fn rfc9018_appendix_a2_the_same_client_learning_a_renewed_server_cookie() {
        let secret = CookieSecret::new(secret(SECRET), None);
        let client = "198.51.100.100".parse().unwrap();
        let sent = cookie("2464c4abcf10c957010000005cf79f111f8130c3eee29480");
        // Forty minutes on: valid, and past half an hour, so renewed.
        let (check, reply) = secret.answer_at(&sent, client, 1559734385);
        assert_eq!(check, CookieCheck::Valid);
        assert_eq!(
            reply.to_vec(),
            hex("2464c4abcf10c957010000005cf7a871d4a564a1442aca77")
        );
        // Ten minutes on, it is sent back as it came.
        let (check, reply) = secret.answer_at(&sent, client, 1559731985 + 600);
        assert_eq!(check, CookieCheck::Valid);
        assert_eq!(
            reply.to_vec(),
            hex("2464c4abcf10c957010000005cf79f111f8130c3eee29480")
        );
        // From another address it is not this client's.
        let other = "198.51.100.101".parse().unwrap();
        assert_eq!(
            secret.answer_at(&sent, other, 1559731990).0,
            CookieCheck::Invalid
        );
    }

    #[test]
    fn rfc9018_appendix_a3_another_client_learning_a_renewed_server_cookie() {
        let secret = CookieSecret::new(secret(SECRET), None);
        let client = "203.0.113.203".parse().unwrap();
        // Reserved bytes set by another implementation are hashed as sent.
        let sent = cookie("fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5");
        let head: [u8; 8] = sent.server()[..8].try_into().unwrap();
        assert_eq!(
            mac(&secret.current, &sent.client, &head, client),
            sent.server()[8..]
        );
        // But it was made 1h52m before: out of date, and replaced.
        let (check, reply) = secret.answer_at(&sent, client, 1559734700);
        assert_eq!(check, CookieCheck::Invalid);
        assert_eq!(
            reply.to_vec(),
            hex("fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e")
        );
    }

    #[test]
    fn rfc9018_appendix_a4_ipv6_after_the_secret_rolled_over() {
        let secret = CookieSecret::new(
            secret("445536bcd2513298075a5d379663c962"),
            Some(secret("dd3bdf9344b678b185a6f5cb60fca715")),
        );
        let client = "2001:db8:220:1:59de:d0f4:8769:82b8".parse().unwrap();
        let sent = cookie("22681ab97d52c298010000005cf7c57926556bd0934c72f8");
        let (check, reply) = secret.answer_at(&sent, client, 1559741961);
        assert_eq!(check, CookieCheck::Valid, "made with the previous secret");
        assert_eq!(
            reply.to_vec(),
            hex("22681ab97d52c298010000005cf7c609a6bb79d16625507a")
        );
        // Without the previous secret it is no longer accepted.
        let rolled = CookieSecret::new(secret.current, None);
        assert_eq!(
            rolled.answer_at(&sent, client, 1559741961).0,
            CookieCheck::Invalid
        );
    }

    #[test]
    fn a_cookie_is_good_for_an_hour_and_five_minutes_ahead() {
        let secret = CookieSecret::new(secret(SECRET), None);
        let client = "192.0.2.1".parse().unwrap();
        let made = 1559731985;
        let (_, reply) = secret.answer_at(&cookie("0102030405060708"), client, made);
        let sent = Cookie::parse(&reply).unwrap();
        for (now, valid) in [
            (made, true),
            (made + 3600, true),
            (made + 3601, false),
            (made - 300, true),
            (made - 301, false),
        ] {
            let check = secret.answer_at(&sent, client, now).0;
            assert_eq!(check == CookieCheck::Valid, valid, "at {now}");
        }
        // Across the wrap of the 32-bit timestamp.
        let (_, reply) = secret.answer_at(&cookie("0102030405060708"), client, u32::MAX - 100);
        let sent = Cookie::parse(&reply).unwrap();
        assert_eq!(secret.answer_at(&sent, client, 1000).0, CookieCheck::Valid);
    }

    #[test]
    fn a_secret_file_holds_one_or_two_secrets_in_hex() {
        assert!(CookieSecret::parse(&format!("{SECRET}\n")).is_ok());
        let two = CookieSecret::parse(&format!("{SECRET}\n\n{}\n", "00".repeat(16))).unwrap();
        assert_eq!(two.previous, Some([0; 16]));
        for bad in [
            "",
            "e5e9",
            &format!("{SECRET}0"),
            &"zz".repeat(16),
            &format!("{SECRET}\n{SECRET}\n{SECRET}"),
        ] {
            assert!(CookieSecret::parse(bad).is_err(), "{bad:?}");
        }
    }
}
