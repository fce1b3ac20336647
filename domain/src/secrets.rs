//! Passwords (argon2id), random tokens, and hashes of high-entropy tokens (SHA-256: keys and
//! tokens carry ≥ 190 random bits, so a slow hash adds nothing).

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Minimum password length.
pub const MIN_PASSWORD_LEN: usize = 8;

/// How many password hashes (or verifications) run at once in this process: one per core.
/// Each takes tens of milliseconds of CPU and ~19 MiB, so they run on blocking threads, never
/// on the async runtime, and wait for a place here first.
pub fn password_hash_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// The process's places for password hashing (and verification). Public so a test can hold
/// them all and show that work which must not hash (a reset with a bad token) never waits here.
pub fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(password_hash_concurrency()))
}

/// Runs `work` on a blocking thread once `slots` has a place for it.
async fn bounded<T: Send + 'static>(
    slots: &tokio::sync::Semaphore,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let _slot = slots
        .acquire()
        .await
        .map_err(|e| Error::Internal(format!("password hashing slots closed: {e}")))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal(format!("password hashing task failed: {e}")))
}

fn hash_now(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
}

fn verify_now(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Hashes a password with argon2id (default parameters, fresh salt) into a PHC string, on a
/// blocking thread, at most [`password_hash_concurrency`] at once.
pub async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_owned();
    bounded(hashing_slots(), move || hash_now(&password)).await?
}

/// True when `password` matches the PHC string `hash` (checked like [`hash_password`] runs).
pub async fn verify_password(password: &str, hash: &str) -> Result<bool> {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    bounded(hashing_slots(), move || verify_now(&password, &hash)).await
}

/// Spends about as long as a real verification, so a login for an unknown email takes as long as
/// one with a wrong password.
pub async fn burn_password_check(password: &str) -> Result<()> {
    static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let password = password.to_owned();
    bounded(hashing_slots(), move || {
        if let Some(hash) = DUMMY.get_or_init(|| hash_now("not-a-real-password").ok()) {
            let _ = verify_now(&password, hash);
        }
    })
    .await
}

/// Checks a new password's strength; names the `field` when it is too weak.
pub fn validate_password(field: &str, password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::invalid(
            field,
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if password.len() > 1024 {
        return Err(Error::invalid(field, "must be at most 1024 bytes"));
    }
    Ok(())
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `len` random alphanumeric characters (≈ 5.95 bits each).
pub fn random_alphanumeric(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())]))
        .collect()
}

/// A random URL-safe token of 256 bits (hex).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 of `token`, hex-encoded.
pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Trims and lower-cases an email, then checks its shape; names `field` when malformed.
pub fn normalize_email(field: &str, raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    let bad = || Error::invalid(field, "is not a valid email address");
    if email.len() > 254 || email.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(bad());
    }
    Ok(email)
}

/// Encrypts secrets at rest (webhook signing secrets, integration tokens) with AES-256-GCM under
/// the server's `ENCRYPTION_KEY`. A sealed value is `v1:` + base64(nonce ‖ ciphertext ‖ tag), so
/// the format can change later without guessing.
///
/// During a key rotation the cipher also holds the previous key (`ENCRYPTION_KEY_PREVIOUS`):
/// values sealed under it still open, every new value is sealed under the current key, and
/// [`Cipher::reseal`] moves an old value to the current key. GCM's tag tells the keys apart, so
/// no key id is stored.
#[derive(Clone)]
pub struct Cipher {
    key: [u8; 32],
    previous: Option<[u8; 32]>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher([redacted])")
    }
}

/// Which key opened a sealed value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealedUnder {
    Current,
    Previous,
}

fn key_from_hex(hex_key: &str) -> Option<[u8; 32]> {
    hex::decode(hex_key.trim()).ok()?.try_into().ok()
}

fn aead_key(key: &[u8; 32]) -> Result<ring::aead::LessSafeKey> {
    ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, key)
        .map(ring::aead::LessSafeKey::new)
        .map_err(|_| Error::Internal("invalid encryption key".into()))
}

