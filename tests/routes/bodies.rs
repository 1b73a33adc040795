//! What every route shares: strict JSON bodies, optional trailing slashes,
//! nesting under any prefix, and JSON `404`/`405` for unknown paths and
//! methods.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum_authkit::store::MemoryStore;
use http::{Method, Request, StatusCode, header};
use serde_json::json;
use tower::ServiceExt;

use crate::support::*;

#[tokio::test]
async fn bad_bodies_get_clear_errors() {
    const JSON: Option<&str> = Some("application/json");
    let deep = "[".repeat(10_000);
    let not_an_object: [&[u8]; 6] = [
        b"{not json",
        b"[1,2]",
        b"",
        b"\"\\ud800\"",
        &[0xff, 0xfe, b'{'],
        deep.as_bytes(),
    ];
    let big = format!("{{\"email\":\"{}\"}}", "a".repeat(17 * 1024));
    let h = harness();
    for path in [
        "/signup/",
        "/signin/",
        "/password-reset/",
        "/password-reset/confirm/",
    ] {
        for body in not_an_object {
            let r = h.post_raw(path, JSON, body.to_vec()).await;
            assert_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
        }
        for content_type in [Some("text/plain"), None] {
            let r = h.post_raw(path, content_type, b"{}".to_vec()).await;
            assert_error(
                &r,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            );
        }
        let r = h.post_raw(path, JSON, big.clone().into_bytes()).await;
        assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }
    // A charset parameter is fine.
    let r = h
        .post_raw(
            "/signin/",
            Some("application/json; charset=utf-8"),
            json!({"login": "x@example.com", "password": "whatever it is", "captcha": "ok"})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
}

#[tokio::test]
async fn authenticated_routes_check_bodies_too() {
    let h = harness();
    let s = h.signup("body@example.com").await;
    let cookie = s.session();
    for path in [
        "/verify-email/",
        "/change-password/",
        "/change-email/",
        "/change-email/confirm/",
    ] {
        let r = h
            .call(Method::POST, path)
            .cookie(&cookie)
            .header("content-type", "application/json")
            .send()
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
        let r = h
            .call(Method::POST, path)
            .cookie(&cookie)
            .header("content-type", "text/plain")
            .send()
            .await;
        assert_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
        let r = h.post(path, json!({"x": 1}), Some(&cookie)).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(r.json["errors"].is_object(), "{path}: {}", r.json);
    }
    let r = h
        .call(Method::DELETE, "/account/")
        .cookie(&cookie)
        .json(json!([]))
        .send()
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    // Nothing changed: the session still works.
    assert_eq!(h.account(&cookie).await.status, StatusCode::OK);
}

#[tokio::test]
async fn trailing_slash_is_optional_everywhere() {
    let h = harness();
    let s = h.signup("t@example.com").await;
    for path in ["/signin", "/signin/"] {
        let r = h
            .post(
                path,
                json!({"login": "t@example.com", "password": PASSWORD, "captcha": "ok"}),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{path}");
    }
    let routes = [
        (Method::POST, "/verify-email"),
        (Method::POST, "/resend-verification"),
        (Method::POST, "/logout-all"),
        (Method::POST, "/custom-refresh"),
        (Method::POST, "/custom-logout"),
        (Method::POST, "/signup"),
        (Method::POST, "/password-reset"),
        (Method::POST, "/password-reset/confirm"),
        (Method::POST, "/change-password"),
        (Method::POST, "/change-email"),
        (Method::POST, "/change-email/confirm"),
        (Method::GET, "/sessions"),
        (Method::DELETE, "/sessions/some-id"),
        (Method::DELETE, "/account"),
    ];
    for (method, path) in routes {
        let bare = h.call(method.clone(), path).json(json!({})).send().await;
        let slash = h
            .call(method.clone(), &format!("{path}/"))
            .json(json!({}))
            .send()
            .await;
        for r in [&bare, &slash] {
            assert_ne!(r.status, StatusCode::NOT_FOUND, "{method} {path}");
            assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        }
        assert_eq!(bare.status, slash.status, "{method} {path}");
        assert_eq!(bare.code(), slash.code(), "{method} {path}");
    }
    assert_eq!(h.account(&s.session()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn nests_under_any_prefix() {
    let outbox = Arc::new(Outbox::default());
    let auth = builder(&outbox, &Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    let app: Router = Router::new().nest("/auth", auth.router());
    let req = Request::post("/auth/custom-logout")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.oneshot(req).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
}

fn assert_json_error(r: &Reply, status: StatusCode, code: &str) {
    assert_error(r, status, code);
    let content_type = r.headers.get(header::CONTENT_TYPE).unwrap();
    assert_eq!(content_type, "application/json");
}

#[tokio::test]
async fn unknown_paths_are_404_json() {
    let h = harness();
    let s = h.signup("nf@example.com").await;
    for (method, path) in [
        (Method::GET, "/nowhere/"),
        (Method::POST, "/nowhere"),
        (Method::POST, "/signin/extra/"),
        (Method::DELETE, "/sessions/a/b/"),
        (Method::POST, "/SIGNIN/"),
    ] {
        let r = h
            .call(method.clone(), path)
            .cookie(&s.session())
            .json(json!({}))
            .send()
            .await;
        assert_json_error(&r, StatusCode::NOT_FOUND, "not_found");
        assert!(r.cookies().is_empty(), "{method} {path}");
    }
}

#[tokio::test]
async fn other_methods_are_405_json_with_allow() {
    let h = harness();
    let s = h.signup("mna@example.com").await;
    let cases = [
        (Method::GET, "/signin/", "POST"),
        (Method::PUT, "/signup", "POST"),
        (Method::GET, "/custom-refresh/", "POST"),
        (Method::DELETE, "/custom-logout/", "POST"),
        (Method::GET, "/password-reset/confirm/", "POST"),
        (Method::GET, "/change-password/", "POST"),
        (Method::GET, "/account/", "DELETE"),
        (Method::POST, "/account", "DELETE"),
        (Method::POST, "/sessions/", "GET"),
        (Method::DELETE, "/sessions/", "GET"),
        (Method::GET, "/sessions/some-id/", "DELETE"),
    ];
    for (method, path, allowed) in cases {
        for cookie in [None, Some(s.session())] {
            let mut call = h.call(method.clone(), path).json(json!({}));
            if let Some(c) = &cookie {
                call = call.cookie(c);
            }
            let r = call.send().await;
            assert_json_error(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
            let allow = r
                .headers
                .get(header::ALLOW)
                .unwrap_or_else(|| panic!("{method} {path}: no Allow header"))
                .to_str()
                .unwrap();
            assert!(
                allow.split(',').any(|m| m.trim() == allowed),
                "{method} {path}: Allow: {allow}"
            );
            assert!(
                !allow.split(',').any(|m| m.trim() == method.as_str()),
                "{method} {path}: Allow: {allow}"
            );
        }
    }
}
