//! The layer in required and optional mode, and the extractors: what each
//! answers without credentials, with bad ones, without the layer, and under
//! a layer built for other app claims.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use axum_authkit::store::{MemoryStore, StoreError, User, UserStore};
use axum_authkit::{AuthUser, Client};
use serde::{Deserialize, Serialize};

use crate::support::*;

#[tokio::test]
async fn required_mode_answers_401_before_the_handler() {
    let fx = fixture().await;
    let token = fx.session().await.access.token;
    let app = fx.required();

    send(&app, request("GET", "/open", &[]))
        .await
        .unauthenticated();
    send(&app, request("POST", "/open", &[]))
        .await
        .unauthenticated();
    send(&app, bearer("GET", "/open", "garbage"))
        .await
        .invalid("invalid_token");
    send(&app, with_cookies("GET", "/open", "access_token=garbage"))
        .await
        .invalid("invalid_token");
    assert_eq!(fx.hits(), 0, "the inner service must not run");

    send(&app, bearer("GET", "/open", &token)).await.ok();
    assert_eq!(fx.hits(), 1);
}

#[tokio::test]
async fn optional_mode_lets_requests_through_and_extractors_decide() {
    let fx = fixture().await;
    let token = fx.session().await.access.token;
    let app = fx.app();

    assert_eq!(
        send(&app, request("GET", "/open", &[])).await.ok().text,
        "open"
    );
    let res = send(&app, request("GET", "/maybe", &[])).await;
    assert_eq!(res.ok().text, "anonymous");
    let res = send(&app, bearer("GET", "/maybe", &token)).await;
    assert_eq!(res.ok().text, fx.user.id);
    assert_eq!(fx.hits(), 3);

    // Option<AuthUser> with a bad token rejects.
    send(&app, bearer("GET", "/maybe", "garbage"))
        .await
        .invalid("invalid_token");
    let expired = fx.expired("sid");
    send(&app, bearer("GET", "/maybe", &expired))
        .await
        .invalid("token_expired");
    // AuthUser: 401 either way.
    send(&app, request("GET", "/me", &[]))
        .await
        .unauthenticated();
    send(&app, bearer("GET", "/me", "garbage"))
        .await
        .invalid("invalid_token");
    assert_eq!(fx.hits(), 3);

    // An open route ignores a bad token in optional mode.
    send(&app, bearer("GET", "/open", "garbage")).await.ok();
}

#[tokio::test]
async fn verified_user_needs_a_verified_email() {
    let fx = fixture().await;
    let app = fx.app();
    let unverified = fx.session().await.access.token;
    send(&app, bearer("GET", "/verified", &unverified))
        .await
        .error(StatusCode::FORBIDDEN, "email_not_verified");
    send(&app, request("GET", "/verified", &[]))
        .await
        .unauthenticated();
    assert_eq!(fx.hits(), 0);

    fx.store.mark_email_verified(&fx.user.id).await.unwrap();
    let user = fx.store.user_by_id(&fx.user.id).await.unwrap().unwrap();
    let verified = fx
        .auth
        .start_session(&user, &Client::trusted())
        .await
        .unwrap()
        .access
        .token;
    let res = send(&app, bearer("GET", "/verified", &verified)).await;
    assert_eq!(res.ok().text, fx.user.id);
}

#[tokio::test]
async fn extractors_without_the_layer_fail_loudly() {
    let fx = fixture().await;
    let token = fx.session().await.access.token;
    let app = routes(fx.hits.clone());
    for (uri, extractor) in [
        ("/me", "AuthUser"),
        ("/maybe", "Option<AuthUser>"),
        ("/verified", "VerifiedUser"),
    ] {
        let res = send(&app, bearer("GET", uri, &token)).await;
        res.error(StatusCode::INTERNAL_SERVER_ERROR, "auth_layer_missing");
        let detail = res.body["detail"].as_str().unwrap();
        assert!(detail.contains(extractor), "{detail}");
        assert!(detail.contains("AuthLayer"), "{detail}");
        assert!(detail.contains("auth.layer()"), "{detail}");
        assert!(!detail.contains("`auth.required()`"), "{detail}");
    }
    assert_eq!(fx.hits(), 0);
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Roles {
    roles: Vec<String>,
}

async fn roles_of(_user: User) -> Result<Roles, StoreError> {
    Ok(Roles {
        roles: vec!["reader".into()],
    })
}

async fn roles(user: AuthUser<Roles>) -> String {
    user.extra.roles.join(",")
}

#[tokio::test]
async fn extractors_of_other_claims_than_the_layer_name_both_types() {
    let store = Arc::new(MemoryStore::new());
    let auth = base_builder(&store, keyset())
        .with_claims(roles_of)
        .build()
        .unwrap();
    let user = new_user(&store, "roles@example.test").await;
    let token = auth
        .start_session(&user, &Client::trusted())
        .await
        .unwrap()
        .access
        .token;
    let hits = Hits::default();
    let app: Router = routes(hits.clone())
        .route("/roles", get(roles))
        .layer(auth.layer());

    // The extractor of the layer's claims type works.
    let res = send(&app, bearer("GET", "/roles", &token)).await;
    assert_eq!(res.ok().text, "reader");

    // The default extractors (claims `()`) say what is wrong, with or
    // without credentials.
    let roles_type = std::any::type_name::<Roles>();
    for (uri, extractor) in [
        ("/me", "AuthUser"),
        ("/maybe", "Option<AuthUser>"),
        ("/verified", "VerifiedUser"),
    ] {
        for req in [bearer("GET", uri, &token), request("GET", uri, &[])] {
            let res = send(&app, req).await;
            res.error(StatusCode::INTERNAL_SERVER_ERROR, "claims_type_mismatch");
            let detail = res.body["detail"].as_str().unwrap();
            assert!(detail.contains(extractor), "{detail}");
            assert!(detail.contains("`()`"), "{detail}");
            assert!(detail.contains(&format!("`{roles_type}`")), "{detail}");
        }
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}
