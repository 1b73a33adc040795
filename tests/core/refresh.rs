//! Automatic refresh: whenever a refresh is possible (no `Authorization`
//! header, a refresh cookie) and the access cookie is missing, past its
//! `exp` or invalid, the layer rotates and sets both cookies. A dead refresh
//! cookie makes the request anonymous and clears both cookies. Rotation
//! races, reuse, and store outages.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use axum_authkit::keys::{KeySet, SigningKey};
use axum_authkit::store::{MemoryStore, Rotation, Session, SessionStore, StoreError, UnixMillis};
use axum_authkit::{AuthError, CookieSettings, SessionSettings, TokenError, async_trait};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::support::*;

/// Checks a response that refreshed session `sid`: the handler saw fresh
/// claims, both cookies are set, the new access token verifies and the
/// refresh token was rotated.
#[track_caller]
fn assert_refreshed(fx: &Fx, res: &Res, sid: &str, old_refresh: &str, what: &str) {
    assert_eq!(res.ok().body["sid"], sid, "{what}");
    assert_eq!(res.body["sub"], fx.user.id.as_str(), "{what}");
    let access = res.cookie("access_token");
    let refresh = res.cookie("refresh_token");
    assert_session_cookie(&access);
    assert_session_cookie(&refresh);
    assert_eq!(res.set_cookies().len(), 2, "{what}");
    assert_eq!(
        access.max_age(),
        Some(cookie::time::Duration::seconds(15 * 60))
    );
    let claims = fx.auth.verify(access.value()).unwrap();
    assert_eq!(claims.sid, sid, "{what}");
    assert_eq!(
        res.body["jti"],
        claims.jti.as_str(),
        "{what}: the handler saw the new token"
    );
    assert_ne!(refresh.value(), old_refresh, "{what}");
}

#[tokio::test]
async fn a_missing_or_expired_access_cookie_is_refreshed_even_inside_the_leeway() {
    let fx = fixture().await;
    for (mode, app) in [("optional", fx.app()), ("required", fx.required())] {
        for access in ["missing", "expired an hour ago", "expired 10 s ago"] {
            let tokens = fx.session().await;
            let sid = &tokens.session.id;
            let cookie = match access {
                "missing" => session_cookies(None, &tokens.refresh_token),
                "expired an hour ago" => {
                    let expired = fx.expired(sid);
                    assert_eq!(fx.auth.verify(&expired), Err(TokenError::Expired));
                    session_cookies(Some(&expired), &tokens.refresh_token)
                }
                _ => {
                    // Still accepted on its own (leeway), yet past its `exp`.
                    let expired = fx.just_expired(sid);
                    assert!(fx.auth.verify(&expired).is_ok());
                    session_cookies(Some(&expired), &tokens.refresh_token)
                }
            };
            let res = send(&app, with_cookies("GET", "/me", &cookie)).await;
            let what = format!("{mode}, access cookie {access}");
            assert_refreshed(&fx, &res, sid, &tokens.refresh_token, &what);
            assert_ne!(fx.session_rotated_at(sid).await, 0, "{what}");

            // The new pair works: the access cookie directly...
            let access_cookie = res.cookie("access_token");
            let cookie = format!("access_token={}", access_cookie.value());
            let again = send(&app, with_cookies("GET", "/me", &cookie)).await;
            again.ok();
            assert!(again.set_cookies().is_empty());
            // ...and the refresh cookie for the next rotation.
            let refresh_cookie = res.cookie("refresh_token");
            fx.auth.refresh(refresh_cookie.value()).await.unwrap();
        }
    }
}

