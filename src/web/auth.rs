//! HTTP basic authentication against the bcrypt hashes of the web config.
//! Owns the `Authorization` header check and its cache; never logs or
//! returns the password or the header.
//!
//! bcrypt is slow on purpose (cost 10 ≈ 50–100 ms of CPU), so paying it
//! on every request would let 50 scrapers saturate a core. As in the
//! exporter-toolkit, a successful (user, password) check is cached. The
//! cache key is an HMAC-SHA256 under a key drawn at startup over user,
//! stored hash and password: a memory dump of the cache gives no fast
//! password oracle, and changing a user's hash invalidates its entries.
//! Failures are not cached, so each wrong guess costs a bcrypt; those run
//! one at a time on the blocking pool, so a flood of wrong passwords uses
//! at most one core and never stalls the async workers that serve
//! cached (already verified) scrapers.
//!
//! The queue for that one slot is fair between client addresses: an
//! address gets one bcrypt at a time, and a request from an address that
//! already has one running or waiting is answered 429 at once instead of
//! queueing. A flood of wrong passwords from one host thus costs the
//! first real scrape after a restart (whose password is not cached yet)
//! at most the one check ahead of it, not the whole flood. At most
//! [`MAX_WAITING`] addresses wait at once; beyond that, 429 too.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;

use axum::http::HeaderValue;
use base64::Engine as _;
use ring::hmac;
use tokio::sync::Semaphore;

/// Entries kept before the cache is emptied; far above any real number of
/// (user, password) pairs, small enough to bound memory (32 B each).
const MAX_CACHED: usize = 4096;

/// Addresses waiting for the bcrypt slot at most (each costs one check).
pub const MAX_WAITING: usize = 64;

/// What [`BasicAuth::verify`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Deny,
    /// Not checked: this address already has a check running or waiting,
    /// or too many addresses wait. The client should retry shortly.
    Busy,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot draw a random key for the basic-auth cache")]
pub struct KeyError;

pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// Checked against for unknown users, so that their answer takes as
    /// long as a known user's and does not reveal which names exist.
    decoy: Option<String>,
    key: hmac::Key,
    verified: Mutex<HashSet<[u8; 32]>>,
    bcrypt_slot: Semaphore,
    /// Addresses with a bcrypt check running or waiting (`None`: unknown).
    checking: Mutex<HashSet<Option<IpAddr>>>,
}

/// Takes an address out of `checking` when its check ends, however it ends.
struct Turn<'a> {
    checking: &'a Mutex<HashSet<Option<IpAddr>>>,
    peer: Option<IpAddr>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if let Ok(mut c) = self.checking.lock() {
            c.remove(&self.peer);
        }
    }
}

