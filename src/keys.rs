//! [`KeySet`]: the keys that sign and verify access tokens, named by `kid`.
//!
//! A key set has exactly one *active* key, which signs new tokens, and any
//! number of *verify-only* keys. Rotating means building a new set whose
//! active key is the new one and whose verify-only keys include the old one,
//! until the old key's last token has expired (one access-token lifetime).
//!
//! ```
//! use axum_authkit::keys::{KeySet, SigningKey};
//!
//! let old = SigningKey::hs256("2026-10", b"an old secret of at least 32 bytes!!")?;
//! let new = SigningKey::hs256("2026-11", b"a new secret of at least 32 bytes!!!")?;
//! let keys = KeySet::new(new).with_verify_key(old.into_verify_key())?;
//! assert_eq!(keys.active_kid(), "2026-11");
//! # Ok::<(), axum_authkit::keys::KeyError>(())
//! ```
//!
//! Supported algorithms: HS256 (secret of at least 32 bytes), EdDSA
//! (Ed25519), ES256 (P-256) and RS256, the last three from PEM. Each key is
//! bound to its algorithm: a token is checked with the algorithm of the key
//! its `kid` names, whatever its header's `alg` says.
//!
//! Crypto comes from `jsonwebtoken`'s RustCrypto backend (`rust_crypto`
//! feature), chosen because it is pure Rust: no C toolchain, same behaviour on
//! every target. (Its RSA implementation is not constant-time for private-key
//! operations; prefer EdDSA or HS256 for signing and keep RS256 for
//! verify-only keys of other issuers where you can.)

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use sha2::{Digest, Sha256};

/// Minimum HS256 secret length, in bytes (RFC 7518 section 3.2).
pub const MIN_HS256_SECRET: usize = 32;

/// Why a key or key set could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// HS256 secrets must have at least [`MIN_HS256_SECRET`] bytes.
    #[error("the HS256 secret of key {kid:?} has {len} bytes; at least 32 are required")]
    SecretTooShort {
        /// The key's id.
        kid: String,
        /// The secret's length.
        len: usize,
    },
    /// The PEM could not be read as a key of the stated algorithm.
    #[error("key {kid:?} is not a valid {alg} PEM key: {source}")]
    InvalidPem {
        /// The key's id.
        kid: String,
        /// The algorithm it was read for.
        alg: &'static str,
        /// What `jsonwebtoken` reported.
        source: jsonwebtoken::errors::Error,
    },
    /// Two keys have the same `kid`.
    #[error("duplicate kid {0:?}")]
    DuplicateKid(String),
    /// The PEM is no Ed25519, P-256 or RSA key.
    #[error("the PEM is not an Ed25519, P-256 or RSA key")]
    UnknownPem,
    /// A `kid` must be 1 to 64 printable ASCII characters.
    #[error("invalid kid {0:?}: use 1 to 64 printable ASCII characters")]
    InvalidKid(String),
}

/// A key that can sign (it also verifies its own tokens).
pub struct SigningKey {
    verify: VerifyKey,
    encoding: EncodingKey,
}

/// A key that only verifies: a retired signing key, or another issuer's
/// public key.
#[derive(Clone)]
pub struct VerifyKey {
    kid: Box<str>,
    alg: Algorithm,
    decoding: DecodingKey,
    /// HS256 only: the HMAC with its key schedule done once.
    hmac: Option<Hmac<Sha256>>,
    /// Public JWK (asymmetric keys only).
    jwk: Option<Jwk>,
}

fn check_kid(kid: &str) -> Result<Box<str>, KeyError> {
    if kid.is_empty() || kid.len() > 64 || !kid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(KeyError::InvalidKid(kid.to_owned()));
    }
    Ok(kid.into())
}

fn pem_error(kid: &str, alg: Algorithm) -> impl FnOnce(jsonwebtoken::errors::Error) -> KeyError {
    let kid = kid.to_owned();
    move |source| KeyError::InvalidPem {
        kid,
        alg: alg_name(alg),
        source,
    }
}