#[tokio::test]
async fn an_invalid_access_cookie_is_refreshed_with_the_sessions_own_claims() {
    let fx = fixture().await;
    for (mode, app) in [("optional", fx.app()), ("required", fx.required())] {
        for name in [
            "bad signature, another user",
            "unknown kid",
            "wrong issuer",
            "garbage",
        ] {
            let tokens = fx.session().await;
            let sid = &tokens.session.id;
            let claims = fx.claims(sid);
            let forged = match name {
                "bad signature, another user" => {
                    let claims = with(&claims, json!({"sub": "mallory"}));
                    hs(&hs_header(), &claims, OTHER_SECRET)
                }
                "unknown kid" => hs(&with(&hs_header(), json!({"kid": "x"})), &claims, SECRET),
                "wrong issuer" => fx.sign(&with(&claims, json!({"iss": "https://evil.test"}))),
                _ => "garbage".to_owned(),
            };
            assert!(fx.auth.verify(&forged).is_err(), "{name}");
            let cookie = session_cookies(Some(&forged), &tokens.refresh_token);
            let res = send(&app, with_cookies("GET", "/me", &cookie)).await;
            let what = format!("{mode}, {name}");
            assert_refreshed(&fx, &res, sid, &tokens.refresh_token, &what);
            assert_ne!(fx.session_rotated_at(sid).await, 0, "{what}");
        }
    }
}

#[tokio::test]
async fn access_cookies_of_a_retired_key_are_refreshed_after_a_key_change() {
    let fx = fixture().await;
    let tokens = fx.session().await;
    let sid = &tokens.session.id;

    // The same store and refresh secret, a new key set without the old key.
    let next = base_builder(
        &fx.store,
        KeySet::new(SigningKey::hs256("hs-next", OTHER_SECRET).unwrap()),
    )
    .build()
    .unwrap();
    assert_eq!(
        next.verify(&tokens.access.token),
        Err(TokenError::UnknownKey)
    );
    let app = routes(fx.hits.clone()).layer(next.layer().required());

    // Without a refresh cookie the old token is just invalid...
    let cookie = format!("access_token={}", tokens.access.token);
    let res = send(&app, with_cookies("GET", "/me", &cookie)).await;
    res.invalid("invalid_token");
    assert!(res.set_cookies().is_empty());

    // ...with one, the session goes on under the new key.
    let cookie = session_cookies(Some(&tokens.access.token), &tokens.refresh_token);
    let res = send(&app, with_cookies("GET", "/me", &cookie)).await;
    assert_eq!(res.ok().body["sid"], sid.as_str());
    let access = res.cookie("access_token");
    assert_eq!(token_header(access.value()).kid.as_deref(), Some("hs-next"));
    assert_eq!(next.verify(access.value()).unwrap().sid, *sid);
    assert_session_cookie(&res.cookie("refresh_token"));
    assert_ne!(fx.session_rotated_at(sid).await, 0);
}

#[tokio::test]
async fn the_leeway_still_applies_without_a_refresh_cookie() {
    let fx = fixture().await;
    let tokens = fx.session().await;
    let sid = &tokens.session.id;
    let cookie = format!("access_token={}", fx.just_expired(sid));
    for app in [fx.app(), fx.required()] {
        let res = send(&app, with_cookies("GET", "/me", &cookie)).await;
        assert_eq!(res.ok().body["jti"], "just-expired");
        assert!(res.set_cookies().is_empty());
    }
    // Past the leeway it is refused.
    let cookie = format!("access_token={}", fx.expired(sid));
    send(&fx.required(), with_cookies("GET", "/me", &cookie))
        .await
        .invalid("token_expired");
    assert_eq!(fx.session_rotated_at(sid).await, 0);
}

#[tokio::test]
async fn the_leeway_still_applies_to_bearer_tokens() {
    let fx = fixture().await;
    let tokens = fx.session().await;
    let sid = &tokens.session.id;
    let refresh = session_cookies(None, &tokens.refresh_token);
    for app in [fx.app(), fx.required()] {
        let req = request(
            "GET",
            "/me",
            &[
                ("authorization", &format!("Bearer {}", fx.just_expired(sid))),
                ("cookie", &refresh),
            ],
        );
        let res = send(&app, req).await;
        assert_eq!(res.ok().body["jti"], "just-expired");
        assert!(res.set_cookies().is_empty());
    }
    assert_eq!(fx.session_rotated_at(sid).await, 0, "no rotation");
}

