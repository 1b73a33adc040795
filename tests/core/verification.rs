//! Verification: every rejection and every accepted edge case, with the
//! verified-token cache on and off; the size cap.

use axum::http::StatusCode;
use axum_authkit::TokenError;
use serde_json::json;

use crate::support::*;

struct Case {
    name: &'static str,
    token: String,
    err: TokenError,
}

fn rejection_cases(fx: &Fx, sid: &str, refresh_token: &str) -> Vec<Case> {
    use TokenError::*;
    let now = now_secs();
    let claims = fx.claims(sid);
    let header = hs_header();
    let claims_text = claims.to_string();
    let good = fx.sign(&claims);
    let (good_signed, good_sig) = good.rsplit_once('.').unwrap();
    let other = fx.sign(&with(&claims, json!({"sub": "mallory"})));
    let (other_signed, _) = other.rsplit_once('.').unwrap();
    let pad = "x".repeat(8 * 1024);
    let mut cases = vec![
        (
            "alg none, empty signature",
            format!(
                "{}.{}.",
                b64(with(&header, json!({"alg": "none"})).to_string().as_bytes()),
                b64(claims_text.as_bytes())
            ),
            AlgorithmMismatch,
        ),
        (
            "alg none, HS256 signature",
            hs(&with(&header, json!({"alg": "none"})), &claims, SECRET),
            AlgorithmMismatch,
        ),
        (
            "alg RS256 on the HS256 key",
            hs(&with(&header, json!({"alg": "RS256"})), &claims, SECRET),
            AlgorithmMismatch,
        ),
        (
            "alg confusion: HS256 keyed with the RSA public PEM",
            hs(
                &with(&header, json!({"kid": "rsa-pub"})),
                &claims,
                RSA_PUBLIC,
            ),
            AlgorithmMismatch,
        ),
        (
            "alg confusion: HS256 keyed with the Ed25519 public PEM",
            hs(&with(&header, json!({"kid": "ed-pub"})), &claims, ED_PUBLIC),
            AlgorithmMismatch,
        ),
        (
            "unknown kid",
            hs(&with(&header, json!({"kid": "nope"})), &claims, SECRET),
            UnknownKey,
        ),
        (
            "missing kid",
            hs(&with(&header, json!({"kid": null})), &claims, SECRET),
            UnknownKey,
        ),
        (
            "kid null",
            jwt(
                r#"{"alg":"HS256","typ":"at+jwt","kid":null}"#,
                &claims_text,
                SECRET,
            ),
            UnknownKey,
        ),
        (
            "signed with another secret",
            hs(&header, &claims, OTHER_SECRET),
            BadSignature,
        ),
        (
            "signature of other claims",
            format!("{other_signed}.{good_sig}"),
            BadSignature,
        ),
        (
            "truncated signature",
            format!("{good_signed}.{}", &good_sig[..20]),
            BadSignature,
        ),
        ("empty signature", format!("{good_signed}."), BadSignature),
        (
            "expired",
            fx.sign(&with(&claims, json!({"exp": now - 3600}))),
            Expired,
        ),
        (
            "missing exp",
            fx.sign(&with(&claims, json!({"exp": null}))),
            InvalidClaims,
        ),
        (
            "string exp",
            fx.sign(&with(&claims, json!({"exp": "9999999999"}))),
            InvalidClaims,
        ),
        (
            "string nbf",
            fx.sign(&with(&claims, json!({"nbf": "0"}))),
            InvalidClaims,
        ),
        (
            "exp out of range",
            fx.sign(&with(&claims, json!({"exp": 1e300}))),
            InvalidClaims,
        ),
        (
            "duplicate exp",
            jwt(
                &header.to_string(),
                &claims_text.replacen('{', &format!("{{\"exp\":{},", now + 600), 1),
                SECRET,
            ),
            InvalidClaims,
        ),
        (
            "nbf in the future",
            fx.sign(&with(&claims, json!({"nbf": now + 3600}))),
            NotYetValid,
        ),
        (
            "wrong iss",
            fx.sign(&with(&claims, json!({"iss": "https://evil.test"}))),
            WrongIssuer,
        ),
        (
            "missing iss",
            fx.sign(&with(&claims, json!({"iss": null}))),
            InvalidClaims,
        ),
        (
            "wrong aud",
            fx.sign(&with(&claims, json!({"aud": "https://other.test"}))),
            WrongAudience,
        ),
        (
            "aud array without ours",
            fx.sign(&with(&claims, json!({"aud": ["a", "b"]}))),
            WrongAudience,
        ),
        (
            "crit header",
            hs(&with(&header, json!({"crit": ["exp"]})), &claims, SECRET),
            ForbiddenHeader,
        ),
        (
            "crit null",
            jwt(
                &format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{KID}","crit":null}}"#),
                &claims_text,
                SECRET,
            ),
            ForbiddenHeader,
        ),
        (
            "jku header",
            hs(
                &with(&header, json!({"jku": "https://evil.test/jwks.json"})),
                &claims,
                SECRET,
            ),
            ForbiddenHeader,
        ),
        (
            "jwk header",
            hs(
                &with(
                    &header,
                    json!({"jwk": {"kty": "oct", "k": b64(OTHER_SECRET)}}),
                ),
                &claims,
                SECRET,
            ),
            ForbiddenHeader,
        ),
        (
            "x5u header",
            hs(
                &with(&header, json!({"x5u": "https://evil.test/cert.pem"})),
                &claims,
                SECRET,
            ),
            ForbiddenHeader,
        ),
        (
            "x5c header",
            hs(&with(&header, json!({"x5c": ["MIIB"]})), &claims, SECRET),
            ForbiddenHeader,
        ),
        (
            "typ JWT",
            hs(&with(&header, json!({"typ": "JWT"})), &claims, SECRET),
            WrongType,
        ),
        (
            "typ refresh+jwt",
            hs(
                &with(&header, json!({"typ": "refresh+jwt"})),
                &claims,
                SECRET,
            ),
            WrongType,
        ),
        (
            "no typ",
            hs(&with(&header, json!({"typ": null})), &claims, SECRET),
            WrongType,
        ),
        ("the refresh token", refresh_token.to_owned(), Malformed),
        (
            "over 8 KiB",
            fx.sign(&with(&claims, json!({"pad": pad}))),
            TooLarge,
        ),
        ("garbage", "garbage".to_owned(), Malformed),
        ("two segments", good_signed.to_owned(), Malformed),
        ("four segments", format!("{good}.{good_sig}"), Malformed),
        ("empty", String::new(), Malformed),
        (
            "header not base64",
            format!("!!!.{}", good.split_once('.').unwrap().1),
            Malformed,
        ),
        (
            "header not JSON",
            jwt("not json", &claims_text, SECRET),
            Malformed,
        ),
        (
            "duplicate alg",
            jwt(
                &format!(r#"{{"alg":"none","alg":"HS256","typ":"at+jwt","kid":"{KID}"}}"#),
                &claims_text,
                SECRET,
            ),
            Malformed,
        ),
        (
            "payload not JSON",
            jwt(&header.to_string(), "not json", SECRET),
            InvalidClaims,
        ),
    ];
    // Padding in the signature is not base64url without padding.
    cases.push(("padded signature", format!("{good}="), BadSignature));
    cases
        .into_iter()
        .map(|(name, token, err)| Case { name, token, err })
        .collect()
}

#[tokio::test]
async fn every_rejection_with_cache_on_and_off() {
    for cached in [true, false] {
        let fx = fixture_with(|b| b.with_token_cache(cache(cached))).await;
        let tokens = fx.session().await;
        let app = fx.required();
        let optional = fx.app();

        // Control: the genuine token passes.
        send(&app, bearer("GET", "/me", &tokens.access.token))
            .await
            .ok();
        let cases = rejection_cases(&fx, &tokens.session.id, &tokens.refresh_token);
        for case in &cases {
            let what = format!("{} (cache {cached})", case.name);
            assert_eq!(fx.auth.verify(&case.token), Err(case.err), "{what}");
            // Twice: a refused token is never remembered.
            assert_eq!(fx.auth.verify(&case.token), Err(case.err), "{what}");

            let res = send(&app, bearer("GET", "/me", &case.token)).await;
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{what}");
            res.invalid(code_of(case.err));

            // The same token as the access cookie, no refresh cookie.
            if !case.token.is_empty() {
                let cookie = format!("access_token={}", case.token);
                let res = send(&optional, with_cookies("GET", "/me", &cookie)).await;
                assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{what}");
                res.invalid(code_of(case.err));
            }
        }
        assert_eq!(fx.hits(), 1, "no handler ran for a refused token");
        assert_eq!(fx.auth.cached_tokens(), usize::from(cached));
        assert_eq!(code_of(TokenError::Expired), "token_expired");
    }
}

#[tokio::test]
async fn accepted_edge_cases_with_cache_on_and_off() {
    for cached in [true, false] {
        let fx = fixture_with(|b| b.with_token_cache(cache(cached))).await;
        let sid = fx.session().await.session.id;
        let now = now_secs();
        let claims = fx.claims(&sid);
        let accepted = [
            (
                "exp within the 30 s leeway",
                fx.sign(&with(&claims, json!({"exp": now - 10}))),
            ),
            (
                "nbf within the leeway",
                fx.sign(&with(&claims, json!({"nbf": now + 10}))),
            ),
            (
                "nbf in the past",
                fx.sign(&with(&claims, json!({"nbf": now - 10}))),
            ),
            (
                "aud array containing ours",
                fx.sign(&with(&claims, json!({"aud": ["other", AUD]}))),
            ),
            (
                "fractional exp",
                fx.sign(&with(&claims, json!({"exp": now as f64 + 600.5}))),
            ),
            (
                "typ application/at+jwt",
                hs(
                    &with(&hs_header(), json!({"typ": "application/at+jwt"})),
                    &claims,
                    SECRET,
                ),
            ),
            (
                "just under the size cap",
                fx.sign(&with(&claims, json!({"pad": "x".repeat(5000)}))),
            ),
        ];
        let app = fx.required();
        for (name, token) in &accepted {
            assert!(
                fx.auth.verify(token).is_ok(),
                "{name} (cache {cached}): {:?}",
                fx.auth.verify(token)
            );
            let res = send(&app, bearer("GET", "/me", token)).await;
            assert_eq!(res.ok().body["sid"], sid.as_str(), "{name}");
        }
    }
}

#[tokio::test]
async fn the_size_cap_is_configurable() {
    let fx = fixture_with(|b| b.with_max_token_bytes(200)).await;
    let tokens = fx.session().await;
    assert!(tokens.access.token.len() > 200);
    assert_eq!(
        fx.auth.verify(&tokens.access.token),
        Err(TokenError::TooLarge)
    );
}
