//! E-mail verification codes: six digits from the OS CSPRNG, stored as a
//! keyed hash, compared in constant time, valid for 15 minutes, used once,
//! and burned after 5 attempts.

use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::store::{SecretHash, UnixMillis, VerificationCode};

/// Lifetime and attempt budget of verification codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodePolicy {
    /// How long a code lives (default 15 minutes).
    pub ttl: Duration,
    /// Attempts before the code is burned (default 5).
    pub max_attempts: u32,
}

impl Default for CodePolicy {
    fn default() -> Self {
        CodePolicy {
            ttl: Duration::from_secs(15 * 60),
            max_attempts: 5,
        }
    }
}

/// Makes and checks codes with a server-side key, so a leaked table does not
/// give the codes away to a million-guess brute force.
#[derive(Clone)]
pub(crate) struct Codes {
    mac: Hmac<Sha256>,
    pub(crate) policy: CodePolicy,
}

impl Codes {
    pub(crate) fn new(key: &[u8], policy: CodePolicy) -> Result<Self, String> {
        let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|e| e.to_string())?;
        Ok(Codes { mac, policy })
    }

    fn hash(&self, user_id: &str, code: &str) -> SecretHash {
        let mut mac = self.mac.clone();
        mac.update(user_id.as_bytes());
        mac.update(b"\0");
        mac.update(code.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A fresh code for `user_id`: the digits to send and the record to store.
    pub(crate) fn generate(&self, user_id: &str, now: UnixMillis) -> (String, VerificationCode) {
        let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
        let ttl = i64::try_from(self.policy.ttl.as_millis()).unwrap_or(i64::MAX / 4);
        let record = VerificationCode {
            hash: self.hash(user_id, &code),
            expires_at: now.saturating_add(ttl),
            attempts: 0,
        };
        (code, record)
    }

    /// Whether `code` is the one `record` was made from (constant time).
    pub(crate) fn matches(&self, user_id: &str, code: &str, record: &VerificationCode) -> bool {
        self.hash(user_id, code).ct_eq(&record.hash).into()
    }
}

/// Whether `code` has the shape of a verification code (six ASCII digits).
pub fn is_well_formed(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}