#[tokio::test]
async fn no_automatic_refresh_when_an_authorization_header_came() {
    let fx = fixture().await;
    let app = fx.required();
    let tokens = fx.session().await;
    let sid = &tokens.session.id;
    let expired = fx.expired(sid);
    let cookie = session_cookies(Some(&expired), &tokens.refresh_token);

    let req = request(
        "GET",
        "/me",
        &[
            ("authorization", &format!("Bearer {expired}")),
            ("cookie", &cookie),
        ],
    );
    let res = send(&app, req).await;
    res.invalid("token_expired");
    assert!(res.set_cookies().is_empty());

    let req = request(
        "GET",
        "/me",
        &[("authorization", "Basic YTpi"), ("cookie", &cookie)],
    );
    // The cookie is still read (Basic is the app's business), but with an
    // Authorization header the layer never refreshes.
    let res = send(&app, req).await;
    res.invalid("token_expired");
    assert!(res.set_cookies().is_empty());
    assert_eq!(fx.session_rotated_at(sid).await, 0);
}

#[tokio::test]
async fn a_dead_refresh_cookie_makes_the_request_anonymous_and_clears_both_cookies() {
    let fx = fixture().await;
    let live = fx.session().await;
    let ended = fx.session().await;
    assert!(
        fx.auth
            .sign_out(Some(&ended.refresh_token), None)
            .await
            .unwrap()
    );
    let unknown = URL_SAFE_NO_PAD.encode([9u8; 48]);
    let dead = [
        ("garbage", "garbage"),
        ("unknown", unknown.as_str()),
        ("of an ended session", ended.refresh_token.as_str()),
    ];
    let expired = fx.expired(&live.session.id);
    let accesses = [
        ("no access cookie", None),
        ("an expired access cookie", Some(expired.as_str())),
        ("an invalid access cookie", Some("garbage")),
    ];
    for (dead_name, refresh) in dead {
        for (access_name, access) in accesses {
            let what = format!("refresh cookie {dead_name}, {access_name}");
            let cookie = session_cookies(access, refresh);

            // Optional route: anonymous, the handler runs.
            let before = fx.hits();
            let res = send(&fx.app(), with_cookies("GET", "/maybe", &cookie)).await;
            assert_eq!(res.ok().text, "anonymous", "{what}");
            res.clears_both_cookies();
            assert_eq!(fx.hits(), before + 1, "{what}");

            // A route that needs a user: 401, in either mode, still clearing.
            for app in [fx.app(), fx.required()] {
                let res = send(&app, with_cookies("GET", "/me", &cookie)).await;
                res.unauthenticated();
                res.clears_both_cookies();
            }
            assert_eq!(fx.hits(), before + 1, "{what}: /me never ran");
        }
    }

    // A route without an extractor goes through, clearing the stale cookies.
    let res = send(
        &fx.app(),
        with_cookies("GET", "/open", "refresh_token=garbage"),
    )
    .await;
    assert_eq!(res.ok().text, "open");
    res.clears_both_cookies();
    assert_eq!(fx.session_rotated_at(&live.session.id).await, 0);
}

#[tokio::test]
async fn cleared_cookies_repeat_path_and_domain() {
    let fx = fixture_with(|b| {
        b.with_access_cookie(CookieSettings::new("access_token").domain(Some("api.test")))
            .with_refresh_cookie(
                CookieSettings::new("refresh_token")
                    .domain(Some("api.test"))
                    .path("/"),
            )
    })
    .await;
    let res = send(
        &fx.required(),
        with_cookies("GET", "/me", "refresh_token=garbage"),
    )
    .await;
    res.unauthenticated();
    assert_cleared(&res.cookie("access_token"), Some("api.test"));
    assert_cleared(&res.cookie("refresh_token"), Some("api.test"));
}

#[tokio::test]
async fn a_handler_setting_the_same_cookie_keeps_its_own() {
    let fx = fixture().await;
    let tokens = fx.session().await;
    let cookie = session_cookies(Some(&fx.expired(&tokens.session.id)), &tokens.refresh_token);
    let res = send(&fx.required(), with_cookies("GET", "/sets-cookie", &cookie)).await;
    res.ok();
    assert_eq!(res.cookie("access_token").value(), "from-handler");
    assert_session_cookie(&res.cookie("refresh_token"));
}

