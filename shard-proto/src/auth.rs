//! Authentication of the internal RPC: a keyed MAC over each request with a replay window.
//!
//! Every node and front-end of a cluster shares a secret. The key is derived from it with
//! blake3's `derive_key`; each request carries, in [`AUTH_HEADER`], its send time (Unix
//! milliseconds), a random 128-bit nonce and `blake3::keyed_hash` over the method, path,
//! time, nonce and the blake3 hash of the body. A node checks the header's shape and time
//! before reading the body, the MAC before decoding it, and refuses a nonce it has already
//! seen within the window ([`ReplayGuard`]).
//!
//! Why a MAC and not mutual TLS: the cluster already shares one file (the cluster file), so
//! a secret next to it needs no certificate authority, no rotation of certificates and no
//! TLS stack on the hot loopback path (a MAC over a small frame costs about a microsecond;
//! blake3 is already the store's hash). What it does not give: confidentiality (frames
//! travel in clear, so run the RPC on a private network) and authenticity of answers (a
//! machine in the middle could forge a node's answer). It does stop anyone without the
//! secret from making a node do any work, and a recorded request from being replayed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Header carrying the credentials: `v1 <unix millis> <nonce, 32 hex> <mac, 64 hex>`.
pub const AUTH_HEADER: &str = "x-wikisearch-auth";
/// How far a request's time may be from the node's clock, either way: clocks of a
/// cluster's machines must agree within this (NTP does far better).
pub const REPLAY_WINDOW: Duration = Duration::from_secs(30);
/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;
/// Nonces remembered at most (one per authenticated request of the last two windows):
/// 1,000,000 × ~40 bytes. Beyond, requests are refused as a replay risk rather than
/// forgetting nonces still inside the window.
pub const MAX_REMEMBERED_NONCES: usize = 1_000_000;

/// Why a request's credentials were refused (answered with 401; a reason, not an error
/// of this crate: nothing failed, a request was turned away).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    /// The request's time is this many milliseconds away from the node's clock.
    Stale(u64),
    BadMac,
    Replayed,
    Overloaded,
}

impl AuthFailure {
    /// Label for metrics.
    pub fn kind(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::Stale(_) => "stale",
            AuthFailure::BadMac => "bad_mac",
            AuthFailure::Replayed => "replayed",
            AuthFailure::Overloaded => "overloaded",
        }
    }
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthFailure::Missing => write!(f, "no {AUTH_HEADER} header"),
            AuthFailure::Malformed => write!(f, "malformed {AUTH_HEADER} header"),
            AuthFailure::Stale(skew) => write!(
                f,
                "request time is {skew} ms away from this node's clock (window {} ms)",
                REPLAY_WINDOW.as_millis()
            ),
            AuthFailure::BadMac => {
                f.write_str("wrong MAC (another cluster's secret, or a tampered request)")
            }
            AuthFailure::Replayed => f.write_str("nonce already used (a replayed request)"),
            AuthFailure::Overloaded => {
                f.write_str("too many requests inside the replay window to remember them all")
            }
        }
    }
}

/// The MAC key every process of a cluster derives from the shared secret.
#[derive(Clone)]
pub struct ClusterKey([u8; 32]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

/// Parsed credentials of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub unix_millis: u64,
    pub nonce: u128,
    mac: [u8; 32],
}