/// Opens `sealed` with one key; `None` when the key is not the one it was sealed with (or the
/// value is not a sealed value at all).
fn open_with(key: &[u8; 32], sealed: &str) -> Option<String> {
    use base64::Engine;
    let raw = sealed.strip_prefix("v1:")?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    if bytes.len() < ring::aead::NONCE_LEN + ring::aead::AES_256_GCM.tag_len() {
        return None;
    }
    let (nonce, rest) = bytes.split_at(ring::aead::NONCE_LEN);
    let nonce: [u8; ring::aead::NONCE_LEN] = nonce.try_into().ok()?;
    let mut buf = rest.to_vec();
    let plain = aead_key(key)
        .ok()?
        .open_in_place(
            ring::aead::Nonce::assume_unique_for_key(nonce),
            ring::aead::Aad::empty(),
            &mut buf,
        )
        .ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

/// The key [`Cipher::sign`] uses: derived from `key` (never the sealing key itself).
fn signing_key(key: &[u8; 32]) -> ring::hmac::Key {
    let derived = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        b"devsignal signing key",
    );
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref())
}

/// What is signed: `purpose`, a zero byte, `message`.
fn signed_data(purpose: &str, message: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(purpose.len() + 1 + message.len());
    data.extend_from_slice(purpose.as_bytes());
    data.push(0);
    data.extend_from_slice(message);
    data
}

impl Cipher {
    pub fn new(key: [u8; 32]) -> Self {
        Cipher {
            key,
            previous: None,
        }
    }

    /// A cipher from 64 hex characters (32 bytes).
    pub fn from_hex(hex_key: &str) -> Option<Self> {
        key_from_hex(hex_key).map(Cipher::new)
    }

    /// The same cipher, also opening values sealed under `previous` (64 hex characters); `None`
    /// when `previous` is not a key.
    pub fn with_previous_hex(self, previous: &str) -> Option<Self> {
        let previous = key_from_hex(previous)?;
        Some(Cipher {
            previous: Some(previous),
            ..self
        })
    }

    /// Whether a previous key is held (a rotation is under way).
    pub fn has_previous(&self) -> bool {
        self.previous.is_some()
    }