pub(crate) fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        _ => "unsupported",
    }
}

/// The RFC 7638 thumbprint (SHA-256) of a public key, shortened to 22
/// base64url characters (128 bits). Ed25519 keys, whose thumbprint
/// `jsonwebtoken` does not compute, hash their `x` the same way.
fn thumbprint_kid(jwk: Option<&Jwk>) -> Result<String, KeyError> {
    use jsonwebtoken::jwk::{AlgorithmParameters, ThumbprintHash};
    let jwk = jwk.ok_or(KeyError::UnknownPem)?;
    let full = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(okp) => {
            let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, okp.x);
            URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
        }
        _ => jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| KeyError::UnknownPem)?,
    };
    Ok(full.chars().take(22).collect())
}

fn public_jwk(kid: &str, alg: Algorithm, mut jwk: Jwk) -> Jwk {
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(alg.into());
    jwk
}

impl SigningKey {
    /// An HMAC-SHA256 key. Refuses secrets shorter than 32 bytes.
    pub fn hs256(kid: &str, secret: &[u8]) -> Result<Self, KeyError> {
        let kid = check_kid(kid)?;
        if secret.len() < MIN_HS256_SECRET {
            return Err(KeyError::SecretTooShort {
                kid: kid.into(),
                len: secret.len(),
            });
        }
        Ok(SigningKey {
            verify: VerifyKey {
                kid,
                alg: Algorithm::HS256,
                decoding: DecodingKey::from_secret(secret),
                hmac: Hmac::<Sha256>::new_from_slice(secret).ok(),
                jwk: None,
            },
            encoding: EncodingKey::from_secret(secret),
        })
    }

    /// An Ed25519 key from a PKCS#8 PEM private key.
    pub fn ed25519_pem(kid: &str, private_pem: &[u8]) -> Result<Self, KeyError> {
        Self::from_private(kid, Algorithm::EdDSA, EncodingKey::from_ed_pem(private_pem))
    }

    /// A P-256 key from a PKCS#8 PEM private key.
    pub fn es256_pem(kid: &str, private_pem: &[u8]) -> Result<Self, KeyError> {
        Self::from_private(kid, Algorithm::ES256, EncodingKey::from_ec_pem(private_pem))
    }

    /// An RSA key from a PKCS#1 or PKCS#8 PEM private key.
    pub fn rs256_pem(kid: &str, private_pem: &[u8]) -> Result<Self, KeyError> {
        Self::from_private(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(private_pem),
        )
    }

    fn from_private(
        kid: &str,
        alg: Algorithm,
        encoding: jsonwebtoken::errors::Result<EncodingKey>,
    ) -> Result<Self, KeyError> {
        let kid_box = check_kid(kid)?;
        let encoding = encoding.map_err(pem_error(kid, alg))?;
        // The public half, derived once: it verifies and it is what JWKS exports.
        let jwk = Jwk::from_encoding_key(&encoding, alg).map_err(pem_error(kid, alg))?;
        let decoding = DecodingKey::from_jwk(&jwk).map_err(pem_error(kid, alg))?;
        Ok(SigningKey {
            verify: VerifyKey {
                jwk: Some(public_jwk(kid, alg, jwk)),
                kid: kid_box,
                alg,
                decoding,
                hmac: None,
            },
            encoding,
        })
    }

    /// A key from a PEM private key of any supported kind (Ed25519, P-256 or
    /// RSA, PKCS#8; RSA also PKCS#1), named by its public key's RFC 7638
    /// thumbprint, so every instance loading the same file agrees on the
    /// `kid` and a new key gets a new one.
    pub fn from_pem(private_pem: &[u8]) -> Result<Self, KeyError> {
        const PROBE_KID: &str = "probe";
        let key = SigningKey::ed25519_pem(PROBE_KID, private_pem)
            .or_else(|_| SigningKey::es256_pem(PROBE_KID, private_pem))
            .or_else(|_| SigningKey::rs256_pem(PROBE_KID, private_pem))
            .map_err(|_| KeyError::UnknownPem)?;
        let kid = thumbprint_kid(key.verify.jwk.as_ref())?;
        let SigningKey {
            mut verify,
            encoding,
        } = key;
        if let Some(jwk) = &mut verify.jwk {
            jwk.common.key_id = Some(kid.clone());
        }
        verify.kid = kid.into();
        Ok(SigningKey { verify, encoding })
    }