impl ClusterKey {
    /// The key for `secret` (surrounding whitespace, such as a file's newline, ignored).
    pub fn from_secret(secret: &[u8]) -> Result<Self, String> {
        let secret = secret.trim_ascii();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the cluster secret has {} bytes, at least {MIN_SECRET_BYTES} are needed",
                secret.len()
            ));
        }
        let key = blake3::derive_key("wikisearch 2026-12 cluster secret to RPC MAC key", secret);
        Ok(ClusterKey(key))
    }

    fn mac(
        &self,
        method: &str,
        path: &str,
        unix_millis: u64,
        nonce: u128,
        body: &[u8],
    ) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        hasher.update(b"wikisearch-rpc v1\n");
        for part in [method.as_bytes(), b"\n", path.as_bytes(), b"\n"] {
            hasher.update(part);
        }
        hasher.update(&unix_millis.to_le_bytes());
        hasher.update(&nonce.to_le_bytes());
        hasher.update(blake3::hash(body).as_bytes());
        hasher.finalize()
    }

    /// The header value authenticating a request sent now.
    pub fn sign(&self, method: &str, path: &str, body: &[u8], nonce: u128) -> String {
        self.sign_at(method, path, body, unix_millis_now(), nonce)
    }

    /// The header value for a request sent at `unix_millis` (tests forge old ones).
    pub fn sign_at(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        unix_millis: u64,
        nonce: u128,
    ) -> String {
        let mac = self.mac(method, path, unix_millis, nonce, body);
        format!("v1 {unix_millis} {nonce:032x} {}", mac.to_hex())
    }

    /// Checks the MAC of a request whose header parsed to `credentials` (constant time).
    pub fn verify(
        &self,
        credentials: &Credentials,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(), AuthFailure> {
        let expected = self.mac(
            method,
            path,
            credentials.unix_millis,
            credentials.nonce,
            body,
        );
        match expected == blake3::Hash::from_bytes(credentials.mac) {
            true => Ok(()),
            false => Err(AuthFailure::BadMac),
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_millis_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Parses the header and checks its time against `now_millis`: everything that can be
/// refused before reading the body.
pub fn check_header(value: Option<&[u8]>, now_millis: u64) -> Result<Credentials, AuthFailure> {
    let value = value.ok_or(AuthFailure::Missing)?;
    let text = std::str::from_utf8(value).map_err(|_| AuthFailure::Malformed)?;
    let mut parts = text.split(' ');
    let (Some("v1"), Some(time), Some(nonce), Some(mac), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(AuthFailure::Malformed);
    };
    let unix_millis: u64 = time.parse().map_err(|_| AuthFailure::Malformed)?;
    if nonce.len() != 32 {
        return Err(AuthFailure::Malformed);
    }
    let nonce = u128::from_str_radix(nonce, 16).map_err(|_| AuthFailure::Malformed)?;
    let mac = blake3::Hash::from_hex(mac).map_err(|_| AuthFailure::Malformed)?;
    let skew = unix_millis.abs_diff(now_millis);
    if skew > REPLAY_WINDOW.as_millis() as u64 {
        return Err(AuthFailure::Stale(skew));
    }
    Ok(Credentials {
        unix_millis,
        nonce,
        mac: *mac.as_bytes(),
    })
}

/// Nonces of authenticated requests seen within the replay window.
#[derive(Default)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<u128, u64>>,
}

impl ReplayGuard {
    /// Records `credentials`' nonce; refuses one already seen. Call only after the MAC
    /// checked out, so forged requests cannot fill the memory.
    pub fn admit(&self, credentials: &Credentials, now_millis: u64) -> Result<(), AuthFailure> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.len() >= MAX_REMEMBERED_NONCES {
            // A request older than the window is refused anyway: its nonce can go.
            let oldest_valid = now_millis.saturating_sub(REPLAY_WINDOW.as_millis() as u64);
            seen.retain(|_, at| *at >= oldest_valid);
            if seen.len() >= MAX_REMEMBERED_NONCES {
                return Err(AuthFailure::Overloaded);
            }
        }
        match seen.insert(credentials.nonce, credentials.unix_millis) {
            None => Ok(()),
            Some(_) => Err(AuthFailure::Replayed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> ClusterKey {
        ClusterKey::from_secret(secret.as_bytes()).unwrap()
    }

    #[test]
    fn a_signed_request_verifies_once_and_only_unchanged() {
        let key = key("0123456789abcdef0123456789abcdef\n");
        let now = unix_millis_now();
        let header = key.sign_at("POST", "/rpc/search", b"frame", now, 7);
        let credentials = check_header(Some(header.as_bytes()), now).unwrap();
        assert_eq!(
            key.verify(&credentials, "POST", "/rpc/search", b"frame"),
            Ok(())
        );
        for (method, path, body) in [
            ("POST", "/rpc/search", &b"frame!"[..]),
            ("POST", "/rpc/fetch", b"frame"),
            ("GET", "/rpc/search", b"frame"),
        ] {
            assert_eq!(
                key.verify(&credentials, method, path, body),
                Err(AuthFailure::BadMac)
            );
        }
        let other = ClusterKey::from_secret(b"another cluster's secret").unwrap();
        assert_eq!(
            other.verify(&credentials, "POST", "/rpc/search", b"frame"),
            Err(AuthFailure::BadMac)
        );
        let guard = ReplayGuard::default();
        assert_eq!(guard.admit(&credentials, now), Ok(()));
        assert_eq!(guard.admit(&credentials, now), Err(AuthFailure::Replayed));
    }

    #[test]
    fn headers_are_checked_for_shape_and_time_before_the_body() {
        let key = key("0123456789abcdef0123456789abcdef");
        let now = unix_millis_now();
        assert_eq!(check_header(None, now), Err(AuthFailure::Missing));
        for bad in [
            "",
            "v1",
            "v2 1 00 00",
            "v1 x 0 0",
            "v1 1 zz 00",
            "v1 1 0 0 extra",
            "\u{ff}",
        ] {
            assert_eq!(
                check_header(Some(bad.as_bytes()), now),
                Err(AuthFailure::Malformed),
                "{bad:?}"
            );
        }
        let old = key.sign_at("GET", "/rpc/health", b"", now - 31_000, 1);
        assert!(matches!(
            check_header(Some(old.as_bytes()), now),
            Err(AuthFailure::Stale(_))
        ));
        let future = key.sign_at("GET", "/rpc/health", b"", now + 31_000, 1);
        assert!(matches!(
            check_header(Some(future.as_bytes()), now),
            Err(AuthFailure::Stale(_))
        ));
        assert!(ClusterKey::from_secret(b"  short \n").is_err());
    }
}