    /// Encrypts `plaintext` with a fresh random nonce, under the current key.
    pub fn seal(&self, plaintext: &str) -> Result<String> {
        use base64::Engine;
        let mut nonce = [0u8; ring::aead::NONCE_LEN];
        rand::rng().fill(&mut nonce);
        let mut buf = plaintext.as_bytes().to_vec();
        aead_key(&self.key)?
            .seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::empty(),
                &mut buf,
            )
            .map_err(|_| Error::Internal("encrypting a secret".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!(
            "v1:{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    /// A signature of `message` for `purpose` (HMAC-SHA-256 under a key derived from the
    /// current key), URL-safe base64: links the server hands out and later trusts.
    pub fn sign(&self, purpose: &str, message: &[u8]) -> String {
        use base64::Engine;
        let tag = ring::hmac::sign(&signing_key(&self.key), &signed_data(purpose, message));
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// Whether `signature` is [`Cipher::sign`]'s for `message` under the current or the
    /// previous key (compared in constant time).
    pub fn verify(&self, purpose: &str, message: &[u8], signature: &str) -> bool {
        use base64::Engine;
        let Ok(sig) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let data = signed_data(purpose, message);
        std::iter::once(&self.key)
            .chain(self.previous.as_ref())
            .any(|k| ring::hmac::verify(&signing_key(k), &data, &sig).is_ok())
    }

    /// Decrypts a value made by [`Cipher::seal`] under the current or the previous key, and says
    /// which one opened it.
    pub fn open_under(&self, sealed: &str) -> Result<(String, SealedUnder)> {
        if let Some(plain) = open_with(&self.key, sealed) {
            return Ok((plain, SealedUnder::Current));
        }
        if let Some(plain) = self.previous.as_ref().and_then(|k| open_with(k, sealed)) {
            return Ok((plain, SealedUnder::Previous));
        }
        Err(Error::Internal(if self.previous.is_some() {
            "a stored secret cannot be decrypted with ENCRYPTION_KEY or ENCRYPTION_KEY_PREVIOUS"
                .into()
        } else {
            "a stored secret cannot be decrypted with ENCRYPTION_KEY".into()
        }))
    }

    /// Decrypts a value made by [`Cipher::seal`] under the current or the previous key.
    pub fn open(&self, sealed: &str) -> Result<String> {
        self.open_under(sealed).map(|(plain, _)| plain)
    }

    /// The value sealed anew under the current key when it was sealed under the previous one;
    /// `None` when it already is under the current key.
    pub fn reseal(&self, sealed: &str) -> Result<Option<String>> {
        match self.open_under(sealed)? {
            (_, SealedUnder::Current) => Ok(None),
            (plain, SealedUnder::Previous) => self.seal(&plain).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_now("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_now("correct horse", &h));
        assert!(!verify_now("wrong horse", &h));
        assert!(!verify_now("x", "not a hash"));
    }

    #[tokio::test]
    async fn hashing_runs_off_the_async_thread_and_waits_for_a_slot() {
        // The runtime of this test has one thread: work done inline would finish on the first
        // poll. A hash on a blocking thread leaves the first poll pending.
        fn first_poll_pending<F: Future>(f: std::pin::Pin<&mut F>) -> bool {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            f.poll(&mut cx).is_pending()
        }
        let slots = tokio::sync::Semaphore::new(1);
        let held = slots.acquire().await.unwrap();
        let mut waiting = std::pin::pin!(bounded(&slots, || hash_now("correct horse")));
        assert!(first_poll_pending(waiting.as_mut()), "no slot yet");
        drop(held);
        let hash = waiting.await.unwrap().unwrap();
        assert!(verify_password("correct horse", &hash).await.unwrap());
        assert!(!verify_password("wrong horse", &hash).await.unwrap());
        let mut hashing = std::pin::pin!(hash_password("correct horse"));
        assert!(
            first_poll_pending(hashing.as_mut()),
            "hashed on the async thread"
        );
        assert!(hashing.await.unwrap().starts_with("$argon2id$"));
        assert!(password_hash_concurrency() >= 1);
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let a = Cipher::new([7u8; 32]);
        let sealed = a.seal("whsec_abc").unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("whsec_abc"));
        assert_ne!(
            sealed,
            a.seal("whsec_abc").unwrap(),
            "fresh nonce each time"
        );
        assert_eq!(a.open(&sealed).unwrap(), "whsec_abc");
        assert!(Cipher::new([8u8; 32]).open(&sealed).is_err());
        assert!(a.open("v1:AAAA").is_err());
        assert!(Cipher::from_hex(&"ab".repeat(32)).is_some());
        assert!(Cipher::from_hex("abcd").is_none());
    }

    #[test]
    fn a_previous_key_opens_old_values_and_reseal_moves_them_to_the_current_key() {
        let old = Cipher::new([7u8; 32]);
        let sealed_old = old.seal("whsec_old").unwrap();
        let rotating = Cipher::new([9u8; 32])
            .with_previous_hex(&hex::encode([7u8; 32]))
            .unwrap();
        assert!(rotating.has_previous());
        assert_eq!(
            rotating.open_under(&sealed_old).unwrap(),
            ("whsec_old".to_owned(), SealedUnder::Previous)
        );
        let moved = rotating.reseal(&sealed_old).unwrap().expect("re-sealed");
        assert_eq!(
            rotating.open_under(&moved).unwrap(),
            ("whsec_old".to_owned(), SealedUnder::Current)
        );
        assert_eq!(rotating.reseal(&moved).unwrap(), None, "already current");
        // Once the previous key is gone, only re-sealed values open.
        let after = Cipher::new([9u8; 32]);
        assert_eq!(after.open(&moved).unwrap(), "whsec_old");
        let err = after.open(&sealed_old).unwrap_err().to_string();
        assert!(err.contains("ENCRYPTION_KEY"), "{err}");
        let err = rotating
            .open(&Cipher::new([1u8; 32]).seal("x").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("ENCRYPTION_KEY_PREVIOUS"), "{err}");
        assert!(Cipher::new([9u8; 32]).with_previous_hex("nope").is_none());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email("email", "  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in ["", "ada", "ada@", "@x.io", "a@b", "a b@c.io", "a@@b.io"] {
            assert!(normalize_email("email", bad).is_err(), "{bad}");
        }
    }
}
