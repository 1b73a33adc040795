//! How the layer reads credentials from request headers: `Authorization:
//! Bearer`, the access cookie and the refresh cookie, and the `Set-Cookie`
//! values the crate renders.
//!
//! Invariants: no panic; two `Authorization` headers are a 400 and anything
//! else reads; the Bearer token wins over the cookie and any `Authorization`
//! header hides the refresh cookie; a cookie value found is a non-empty
//! piece of a `Cookie` header without `;`; a value rendered with `set` and
//! sent back in a `Cookie` header is found unchanged (render → parse).
#![no_main]

use arbitrary::Arbitrary;
use axum_authkit::fuzzing::{self, Credentials};
use axum_authkit::{CookiePrefix, CookieSettings};
use http::header::{AUTHORIZATION, COOKIE, HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Name {
    Authorization,
    Cookie,
    Other,
}

#[derive(Arbitrary, Debug)]
enum Prefix {
    None,
    Host,
    Secure,
}

#[derive(Arbitrary, Debug)]
struct Input {
    headers: Vec<(Name, Vec<u8>)>,
    prefix: Prefix,
    /// A value to render with `set` and read back.
    rendered: Option<(Vec<u8>, Vec<u8>, Vec<u8>)>,
}

/// Whether `part` lies inside `whole` (a borrowed piece of it).
fn within(part: &[u8], whole: &[u8]) -> bool {
    whole.windows(part.len().max(1)).any(|w| w == part)
}

fuzz_target!(|input: Input| {
    let prefix = match input.prefix {
        Prefix::None => CookiePrefix::None,
        Prefix::Host => CookiePrefix::Host,
        Prefix::Secure => CookiePrefix::Secure,
    };
    let access = CookieSettings::new("access_token").prefix(prefix);
    let refresh = CookieSettings::new("refresh_token").prefix(prefix);

    let mut headers = HeaderMap::new();
    for (name, value) in &input.headers {
        let Ok(value) = HeaderValue::from_bytes(value) else {
            continue;
        };
        let name = match name {
            Name::Authorization => AUTHORIZATION,
            Name::Cookie => COOKIE,
            Name::Other => HeaderName::from_static("x-other"),
        };
        headers.append(name, value);
    }

    // Render → parse: a token-shaped value set by the crate comes back as is.
    if let Some((before, value, after)) = &input.rendered {
        let value: String = value
            .iter()
            .map(|&b| {
                let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
                char::from(alphabet[usize::from(b) % alphabet.len()])
            })
            .collect();
        let set = access.set(&value, std::time::Duration::from_secs(60));
        let set = set.to_str().expect("Set-Cookie is ASCII");
        let parsed = cookie::Cookie::parse(set).expect("Set-Cookie parses");
        assert_eq!(parsed.name(), access.cookie_name());
        assert_eq!(parsed.value(), value);
        let pair = set.split(';').next().unwrap();
        // Other cookies around it, none with the same name.
        let clean = |b: &[u8]| -> String {
            b.iter()
                .map(|&b| {
                    if b.is_ascii_alphanumeric() {
                        char::from(b)
                    } else {
                        'x'
                    }
                })
                .collect()
        };
        let header = format!("o{}=1; {pair}; p{}=2", clean(before), clean(after));
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(&header).unwrap());
        let found = access.find(&h);
        if value.is_empty() {
            assert_eq!(found, None);
        } else {
            assert_eq!(found, Some(value.as_str()), "{header}");
        }
    }

    let authorizations = headers.get_all(AUTHORIZATION).iter().count();
    let creds = fuzzing::read_credentials(&headers, &access, &refresh);
    if authorizations > 1 {
        assert_eq!(creds, Err(http::StatusCode::BAD_REQUEST));
        return;
    }
    let Credentials {
        bearer,
        has_authorization,
        access_cookie,
        refresh_cookie,
        access_token,
    } = creds.expect("one Authorization header or none reads");
    assert_eq!(has_authorization, authorizations == 1);
    let first = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    assert_eq!(bearer.as_deref(), first.and_then(fuzzing::bearer_token));
    if let Some(token) = &bearer {
        let value = first.unwrap();
        assert!(value[..6].eq_ignore_ascii_case(b"bearer"));
        assert!(token.is_empty() || within(token, value));
        assert_eq!(token.trim_ascii(), &token[..]);
        assert_eq!(
            access_cookie, None,
            "the cookie was read despite a Bearer token"
        );
    }
    if has_authorization {
        assert_eq!(
            refresh_cookie, None,
            "the refresh cookie was read despite Authorization"
        );
    } else {
        assert_eq!(refresh_cookie.as_deref(), refresh.find(&headers));
    }
    assert_eq!(access_token, bearer.clone().or(access_cookie.clone()));
    let cookies: Vec<&[u8]> = headers
        .get_all(COOKIE)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    for value in access_cookie
        .iter()
        .map(Vec::as_slice)
        .chain(refresh_cookie.as_deref().map(str::as_bytes))
    {
        assert!(!value.is_empty());
        assert!(!value.contains(&b';'));
        assert!(cookies.iter().any(|c| within(value, c)));
    }
    if bearer.is_none() {
        let as_str = access_cookie
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok());
        assert_eq!(as_str, access.find(&headers));
    }
});
