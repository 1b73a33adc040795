//! `GET /sessions/` and `DELETE /sessions/{id}/`.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::*;

fn rfc3339(v: &Value) -> OffsetDateTime {
    let s = v.as_str().unwrap_or_else(|| panic!("{v} is not a string"));
    OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("{s} is not RFC 3339: {e}"))
}

/// Signs in from `ip` with `agent` as the user agent.
async fn signin_from(h: &Harness, email: &str, agent: &str, ip: [u8; 4]) -> Reply {
    let r = h
        .call(Method::POST, "/signin/")
        .json(json!({"login": email, "password": PASSWORD, "captcha": "ok"}))
        .header("user-agent", agent)
        .peer(ip)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    r
}

async fn list(h: &Harness, cookie: &str) -> Reply {
    h.call(Method::GET, "/sessions/")
        .cookie(cookie)
        .send()
        .await
}

fn sid(h: &Harness, r: &Reply) -> String {
    h.auth.verify(&r.access_token()).unwrap().sid.clone()
}

/// Lets the millisecond clock move on, so sign-ins have distinct times.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

#[tokio::test]
async fn the_list_shows_live_sessions_newest_first() {
    let h = harness();
    let signup = h
        .call(Method::POST, "/signup/")
        .json(
            json!({"email": "ls@example.com", "password": PASSWORD, "name": "Jo", "captcha": "ok"}),
        )
        .header("user-agent", "Agent/1")
        .peer([198, 51, 100, 1])
        .send()
        .await;
    assert_eq!(signup.status, StatusCode::CREATED);
    tick().await;
    let second = signin_from(&h, "ls@example.com", "Agent/2", [198, 51, 100, 2]).await;
    tick().await;
    let third = signin_from(&h, "ls@example.com", "Agent/3", [198, 51, 100, 3]).await;
    tick().await;
    let gone = signin_from(&h, "ls@example.com", "Agent/4", [198, 51, 100, 4]).await;
    let logout = h
        .post("/custom-logout/", json!({}), Some(&gone.session()))
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    // Another user's sessions are not listed.
    h.signup("someone@example.com").await;
    assert_error(
        &h.call(Method::GET, "/sessions/").send().await,
        StatusCode::UNAUTHORIZED,
        "not_authenticated",
    );

    let r = list(&h, &second.session()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let sessions = r.json["sessions"].as_array().expect("a sessions array");
    let agents: Vec<&str> = sessions
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, ["Agent/3", "Agent/2", "Agent/1"], "{}", r.json);
    let ips: Vec<&str> = sessions.iter().map(|s| s["ip"].as_str().unwrap()).collect();
    assert_eq!(ips, ["198.51.100.3", "198.51.100.2", "198.51.100.1"]);
    let ids: Vec<String> = sessions
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [sid(&h, &third), sid(&h, &second), sid(&h, &signup)]);
    let current: Vec<bool> = sessions
        .iter()
        .map(|s| s["current"].as_bool().unwrap())
        .collect();
    assert_eq!(current, [false, true, false]);
    let created: Vec<OffsetDateTime> = sessions.iter().map(|s| rfc3339(&s["created_at"])).collect();
    assert!(created.windows(2).all(|w| w[0] > w[1]), "{created:?}");
    for s in sessions {
        assert!(rfc3339(&s["last_used_at"]) >= rfc3339(&s["created_at"]));
        let age = OffsetDateTime::now_utc() - rfc3339(&s["created_at"]);
        assert!(age.whole_minutes() < 10 && !age.is_negative(), "{s}");
    }

    // A refresh moves `last_used_at` on; the list follows the session.
    tick().await;
    let refreshed = h.refresh_after(&signup).await;
    assert_eq!(refreshed.status, StatusCode::NO_CONTENT);
    let r = list(&h, &refreshed.session()).await;
    let sessions = r.json["sessions"].as_array().unwrap();
    let first = &sessions[2];
    assert_eq!(first["id"], sid(&h, &signup));
    assert_eq!(first["current"], true);
    assert!(rfc3339(&first["last_used_at"]) > rfc3339(&first["created_at"]));
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
}

#[tokio::test]
async fn revoking_sessions() {
    let h = harness();
    let a1 = h.signup("a@example.com").await;
    let a2 = h.signin("a@example.com", PASSWORD).await;
    let b1 = h.signup("b@example.com").await;
    let (a1_sid, a2_sid, b1_sid) = (sid(&h, &a1), sid(&h, &a2), sid(&h, &b1));
    let delete = |cookie: String, id: String| {
        let h = &h;
        async move {
            h.call(Method::DELETE, &format!("/sessions/{id}/"))
                .cookie(&cookie)
                .send()
                .await
        }
    };

    // Another user's session, an unknown id: 404, nothing ends.
    let r = delete(a1.session(), b1_sid.clone()).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(h.refresh_after(&b1).await.status, StatusCode::NO_CONTENT);
    let r = delete(a1.session(), "no-such-session".into()).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    assert_error(
        &h.call(Method::DELETE, &format!("/sessions/{}/", a2_sid.clone()))
            .send()
            .await,
        StatusCode::UNAUTHORIZED,
        "not_authenticated",
    );

    // Own other session: 204, its tokens refused, this one untouched.
    let r = delete(a1.session(), a2_sid.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    assert!(r.cookies().is_empty(), "{:?}", r.cookies());
    assert_error(
        &h.refresh_after(&a2).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    );
    assert_eq!(
        h.account_bearer(&a2.access_token()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.account(&a1.session()).await.status, StatusCode::OK);
    let listed = list(&h, &a1.session()).await;
    assert_eq!(listed.json["sessions"].as_array().unwrap().len(), 1);
    // It is not live any more.
    let r = delete(a1.session(), a2_sid.clone()).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");

    // Own current session: 204, cookies cleared, tokens refused.
    let r = delete(a1.session(), a1_sid.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    assert!(r.clears_cookies(), "{:?}", r.cookies());
    assert_error(
        &h.refresh_after(&a1).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    );
    assert_eq!(
        h.account_bearer(&a1.access_token()).await,
        StatusCode::UNAUTHORIZED
    );
    // The other user was never touched.
    assert_eq!(h.account_bearer(&b1.access_token()).await, StatusCode::OK);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_recorded() {
    let h = harness_with(|b| b.with_trusted_proxies([std::net::IpAddr::from(PEER)]));
    h.signup("proxied@example.com").await;
    let r = h
        .call(Method::POST, "/signin/")
        .json(json!({"login": "proxied@example.com", "password": PASSWORD, "captcha": "ok"}))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    // From an untrusted peer the header is ignored.
    let spoofed = h
        .call(Method::POST, "/signin/")
        .json(json!({"login": "proxied@example.com", "password": PASSWORD, "captcha": "ok"}))
        .header("x-forwarded-for", "203.0.113.10")
        .peer([198, 51, 100, 7])
        .send()
        .await;
    assert_eq!(spoofed.status, StatusCode::NO_CONTENT);
    let listed = list(&h, &r.session()).await;
    let ips: Vec<&str> = listed.json["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ip"].as_str().unwrap())
        .collect();
    assert!(ips.contains(&"203.0.113.9"), "{ips:?}");
    assert!(ips.contains(&"198.51.100.7"), "{ips:?}");
    assert!(!ips.contains(&"203.0.113.10"), "{ips:?}");
}