    /// The key's id.
    pub fn kid(&self) -> &str {
        &self.verify.kid
    }

    /// Drops the private half: what a rotated-out key becomes.
    pub fn into_verify_key(self) -> VerifyKey {
        self.verify
    }
}

impl VerifyKey {
    /// An HMAC-SHA256 verify-only key. Refuses secrets shorter than 32 bytes.
    pub fn hs256(kid: &str, secret: &[u8]) -> Result<Self, KeyError> {
        SigningKey::hs256(kid, secret).map(SigningKey::into_verify_key)
    }

    /// An Ed25519 public key from PEM (SubjectPublicKeyInfo).
    pub fn ed25519_pem(kid: &str, public_pem: &[u8]) -> Result<Self, KeyError> {
        Self::from_public(kid, Algorithm::EdDSA, DecodingKey::from_ed_pem(public_pem))
    }

    /// A P-256 public key from PEM.
    pub fn es256_pem(kid: &str, public_pem: &[u8]) -> Result<Self, KeyError> {
        Self::from_public(kid, Algorithm::ES256, DecodingKey::from_ec_pem(public_pem))
    }

    /// An RSA public key from PEM.
    pub fn rs256_pem(kid: &str, public_pem: &[u8]) -> Result<Self, KeyError> {
        Self::from_public(kid, Algorithm::RS256, DecodingKey::from_rsa_pem(public_pem))
    }

    fn from_public(
        kid: &str,
        alg: Algorithm,
        decoding: jsonwebtoken::errors::Result<DecodingKey>,
    ) -> Result<Self, KeyError> {
        let kid_box = check_kid(kid)?;
        let decoding = decoding.map_err(pem_error(kid, alg))?;
        let jwk = Jwk::from_decoding_key(&decoding, Some(alg)).map_err(pem_error(kid, alg))?;
        Ok(VerifyKey {
            jwk: Some(public_jwk(kid, alg, jwk)),
            kid: kid_box,
            alg,
            decoding,
            hmac: None,
        })
    }

    /// A verify-only key from a PEM public key of any supported kind, named
    /// as [`SigningKey::from_pem`] names its private half.
    pub fn from_pem(public_pem: &[u8]) -> Result<Self, KeyError> {
        const PROBE_KID: &str = "probe";
        let mut key = VerifyKey::ed25519_pem(PROBE_KID, public_pem)
            .or_else(|_| VerifyKey::es256_pem(PROBE_KID, public_pem))
            .or_else(|_| VerifyKey::rs256_pem(PROBE_KID, public_pem))
            .map_err(|_| KeyError::UnknownPem)?;
        let kid = thumbprint_kid(key.jwk.as_ref())?;
        if let Some(jwk) = &mut key.jwk {
            jwk.common.key_id = Some(kid.clone());
        }
        key.kid = kid.into();
        Ok(key)
    }