#[tokio::test]
async fn nested_layers_refresh_once() {
    let fx = fixture().await;
    let tokens = fx.session().await;
    let app = routes(fx.hits.clone())
        .layer(fx.auth.layer())
        .layer(fx.auth.layer().required());
    let cookie = session_cookies(None, &tokens.refresh_token);
    let res = send(&app, with_cookies("GET", "/me", &cookie)).await;
    res.ok();
    assert_eq!(res.set_cookies().len(), 2);
    let next = res.cookie("refresh_token");
    // Exactly one rotation: the new token is live, the old one its predecessor.
    let again = fx.auth.refresh(next.value()).await.unwrap();
    assert!(!again.session.revoked);
    assert_eq!(fx.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_refreshes_all_succeed() {
    const N: usize = 20;
    let fx = fixture().await;
    for round in 0..5 {
        let tokens = fx.session().await;
        let sid = tokens.session.id.clone();
        let cookie = session_cookies(Some(&fx.expired(&sid)), &tokens.refresh_token);
        let app = fx.required();
        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let tasks: Vec<_> = (0..N)
            .map(|_| {
                let (app, cookie, barrier) = (app.clone(), cookie.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    send(&app, with_cookies("GET", "/me", &cookie)).await
                })
            })
            .collect();
        let mut successors = HashSet::new();
        for task in tasks {
            let res = task.await.unwrap();
            assert_eq!(res.status, StatusCode::OK, "round {round}: {}", res.text);
            assert_eq!(res.body["sid"], sid.as_str());
            let access = res.cookie("access_token");
            assert_eq!(fx.auth.verify(access.value()).unwrap().sid, sid);
            successors.insert(res.cookie("refresh_token").value().to_owned());
        }
        assert_eq!(successors.len(), 1, "one successor for all racers");

        assert!(
            !fx.session_revoked(&sid).await,
            "round {round}: the session was revoked"
        );
        let rotated = successors.into_iter().next().unwrap();
        let next = fx.auth.refresh(&rotated).await.unwrap();
        assert!(!next.session.revoked);
        assert_ne!(next.refresh_token, rotated);
        assert!(!fx.session_revoked(&sid).await);
        assert!(fx.auth.verify(&next.access.token).is_ok());
    }
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_session() {
    let fx = fixture_with(|b| {
        b.with_session_settings(SessionSettings {
            reuse_grace: Duration::from_millis(200),
            ..SessionSettings::default()
        })
    })
    .await;
    let app = fx.required();
    let tokens = fx.session().await;
    let sid = &tokens.session.id;
    let old = session_cookies(None, &tokens.refresh_token);

    let res = send(&app, with_cookies("GET", "/me", &old)).await;
    res.ok();
    let new_refresh = res.cookie("refresh_token").value().to_owned();
    let new_access = res.cookie("access_token").value().to_owned();
    fx.auth.verify(&new_access).unwrap();

    tokio::time::sleep(Duration::from_millis(400)).await;
    let res = send(&app, with_cookies("GET", "/me", &old)).await;
    res.unauthenticated();
    res.clears_both_cookies();
    assert!(fx.session_revoked(sid).await);

    // The whole session is gone: the successor and its access token too.
    let new = session_cookies(None, &new_refresh);
    let res = send(&app, with_cookies("GET", "/me", &new)).await;
    res.unauthenticated();
    res.clears_both_cookies();
    assert!(matches!(
        fx.auth.refresh(&new_refresh).await,
        Err(AuthError::InvalidRefreshToken)
    ));
    assert_eq!(fx.auth.verify(&new_access), Err(TokenError::Revoked));
    send(&app, bearer("GET", "/me", &new_access))
        .await
        .invalid("invalid_token");
}

#[tokio::test]
async fn within_the_grace_window_the_old_token_gets_the_same_successor() {
    let fx = fixture().await; // default grace: 10 s
    let app = fx.required();
    let tokens = fx.session().await;
    let sid = &tokens.session.id;
    let old = session_cookies(None, &tokens.refresh_token);

    let first = send(&app, with_cookies("GET", "/me", &old)).await;
    first.ok();
    let second = send(&app, with_cookies("GET", "/me", &old)).await;
    second.ok();
    let t1 = first.cookie("refresh_token").value().to_owned();
    assert_eq!(second.cookie("refresh_token").value(), t1);
    assert!(!fx.session_revoked(sid).await);

    // One more generation: the first token is now two back, which is reuse.
    let t2 = fx.auth.refresh(&t1).await.unwrap().refresh_token;
    let res = send(&app, with_cookies("GET", "/me", &old)).await;
    res.unauthenticated();
    res.clears_both_cookies();
    assert!(fx.session_revoked(sid).await);
    assert!(fx.auth.refresh(&t2).await.is_err());
}

/// A session store that can be switched off: `session()` then fails as an
/// unreachable backend would.
struct Flaky {
    inner: Arc<MemoryStore>,
    down: AtomicBool,
}

impl Flaky {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("session store is down (test)"));
        }
        Ok(())
    }
}

