//! Access-token verification on arbitrary bytes, through the path the layer
//! takes (cache, UTF-8 check, verifier, deny list).
//!
//! Invariants: no panic; a second look (a cache hit when the first passed)
//! answers the same; a token that verifies verifies the same without the
//! cache, and its claims, re-signed, verify to the same claims.
#![no_main]

use axum_authkit::fuzzing;
use axum_authkit_fuzz::{NOW, unit_auth};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let auth = unit_auth();
    let first = fuzzing::verify_at(auth, data, NOW);
    let second = fuzzing::verify_at(auth, data, NOW);
    assert_eq!(first, second, "the cache changed the answer");
    if let Ok(claims) = first {
        let token = std::str::from_utf8(data).expect("a verified token is UTF-8");
        let uncached = fuzzing::verify_uncached::<()>(auth, token, NOW).expect("verifies uncached");
        assert_eq!(*claims, uncached);
        let resigned = fuzzing::sign(auth, &claims);
        let again =
            fuzzing::verify_uncached::<()>(auth, &resigned, NOW).expect("re-signed verifies");
        assert_eq!(*claims, again, "claims do not round-trip");
    }
});
