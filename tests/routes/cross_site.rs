//! The cross-site rule on the routes a cookie can ride: refresh, logout,
//! and the authenticated routes when a cookie authenticates them.

use http::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

/// The ways a browser marks a request from another site.
const FOREIGN: [&[(&str, &str)]; 4] = [
    &[("sec-fetch-site", "cross-site")],
    &[("sec-fetch-site", "same-site")],
    &[("origin", "null")],
    &[("origin", "https://evil.example")],
];

fn with_headers<'h>(mut call: Call<'h>, headers: &[(&str, &str)]) -> Call<'h> {
    for (name, value) in headers {
        call = call.header(name, value);
    }
    call
}

#[tokio::test]
async fn cross_site_logout_with_a_cookie_is_refused() {
    let h = harness();
    let s = h.signup("xl@example.com").await;
    for headers in FOREIGN {
        let r = with_headers(h.call(Method::POST, "/custom-logout/"), headers)
            .cookie(&s.session())
            .send()
            .await;
        assert_error(&r, StatusCode::FORBIDDEN, "csrf_failed");
        assert!(r.cookies().is_empty(), "{headers:?}: {:?}", r.cookies());
        // Only the refresh cookie, only the access cookie: refused as well.
        for cookie in [
            s.cookie("refresh_token").unwrap(),
            s.cookie("access_token").unwrap(),
        ] {
            let r = with_headers(h.call(Method::POST, "/custom-logout/"), headers)
                .cookie(&cookie)
                .send()
                .await;
            assert_error(&r, StatusCode::FORBIDDEN, "csrf_failed");
        }
    }
    // The session was not ended: it still refreshes.
    let r = h.refresh_after(&s).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    // From this site, the logout works.
    let r = h
        .call(Method::POST, "/custom-logout/")
        .header("sec-fetch-site", "same-origin")
        .cookie(&r.session())
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Without a cookie there is nothing to ride on: 204.
    let r = with_headers(h.call(Method::POST, "/custom-logout/"), FOREIGN[0])
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn cross_site_refresh_with_a_cookie_is_refused() {
    let h = harness();
    let s = h.signup("xr@example.com").await;
    for headers in FOREIGN {
        let r = with_headers(h.call(Method::POST, "/custom-refresh/"), headers)
            .cookie(&s.cookie("refresh_token").unwrap())
            .send()
            .await;
        assert_error(&r, StatusCode::FORBIDDEN, "csrf_failed");
        assert!(r.cookies().is_empty(), "{headers:?}: {:?}", r.cookies());
    }
    // Nothing was rotated: the same token still refreshes, once.
    let r = h.refresh_after(&s).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    assert_ne!(r.cookie("refresh_token"), s.cookie("refresh_token"));
    let r = h
        .call(Method::POST, "/custom-refresh/")
        .header("sec-fetch-site", "same-origin")
        .cookie(&r.cookie("refresh_token").unwrap())
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
}

#[tokio::test]
async fn cookie_authenticated_routes_refuse_other_sites_but_not_bearer() {
    let h = harness();
    let s = h.signup("xa@example.com").await;
    let other = h.signin("xa@example.com", PASSWORD).await;
    let other_sid = h.auth.verify(&other.access_token()).unwrap().sid.clone();
    let calls = [
        (Method::POST, "/logout-all/".to_owned(), json!({})),
        (Method::POST, "/resend-verification/".to_owned(), json!({})),
        (
            Method::POST,
            "/change-password/".to_owned(),
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        ),
        (
            Method::POST,
            "/change-email/".to_owned(),
            json!({"new_email": "elsewhere@example.com", "password": PASSWORD}),
        ),
        (Method::DELETE, format!("/sessions/{other_sid}/"), json!({})),
        (
            Method::DELETE,
            "/account/".to_owned(),
            json!({"password": PASSWORD}),
        ),
    ];
    for (method, path, body) in &calls {
        for headers in FOREIGN {
            let r = with_headers(h.call(method.clone(), path), headers)
                .cookie(&s.session())
                .json(body.clone())
                .send()
                .await;
            assert_error(&r, StatusCode::FORBIDDEN, "csrf_failed");
        }
    }
    // Nothing happened.
    assert_eq!(h.refresh_after(&other).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.signin("xa@example.com", PASSWORD).await.status,
        StatusCode::NO_CONTENT
    );
    // GET is safe: the list answers from any site.
    let r = with_headers(h.call(Method::GET, "/sessions/"), FOREIGN[0])
        .cookie(&s.session())
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    // A Bearer request is never a browser's doing: it passes.
    let r = with_headers(
        h.call(Method::DELETE, &format!("/sessions/{other_sid}/")),
        FOREIGN[0],
    )
    .bearer(&s.access_token())
    .send()
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
}
