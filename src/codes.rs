//! One-time codes, for every purpose (e-mail verification, password reset,
//! e-mail change): six digits from the OS CSPRNG, stored as a hash keyed with
//! a server secret and bound to the user and purpose, compared in constant
//! time, valid for 15 minutes, burned after 5 tries or on success. A user has
//! one pending code per purpose; a new one replaces it.
//!
//! Checking a code ([`Codes::check`]) is race-free through the store:
//!
//! 1. the try is counted first, in one atomic update, so even concurrent
//!    guesses get at most `max_attempts` comparisons;
//! 2. past the budget the code is burned (`429 too_many_attempts`, the right
//!    code included);
//! 3. an expired code is `400 code_expired`;
//! 4. the right code is *taken* (deleted where its hash still matches), so of
//!    two concurrent confirms exactly one succeeds.

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::AuthError;
use crate::settings::CodeSettings;
use crate::store::{Code, CodePurpose, SecretHash, StoreError, UnixMillis, UserStore};

/// Makes and checks codes with a server-side key, so a leaked table does not
/// give the codes away to a million-guess brute force.
#[derive(Clone)]
pub(crate) struct Codes {
    mac: Hmac<Sha256>,
    settings: CodeSettings,
}

/// What a wrong code costs the caller: whether it was the last try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wrong {
    /// Tries remain.
    Invalid,
    /// That was the last try: the code is burned.
    Burned,
}

impl Codes {
    pub(crate) fn new(key: &[u8; 32], settings: CodeSettings) -> Self {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        Codes { mac, settings }
    }

    fn hash(&self, user_id: &str, purpose: CodePurpose, code: &str) -> SecretHash {
        let mut mac = self.mac.clone();
        mac.update(purpose.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(user_id.as_bytes());
        mac.update(b"\0");
        mac.update(code.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A fresh code: the digits to send and the record to store.
    pub(crate) fn generate(
        &self,
        user_id: &str,
        purpose: CodePurpose,
        new_email: Option<String>,
        now: UnixMillis,
    ) -> (String, Code) {
        let digits = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
        let ttl = i64::try_from(self.settings.ttl.as_millis()).unwrap_or(i64::MAX / 4);
        let record = Code {
            hash: self.hash(user_id, purpose, &digits),
            expires_at: now.saturating_add(ttl),
            attempts: 0,
            new_email,
        };
        (digits, record)
    }

    /// How long a code lives, for the mail text.
    pub(crate) fn ttl(&self) -> std::time::Duration {
        self.settings.ttl
    }

    /// Counts a try of `code` and, when it is right, takes the pending code
    /// from the store (see the module docs). `Ok(Err(_))` is a wrong code.
    pub(crate) async fn check(
        &self,
        users: &dyn UserStore,
        user_id: &str,
        purpose: CodePurpose,
        code: &str,
        now: UnixMillis,
    ) -> Result<Result<Code, Wrong>, AuthError> {
        let Some(record) = users.count_code_attempt(user_id, purpose).await? else {
            return Ok(Err(Wrong::Invalid));
        };
        let max = self.settings.max_attempts;
        if record.attempts > max {
            return Err(AuthError::TooManyAttempts);
        }
        if now >= record.expires_at {
            return Err(AuthError::CodeExpired);
        }
        let hash = self.hash(user_id, purpose, code);
        if !bool::from(hash.ct_eq(&record.hash)) {
            return Ok(Err(if record.attempts >= max {
                Wrong::Burned
            } else {
                Wrong::Invalid
            }));
        }
        match users.take_code(user_id, purpose, &hash).await {
            Ok(Some(taken)) => Ok(Ok(taken)),
            // A concurrent confirm took it first.
            Ok(None) | Err(StoreError::NotFound) => Ok(Err(Wrong::Invalid)),
            Err(e) => Err(e.into()),
        }
    }
}

/// Whether `code` has the shape of a one-time code (six ASCII digits).
pub(crate) fn is_well_formed(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}
