//! Where credentials come from: the Bearer header (case-insensitive scheme,
//! one header only, never falling back to the cookie), the access cookie
//! under its configured name, never the query string.

use std::sync::Arc;

use axum::http::StatusCode;
use axum_authkit::store::MemoryStore;
use axum_authkit::{ConfigError, CookiePrefix, CookieSettings};

use crate::support::*;

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let fx = fixture().await;
    let token = fx.session().await.access.token;
    let app = fx.required();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let auth = format!("{scheme} {token}");
        let res = send(&app, request("GET", "/me", &[("authorization", &auth)])).await;
        assert_eq!(res.ok().body["sub"], fx.user.id.as_str(), "{scheme}");
    }
    // An empty Bearer credential is a bad token, not an absent one.
    let res = send(&app, request("GET", "/me", &[("authorization", "Bearer")])).await;
    res.invalid("invalid_token");
    // Another scheme is not a credential of ours.
    let res = send(
        &app,
        request("GET", "/me", &[("authorization", "Basic YTpi")]),
    )
    .await;
    res.unauthenticated();
}

#[tokio::test]
async fn two_authorization_headers_are_a_bad_request() {
    let fx = fixture().await;
    let token = fx.session().await.access.token;
    let auth = format!("Bearer {token}");
    for app in [fx.app(), fx.required()] {
        for uri in ["/open", "/me"] {
            let req = request(
                "GET",
                uri,
                &[("authorization", &auth), ("authorization", &auth)],
            );
            send(&app, req)
                .await
                .error(StatusCode::BAD_REQUEST, "invalid_request");
        }
    }
    assert_eq!(fx.hits(), 0);
}

#[tokio::test]
async fn bearer_beats_the_cookie_and_never_falls_back() {
    let fx = fixture().await;
    let tokens = fx.session().await;
    let app = fx.required();
    let token = &tokens.access.token;

    // Valid Bearer + garbage cookie: the Bearer decides.
    let req = request(
        "GET",
        "/me",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("cookie", "access_token=garbage"),
        ],
    );
    send(&app, req).await.ok();

    // Invalid Bearer + valid cookie: 401, no fallback.
    let req = request(
        "GET",
        "/me",
        &[
            ("authorization", "Bearer garbage"),
            ("cookie", &format!("access_token={token}")),
        ],
    );
    send(&app, req).await.invalid("invalid_token");

    // The cookie alone works.
    let cookie = format!("access_token={token}");
    send(&app, with_cookies("GET", "/me", &cookie)).await.ok();
    assert_eq!(fx.hits(), 2);
}

#[tokio::test]
async fn access_token_query_parameter_is_ignored() {
    let fx = fixture().await;
    let token = fx.session().await.access.token;
    let app = fx.required();
    let uri = format!("/me?access_token={token}");
    send(&app, request("GET", &uri, &[]))
        .await
        .unauthenticated();
    let optional = fx.app();
    let uri = format!("/maybe?access_token={token}");
    let res = send(&optional, request("GET", &uri, &[])).await;
    assert_eq!(res.ok().text, "anonymous");
}

#[tokio::test]
async fn configurable_cookie_names_are_read_and_written() {
    let fx = fixture_with(|b| {
        b.with_access_cookie(CookieSettings::new("at").prefix(CookiePrefix::Host))
            .with_refresh_cookie(CookieSettings::new("rt").prefix(CookiePrefix::Host))
    })
    .await;
    assert_eq!(
        fx.auth.settings().access_cookie().cookie_name(),
        "__Host-at"
    );
    let tokens = fx.session().await;
    let app = fx.required();
    let token = &tokens.access.token;

    let cookie = format!("__Host-at={token}");
    send(&app, with_cookies("GET", "/me", &cookie)).await.ok();
    // The default name means nothing now.
    let cookie = format!(
        "access_token={token}; refresh_token={}",
        tokens.refresh_token
    );
    send(&app, with_cookies("GET", "/me", &cookie))
        .await
        .unauthenticated();

    // Automatic refresh reads and writes the configured names.
    let cookie = format!(
        "__Host-at={}; __Host-rt={}",
        fx.expired(&tokens.session.id),
        tokens.refresh_token
    );
    let res = send(&app, with_cookies("GET", "/me", &cookie)).await;
    res.ok();
    assert_session_cookie(&res.cookie("__Host-at"));
    assert_session_cookie(&res.cookie("__Host-rt"));
    assert_eq!(res.set_cookies().len(), 2);

    // A __Host- cookie without Secure is refused at build time.
    let err = base_builder(&Arc::new(MemoryStore::new()), keyset())
        .with_access_cookie(CookieSettings::new("at").prefix(CookiePrefix::Host))
        .with_cookie_secure(false)
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, ConfigError::Cookie { name, .. } if name == "__Host-at"),
        "{err:?}"
    );
}