#[async_trait]
impl SessionStore for Flaky {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.inner.create_session(session).await
    }
    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.check()?;
        self.inner.session(id).await
    }
    async fn rotate(&self, rotation: Rotation<'_>) -> Result<bool, StoreError> {
        self.inner.rotate(rotation).await
    }
    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.revoke_session(id).await
    }
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        except: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.revoke_user_sessions(user_id, except).await
    }
    async fn user_sessions(
        &self,
        user_id: &str,
        now: UnixMillis,
    ) -> Result<Vec<Session>, StoreError> {
        self.inner.user_sessions(user_id, now).await
    }
    async fn purge_expired(&self, now: UnixMillis) -> Result<u64, StoreError> {
        self.inner.purge_expired(now).await
    }
}

#[tokio::test]
async fn a_store_outage_keeps_an_access_cookie_inside_the_leeway_working() {
    let store = Arc::new(MemoryStore::new());
    let flaky = Arc::new(Flaky {
        inner: store.clone(),
        down: AtomicBool::new(false),
    });
    let auth = base_builder(&store, keyset())
        .sessions(flaky.clone())
        .build()
        .unwrap();
    let fx = fixture_on(store, auth).await;
    let tokens = fx.session().await;
    let sid = &tokens.session.id;
    flaky.down.store(true, Ordering::SeqCst);

    // Past `exp` but inside the leeway: the old claims, no cookies.
    let cookie = session_cookies(Some(&fx.just_expired(sid)), &tokens.refresh_token);
    let res = send(&fx.required(), with_cookies("GET", "/me", &cookie)).await;
    assert_eq!(res.ok().body["jti"], "just-expired");
    assert_eq!(res.body["sid"], sid.as_str());
    assert!(res.set_cookies().is_empty());
    let res = send(&fx.app(), with_cookies("GET", "/maybe", &cookie)).await;
    assert_eq!(res.ok().text, fx.user.id);
    assert!(res.set_cookies().is_empty());

    // Past the leeway, or without an access cookie, there is nothing to
    // fall back on: 503, and the cookies are kept for a later try.
    let past = fx.expired(sid);
    for access in [Some(past.as_str()), None] {
        let cookie = session_cookies(access, &tokens.refresh_token);
        let res = send(&fx.required(), with_cookies("GET", "/me", &cookie)).await;
        res.error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
        assert!(res.set_cookies().is_empty());
        let res = send(&fx.app(), with_cookies("GET", "/maybe", &cookie)).await;
        res.error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
        assert!(res.set_cookies().is_empty());
    }
    assert_eq!(fx.session_rotated_at(sid).await, 0);

    // Back up: the same request refreshes.
    flaky.down.store(false, Ordering::SeqCst);
    let res = send(&fx.required(), with_cookies("GET", "/me", &cookie)).await;
    assert_refreshed(&fx, &res, sid, &tokens.refresh_token, "store back up");
}