impl BasicAuth {
    pub fn new(users: BTreeMap<String, String>) -> Result<Self, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).map_err(|_| KeyError)?;
        Ok(BasicAuth {
            decoy: users.values().next().cloned(),
            users,
            key,
            verified: Mutex::new(HashSet::new()),
            bcrypt_slot: Semaphore::new(1),
            checking: Mutex::new(HashSet::new()),
        })
    }

    /// True when no user is configured: every request passes.
    pub fn is_open(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `authorization` carries a configured user and its password
    /// (one client among many: no fairness between addresses).
    pub async fn check(&self, authorization: Option<&HeaderValue>) -> bool {
        self.verify(authorization, None).await == Verdict::Pass
    }

    /// As [`check`](Self::check) for a request from `peer`, which gets at
    /// most one bcrypt check at a time (see the module docs).
    pub async fn verify(
        &self,
        authorization: Option<&HeaderValue>,
        peer: Option<IpAddr>,
    ) -> Verdict {
        if self.is_open() {
            return Verdict::Pass;
        }
        let Some((user, password)) = authorization.and_then(decode) else {
            return Verdict::Deny;
        };
        let (known, hash) = match (self.users.get(&user), &self.decoy) {
            (Some(h), _) => (true, h.clone()),
            (None, Some(d)) => (false, d.clone()),
            (None, None) => return Verdict::Deny,
        };
        let id = self.cache_key(&user, &hash, &password);
        if known && self.is_cached(&id) {
            return Verdict::Pass;
        }
        let Some(_turn) = self.take_turn(peer) else {
            return Verdict::Busy;
        };
        // One bcrypt at a time (see the module docs). A closed semaphore
        // cannot happen (it is never closed); deny if it did.
        let Ok(_slot) = self.bcrypt_slot.acquire().await else {
            return Verdict::Deny;
        };
        // Another request with the same credentials may have verified them
        // while this one waited.
        if known && self.is_cached(&id) {
            return Verdict::Pass;
        }
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        if ok && known {
            self.remember(id);
            Verdict::Pass
        } else {
            Verdict::Deny
        }
    }

    /// A place in the bcrypt queue for `peer`, unless it holds one already
    /// or the queue is full. Requests of unknown origin (in-process tests)
    /// share one place only when a peer is known for the others.
    fn take_turn(&self, peer: Option<IpAddr>) -> Option<Turn<'_>> {
        let mut c = self.checking.lock().ok()?;
        if peer.is_some() && (c.contains(&peer) || c.len() >= MAX_WAITING) {
            return None;
        }
        c.insert(peer);
        Some(Turn {
            checking: &self.checking,
            peer,
        })
    }

    fn cache_key(&self, user: &str, hash: &str, password: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        for part in [user, hash, password] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part.as_bytes());
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    fn is_cached(&self, id: &[u8; 32]) -> bool {
        // The set holds secret-keyed MACs, so the (not constant-time) hash
        // lookup leaks nothing about the password.
        self.verified
            .lock()
            .map(|s| s.contains(id))
            .unwrap_or(false)
    }

    fn remember(&self, id: [u8; 32]) {
        if let Ok(mut s) = self.verified.lock() {
            if s.len() >= MAX_CACHED {
                s.clear();
            }
            s.insert(id);
        }
    }

    #[cfg(test)]
    fn cached(&self) -> usize {
        self.verified.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// The user name of a basic `Authorization` header (for a request that
/// passed [`BasicAuth::verify`]: the name of a configured user).
pub fn user_name(value: &HeaderValue) -> Option<String> {
    decode(value).map(|(user, _)| user)
}

/// `Basic base64(user:password)` → (user, password). The scheme is case
/// insensitive (RFC 7235); the password may contain ':'.
fn decode(value: &HeaderValue) -> Option<(String, String)> {
    let v = value.to_str().ok()?;
    let (scheme, creds) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(creds.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> HeaderValue {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {b}")).unwrap()
    }

    fn auth() -> BasicAuth {
        // Cost 4, the minimum, keeps the test fast.
        let hash = bcrypt::hash("s3cret:x", 4).unwrap();
        BasicAuth::new(BTreeMap::from([("alice".to_string(), hash)])).unwrap()
    }

    #[tokio::test]
    async fn right_password_passes_and_is_cached() {
        let a = auth();
        assert!(a.check(Some(&header("alice", "s3cret:x"))).await);
        assert_eq!(a.cached(), 1);
        // Served from the cache: same answer, no new entry.
        assert!(a.check(Some(&header("alice", "s3cret:x"))).await);
        assert_eq!(a.cached(), 1);
    }

    #[tokio::test]
    async fn wrong_or_missing_credentials_fail_and_are_not_cached() {
        let a = auth();
        assert!(!a.check(Some(&header("alice", "wrong"))).await);
        assert!(!a.check(Some(&header("bob", "s3cret:x"))).await);
        assert!(!a.check(None).await);
        assert!(!a.check(Some(&HeaderValue::from_static("Bearer abc"))).await);
        assert!(!a.check(Some(&HeaderValue::from_static("Basic !!!"))).await);
        assert_eq!(a.cached(), 0);
    }

    #[tokio::test]
    async fn scheme_is_case_insensitive() {
        let a = auth();
        let b = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:x");
        let v = HeaderValue::from_str(&format!("basic {b}")).unwrap();
        assert!(a.check(Some(&v)).await);
    }

    #[tokio::test]
    async fn a_changed_hash_does_not_reuse_old_entries() {
        let a = auth();
        assert!(a.check(Some(&header("alice", "s3cret:x"))).await);
        let k1 = a.cache_key("alice", "h1", "p");
        let k2 = a.cache_key("alice", "h2", "p");
        let k3 = a.cache_key("alic", "eh1", "p");
        assert_ne!(k1, k2);
        assert_ne!(k1, k3);
    }

    /// 40 wrong passwords at once from one address, then the right one
    /// from another: the flood gets one check and 429s, and the right
    /// password waits for at most the check ahead of it. With one queue
    /// for everyone it waited for all 40 (about 40 checks' time).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_password_flood_does_not_delay_another_client() {
        let hash = bcrypt::hash("right", 8).unwrap();
        let a = std::sync::Arc::new(
            BasicAuth::new(BTreeMap::from([("alice".to_string(), hash.clone())])).unwrap(),
        );
        let one = {
            let t = std::time::Instant::now();
            let _ = bcrypt::verify("wrong", &hash);
            t.elapsed()
        };
        let attacker: IpAddr = "10.0.0.66".parse().unwrap();
        let flood: Vec<_> = (0..40)
            .map(|_| {
                let a = a.clone();
                tokio::spawn(async move {
                    a.verify(Some(&header("alice", "wrong")), Some(attacker))
                        .await
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let t = std::time::Instant::now();
        let scraper: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            a.verify(Some(&header("alice", "right")), Some(scraper))
                .await,
            Verdict::Pass
        );
        let waited = t.elapsed();
        let mut verdicts = Vec::new();
        for f in flood {
            verdicts.push(f.await.unwrap());
        }
        assert_eq!(
            verdicts.iter().filter(|v| **v == Verdict::Deny).count(),
            1,
            "{verdicts:?}"
        );
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Busy).count(), 39);
        // The right password cost its own check plus at most the one
        // ahead of it (x3 for a loaded machine), far from 40 checks.
        assert!(waited < one * 6, "waited {waited:?}, one check {one:?}");
    }

    #[tokio::test]
    async fn no_users_means_open() {
        let a = BasicAuth::new(BTreeMap::new()).unwrap();
        assert!(a.is_open());
        assert!(a.check(None).await);
    }
}