    /// The key's id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key accepts.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Checks `signature` (base64url) over `signed` with this key's algorithm.
    ///
    /// HS256 uses the HMAC keyed once at construction (the `hmac` and `sha2`
    /// crates of `jsonwebtoken`'s RustCrypto backend), because redoing the key
    /// schedule and boxing a verifier per token would cost a third of the
    /// whole check. Other algorithms go through `jsonwebtoken::crypto::verify`.
    pub(crate) fn verify_signature(&self, signed: &[u8], signature: &str) -> bool {
        match &self.hmac {
            Some(mac) => {
                let mut sig = [0u8; 48];
                if signature.len() != 43 {
                    return false;
                }
                match URL_SAFE_NO_PAD.decode_slice(signature, &mut sig) {
                    Ok(32) => {}
                    _ => return false,
                }
                let mut mac = mac.clone();
                mac.update(signed);
                // Constant-time comparison.
                mac.verify_slice(&sig[..32]).is_ok()
            }
            None => matches!(
                jsonwebtoken::crypto::verify(signature, signed, &self.decoding, self.alg),
                Ok(true)
            ),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid())
            .field("alg", &self.verify.alg)
            .finish()
    }
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

/// One active signing key plus verify-only keys, looked up by `kid`.
#[derive(Debug)]
pub struct KeySet {
    active: SigningKey,
    verify_only: Vec<VerifyKey>,
}

impl KeySet {
    /// A key set that signs with `active`.
    pub fn new(active: SigningKey) -> Self {
        KeySet {
            active,
            verify_only: Vec::new(),
        }
    }

    /// Adds a verify-only key (for example the previous active key).
    pub fn with_verify_key(mut self, key: VerifyKey) -> Result<Self, KeyError> {
        if self.get(&key.kid).is_some() {
            return Err(KeyError::DuplicateKid(key.kid.into()));
        }
        self.verify_only.push(key);
        Ok(self)
    }

    /// Makes `next` the active key and keeps the current one for verification.
    pub fn rotate(self, next: SigningKey) -> Result<Self, KeyError> {
        let KeySet {
            active,
            verify_only,
        } = self;
        let mut set = KeySet {
            active: next,
            verify_only: Vec::new(),
        };
        for key in std::iter::once(active.into_verify_key()).chain(verify_only) {
            set = set.with_verify_key(key)?;
        }
        Ok(set)
    }

    /// The `kid` new tokens are signed with.
    pub fn active_kid(&self) -> &str {
        self.active.kid()
    }

    pub(crate) fn encoding(&self) -> (&EncodingKey, Algorithm, &str) {
        (
            &self.active.encoding,
            self.active.verify.alg,
            &self.active.verify.kid,
        )
    }

    /// The key named `kid`, if any.
    pub fn get(&self, kid: &str) -> Option<&VerifyKey> {
        std::iter::once(&self.active.verify)
            .chain(&self.verify_only)
            .find(|k| &*k.kid == kid)
    }

    /// The public keys as a JWKS document (`{"keys": [...]}`), for other
    /// services that verify these tokens. HS256 secrets are never included.
    pub fn jwks(&self) -> JwkSet {
        let keys = std::iter::once(&self.active.verify)
            .chain(&self.verify_only)
            .filter_map(|k| k.jwk.clone())
            .collect();
        JwkSet { keys }
    }

    /// [`KeySet::jwks`] serialized as JSON.
    pub fn jwks_json(&self) -> String {
        serde_json::to_string(&self.jwks()).unwrap_or_else(|_| r#"{"keys":[]}"#.to_owned())
    }
}

/// Derives an independent 32-byte key for `label` from `master`.
pub(crate) fn derive(master: &[u8], label: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The HS256 key set that one master secret (at least 32 bytes) derives,
/// and the refresh secret that goes with it.
pub(crate) fn from_master(master: &[u8]) -> Result<(KeySet, [u8; 32]), KeyError> {
    if master.len() < MIN_HS256_SECRET {
        return Err(KeyError::SecretTooShort {
            kid: "default".into(),
            len: master.len(),
        });
    }
    let signing = derive(master, "axum-authkit/hs256");
    // The kid names the key without revealing it, and changes with it.
    let digest = Sha256::digest(signing);
    let kid: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let keys = KeySet::new(SigningKey::hs256(&format!("hs-{kid}"), &signing)?);
    Ok((keys, derive(master, "axum-authkit/refresh")))
}

/// The key of one-time code hashes, derived from the refresh secret.
pub(crate) fn code_key(refresh_secret: &[u8]) -> [u8; 32] {
    derive(refresh_secret, "axum-authkit/verification-code")
}
