//! The refresh-token parser, and the owner lookup behind it (the session id
//! a token names, then the HMAC chain walk against the live hash).
//!
//! Invariants: no panic; parse accepts exactly the canonical 64-character
//! base64url encodings of 48 bytes (encode ∘ parse is the identity); the
//! session id is the token's head; only the one live token finds its session.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use axum_authkit::fuzzing;
use axum_authkit_fuzz::unit_auth;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input {
    /// Any string.
    Text(String),
    /// Raw bytes, encoded: the parser must give them back.
    Raw([u8; 48]),
    /// The live token with one byte replaced: same session id most of the
    /// time, so the lookup and the chain walk run.
    Mutated { pos: u8, byte: u8 },
}

fn live() -> &'static String {
    static LIVE: OnceLock<String> = OnceLock::new();
    LIVE.get_or_init(|| fuzzing::start_session(unit_auth(), "user-1"))
}

fn check(token: &str) {
    let Some(raw) = fuzzing::parse_refresh_token(token) else {
        assert!(fuzzing::refresh_owner(unit_auth(), token).is_none());
        return;
    };
    assert_eq!(token.len(), 64);
    assert_eq!(fuzzing::encode_refresh_token(raw), token, "not canonical");
    let sid = fuzzing::refresh_session_id(raw);
    assert_eq!(sid.len(), 22);
    // 22 characters hold 132 bits: the first 21 are the id's alone.
    assert_eq!(sid[..21], token[..21]);
    let owner = fuzzing::refresh_owner(unit_auth(), token);
    if token == live().as_str() {
        assert_eq!(owner.as_deref(), Some(&sid[..]));
    } else {
        assert_eq!(owner, None, "a token that was never issued found a session");
    }
}

fuzz_target!(|input: Input| {
    match input {
        Input::Text(s) => check(&s),
        Input::Raw(raw) => {
            let token = fuzzing::encode_refresh_token(raw);
            assert_eq!(fuzzing::parse_refresh_token(&token), Some(raw));
            check(&token);
        }
        Input::Mutated { pos, byte } => {
            let mut bytes = live().clone().into_bytes();
            let i = usize::from(pos) % bytes.len();
            bytes[i] = byte;
            if let Ok(s) = String::from_utf8(bytes) {
                check(&s);
            }
        }
    }
});
