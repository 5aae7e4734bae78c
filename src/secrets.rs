//! The server's secret key, and sealing the secrets stored with it (vendor bearer tokens).
//!
//! Sealed text is `v1.` followed by the base64 (standard, padded) of a random 24-byte nonce
//! and the XChaCha20-Poly1305 ciphertext with its 16-byte tag. What a secret belongs to
//! (e.g. a source's id) is bound in as associated data, so a sealed token copied onto another
//! row does not open. A database dump without the key reveals no secret.
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// The environment variable that holds the key: 32 bytes, base64.
pub const SECRET_KEY_ENV: &str = "GATEWAY_SECRET_KEY";

const PREFIX: &str = "v1.";
const NONCE_BYTES: usize = 24;

/// Why a key could not be had or a secret not opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key is not 32 bytes of base64.
    #[error("the secret key must be 32 bytes, base64-encoded ({0})")]
    BadKey(String),
    /// The key file could not be read or created.
    #[error("secret key file {path}: {message}")]
    KeyFile { path: PathBuf, message: String },
    /// The sealed text is damaged, or was sealed with another key or for another owner.
    #[error("a stored secret does not open with this server's key")]
    WontOpen,
}

/// The key secrets are sealed with. Its `Debug` does not show it.
#[derive(Clone)]
pub struct SecretKey(XChaCha20Poly1305);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

impl SecretKey {
    /// A key from its base64 text (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|err| SecretError::BadKey(err.to_string()))?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey(format!("got {} bytes", bytes.len())));
        }
        XChaCha20Poly1305::new_from_slice(&bytes)
            .map(Self)
            .map_err(|err| SecretError::BadKey(err.to_string()))
    }

    /// A fresh random key, as base64.
    pub fn generate_base64() -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        STANDARD.encode(bytes)
    }

    /// The server's key: `GATEWAY_SECRET_KEY` (given as `from_env`) when set; else, for a
    /// SQLite database, the key file beside it (`<database file>.key`), created with mode 0600
    /// on first start; else none (PostgreSQL without the variable: tokens cannot be stored,
    /// since every replica must share the key).
    pub fn load(from_env: Option<&str>, database_url: &str) -> Result<Option<Self>, SecretError> {
        if let Some(text) = from_env.filter(|t| !t.trim().is_empty()) {
            return Self::from_base64(text).map(Some);
        }
        match key_file_path(database_url) {
            Some(path) => Self::from_file(&path).map(Some),
            None => Ok(None),
        }
    }

    /// Reads the key file at `path`, creating it (mode 0600, a fresh key) when missing.
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let fail = |message: String| SecretError::KeyFile {
            path: path.to_path_buf(),
            message,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let text = Self::generate_base64();
                match write_private(path, &text) {
                    Ok(()) => Self::from_base64(&text),
                    // Another process made it first: its key is the key.
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                        let text =
                            std::fs::read_to_string(path).map_err(|err| fail(err.to_string()))?;
                        Self::from_base64(&text)
                    }
                    Err(err) => Err(fail(err.to_string())),
                }
            }
            Err(err) => Err(fail(err.to_string())),
        }
    }

    /// Seals `secret` for `owner` (e.g. a source's id): `v1.<base64>`.
    pub fn seal(&self, secret: &str, owner: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: secret.as_bytes(),
            aad: owner,
        };
        // Encryption fails only for messages past ~256 GiB.
        let sealed = self
            .0
            .encrypt(&XNonce::from(nonce), payload)
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD.encode(bytes))
    }

    /// Opens what [`seal`](Self::seal) made for `owner`.
    pub fn open(&self, sealed: &str, owner: &[u8]) -> Result<String, SecretError> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .filter(|bytes| bytes.len() > NONCE_BYTES)
            .ok_or(SecretError::WontOpen)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SecretError::WontOpen)?;
        let payload = Payload {
            msg: ciphertext,
            aad: owner,
        };
        let plain = self
            .0
            .decrypt(&XNonce::from(nonce), payload)
            .map_err(|_| SecretError::WontOpen)?;
        String::from_utf8(plain).map_err(|_| SecretError::WontOpen)
    }
}

/// `<file>.key` beside a SQLite database file; `None` for PostgreSQL or an in-memory SQLite.
pub fn key_file_path(database_url: &str) -> Option<PathBuf> {
    let rest = database_url.strip_prefix("sqlite:")?;
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(format!("{path}.key")))
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // create_new: two processes starting at once do not overwrite each other's key.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_base64(&SecretKey::generate_base64()).expect("a key")
    }

    #[test]
    fn a_sealed_secret_opens_for_its_owner_only() {
        let key = key();
        let sealed = key.seal("sk-live-1234", b"source-a");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("sk-live"));
        assert_eq!(
            key.open(&sealed, b"source-a").expect("opens"),
            "sk-live-1234"
        );
        assert!(key.open(&sealed, b"source-b").is_err());
        assert!(
            super::SecretKey::from_base64(&SecretKey::generate_base64())
                .expect("another key")
                .open(&sealed, b"source-a")
                .is_err()
        );
    }

    #[test]
    fn sealing_twice_gives_different_text() {
        let key = key();
        assert_ne!(key.seal("t", b"o"), key.seal("t", b"o"));
    }

    #[test]
    fn damaged_text_does_not_open() {
        let key = key();
        let sealed = key.seal("token", b"o");
        let mut damaged = sealed.clone().into_bytes();
        let last = damaged.len() - 3;
        damaged[last] = if damaged[last] == b'A' { b'B' } else { b'A' };
        let damaged = String::from_utf8(damaged).expect("ascii");
        assert!(key.open(&damaged, b"o").is_err());
        assert!(key.open("v1.", b"o").is_err());
        assert!(key.open("plain", b"o").is_err());
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(SecretKey::from_base64("c2hvcnQ=").is_err());
        assert!(SecretKey::from_base64("not base64!").is_err());
    }

    #[test]
    fn the_key_file_sits_beside_a_sqlite_file() {
        assert_eq!(
            key_file_path("sqlite://contact-gateway.db?mode=rwc"),
            Some(PathBuf::from("contact-gateway.db.key"))
        );
        assert_eq!(
            key_file_path("sqlite:///var/lib/cg/db.sqlite"),
            Some(PathBuf::from("/var/lib/cg/db.sqlite.key"))
        );
        assert_eq!(key_file_path("sqlite::memory:"), None);
        assert_eq!(key_file_path("postgres://u@h/db"), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_created_key_file_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("db.key");
        let first = SecretKey::from_file(&path).expect("created");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = first.seal("token", b"o");
        let again = SecretKey::from_file(&path).expect("read");
        assert_eq!(again.open(&sealed, b"o").expect("same key"), "token");
    }
}
