//! A real browser: Debian's headless Chromium, driven through chromedriver,
//! runs the seed flow with the page's own `fetch(..., {credentials:
//! 'include'})` against the example server, from three kinds of page:
//!
//! - the API's own origin (cookies);
//! - another origin of the same site, `localhost:<port>` (cookies, CORS
//!   with credentials through `ALLOWED_ORIGINS`);
//! - another site, `localhost` against `127.0.0.1` (tokens in the body,
//!   `TOKENS_IN_BODY`, since the browser keeps no `SameSite=Lax` cookie
//!   there).
//!
//! Without Chromium the tests print one `SKIP` line and pass, unless
//! `AUTHKIT_REQUIRE_SERVICES=1` (then they fail).

#[path = "browser/chrome.rs"]
mod chrome;
mod common;
#[path = "common/server.rs"]
mod server;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use chrome::Chrome;
use serde_json::{Value, json};
use server::Server;

const EMAIL: &str = "browser.user@example.com";
const NAME: &str = "Browser User";
const PASSWORD: &str = "correct horse battery staple";
/// Short, so the browser drops the access cookie during the test.
const ACCESS_TTL_SECS: u64 = 2;
/// The whole flow of one test, browser start included.
const FLOW: Duration = Duration::from_secs(90);
/// One browser step (a fetch, a cookie read).
const STEP: Duration = Duration::from_secs(25);

/// Where the page lives, relative to the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PageAt {
    /// The page is on the API's origin.
    SameOrigin,
    /// `http://localhost:<page port>` against `http://localhost:<api port>`.
    SameSite,
    /// `http://localhost:<page port>` against `http://127.0.0.1:<api port>`.
    CrossSite,
}

/// `fut`, or a panic naming `what` when it takes longer than [`STEP`].
async fn step<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {STEP:?}"))
}

/// The test's SQLite directory, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Serves the app page on `127.0.0.1:<port>`; ends with the test's runtime.
async fn serve_page() -> u16 {
    let app = Router::new().route(
        "/",
        get(|| async { Html(include_str!("browser/index.html")) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the page server");
    let port = listener.local_addr().expect("page server address").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

/// The browser tab the flow runs in, and the API base its calls use.
struct Page<'a> {
    chrome: &'a Chrome,
    api: String,
}

/// What one `fetch` answered.
#[derive(Debug)]
struct Reply {
    status: u64,
    body: Value,
}

impl Page<'_> {
    /// Runs `fetch` in the page: `method` on the API's `path`, with a JSON
    /// body and a Bearer token when given, cookies always included.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        bearer: Option<&str>,
    ) -> Reply {
        let what = format!("{method} {path}");
        let args = vec![
            json!(method),
            json!(format!("{}{path}", self.api)),
            body.unwrap_or(Value::Null),
            bearer.map_or(Value::Null, |b| json!(b)),
        ];
        let out = step(
            &what,
            self.chrome
                .client
                .execute_async(include_str!("browser/fetch.js"), args),
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out["error"].is_null(),
            "{what}: fetch failed (network or CORS): {out}"
        );
        let status = out["status"]
            .as_u64()
            .unwrap_or_else(|| panic!("{what}: {out}"));
        let text = out["body"].as_str().unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: body {text:?}: {e}"))
        };
        Reply { status, body }
    }

    /// The cookies the browser holds for the page's URL, HttpOnly ones too
    /// (WebDriver sees them; the page's script must not).
    async fn cookies(&self) -> HashMap<String, String> {
        step("get cookies", self.chrome.client.get_all_cookies())
            .await
            .expect("get cookies")
            .into_iter()
            .map(|c| (c.name().to_owned(), c.value().to_owned()))
            .collect()
    }

    /// Both token cookies are set for the page, and its script reads neither.
    async fn assert_tokens_http_only(&self) {
        let cookies = self.cookies().await;
        assert!(
            cookies.contains_key("access_token") && cookies.contains_key("refresh_token"),
            "the browser holds both token cookies: {cookies:?}"
        );
        let visible = step(
            "document.cookie",
            self.chrome
                .client
                .execute("return document.cookie;", Vec::new()),
        )
        .await
        .expect("document.cookie");
        let visible = visible.as_str().unwrap_or_default();
        assert!(
            !visible.contains("access_token") && !visible.contains("refresh_token"),
            "document.cookie shows a token: {visible:?}"
        );
    }
}

/// The account route's body for the test user.
fn account(id: &str) -> Value {
    json!({"id": id, "email": EMAIL, "name": NAME})
}

/// The token fields of a body (`TOKENS_IN_BODY`): (access, refresh).
fn body_tokens(reply: &Reply) -> (String, String) {
    let body = &reply.body;
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["expires_in"], ACCESS_TTL_SECS, "{body}");
    let access = body["access_token"].as_str().unwrap_or_default();
    let refresh = body["refresh_token"].as_str().unwrap_or_default();
    assert!(!access.is_empty() && !refresh.is_empty(), "{body}");
    (access.to_owned(), refresh.to_owned())
}

/// The whole flow for one kind of page, bounded by [`FLOW`].
async fn run(site: PageAt) {
    if !chrome::available() {
        return;
    }
    tokio::time::timeout(FLOW, flow(site))
        .await
        .unwrap_or_else(|_| panic!("{site:?}: the browser flow took over {FLOW:?}"));
}

async fn flow(site: PageAt) {
    let dir = TempDir(std::env::temp_dir().join(common::unique_name("authkit_browser")));
    std::fs::create_dir_all(&dir.0).expect("create the database directory");
    let db = format!("sqlite://{}?mode=rwc", dir.0.join("browser.db").display());
    let ttl = ACCESS_TTL_SECS.to_string();
    let page_port = match site {
        PageAt::SameOrigin => None,
        PageAt::SameSite | PageAt::CrossSite => Some(serve_page().await),
    };
    let page_origin = page_port.map(|port| format!("http://localhost:{port}"));
    let mut envs = vec![
        ("DATABASE_URL", db.as_str()),
        ("COOKIE_SECURE", "false"),
        ("ACCESS_TTL_SECS", ttl.as_str()),
    ];
    if let Some(origin) = &page_origin {
        envs.push(("ALLOWED_ORIGINS", origin.as_str()));
    }
    if site == PageAt::CrossSite {
        envs.push(("TOKENS_IN_BODY", "true"));
    }
    let server = tokio::task::block_in_place(|| Server::start(&envs));
    let api_port = server.base.rsplit(':').next().expect("server port");

    let chrome = Chrome::start().await;
    let (start_url, api) = match (site, &page_origin) {
        (PageAt::SameOrigin, _) => (server.url("/api/v1/status/"), String::new()),
        (PageAt::SameSite, Some(origin)) => {
            (format!("{origin}/"), format!("http://localhost:{api_port}"))
        }
        (PageAt::CrossSite, Some(origin)) => (format!("{origin}/"), server.base.clone()),
        (_, None) => unreachable!("a page server runs for {site:?}"),
    };
    step("open the page", chrome.client.goto(&start_url))
        .await
        .unwrap_or_else(|e| panic!("open {start_url}: {e}"));
    let page = Page {
        chrome: &chrome,
        api,
    };
    match site {
        PageAt::SameOrigin | PageAt::SameSite => cookie_flow(&page, &server).await,
        PageAt::CrossSite => token_flow(&page, &server).await,
    }
    chrome.quit().await;
    server.stop();
}

/// Signup, verify-email, signin, account; the access cookie expires and the
/// layer refreshes; custom-refresh; custom-logout; account is then 401.
async fn cookie_flow(page: &Page<'_>, server: &Server) {
    let signup = json!({"email": EMAIL, "password": PASSWORD, "name": NAME, "captcha": "test"});
    let res = page
        .call("POST", "/api/v1/auth/signup/", Some(signup), None)
        .await;
    assert_eq!(res.status, 201, "signup: {res:?}");
    assert_eq!(res.body["email_verified"], false, "{res:?}");
    let id = res.body["id"].as_str().expect("user id").to_owned();

    // The signup cookie authenticates verify-email.
    let code = tokio::task::block_in_place(|| server.code_for(EMAIL));
    let res = page
        .call(
            "POST",
            "/api/v1/auth/verify-email/",
            Some(json!({"verification_code": code})),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "verify-email: {res:?}");
    assert_eq!(res.body["email_verified"], true, "{res:?}");

    let signin = json!({"login": EMAIL, "password": PASSWORD, "captcha": "test"});
    let res = page
        .call("POST", "/api/v1/auth/signin/", Some(signin), None)
        .await;
    assert_eq!(res.status, 204, "signin: {res:?}");
    page.assert_tokens_http_only().await;
    let res = page.call("GET", "/api/v1/account/", None, None).await;
    assert_eq!((res.status, &res.body), (200, &account(&id)));

    // The access cookie lives ACCESS_TTL_SECS; wait until the browser drops it.
    let deadline = Instant::now() + Duration::from_secs(ACCESS_TTL_SECS + 10);
    let refresh_before = loop {
        let cookies = page.cookies().await;
        if !cookies.contains_key("access_token") {
            break cookies
                .get("refresh_token")
                .cloned()
                .expect("the refresh cookie outlives the access cookie");
        }
        assert!(Instant::now() < deadline, "the access cookie never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let res = page.call("GET", "/api/v1/account/", None, None).await;
    assert_eq!(
        (res.status, &res.body),
        (200, &account(&id)),
        "the layer refreshes an expired sign-in"
    );
    page.assert_tokens_http_only().await;
    let refreshed = page.cookies().await["refresh_token"].clone();
    assert_ne!(
        refreshed, refresh_before,
        "the layer rotates the refresh cookie"
    );

    let res = page
        .call("POST", "/api/v1/auth/custom-refresh/", None, None)
        .await;
    assert_eq!(res.status, 204, "custom-refresh: {res:?}");
    let cookies = page.cookies().await;
    assert!(cookies.contains_key("access_token"), "{cookies:?}");
    assert_ne!(cookies.get("refresh_token"), Some(&refreshed), "rotated");

    let res = page
        .call("POST", "/api/v1/auth/custom-logout/", None, None)
        .await;
    assert_eq!(res.status, 204, "custom-logout: {res:?}");
    let cookies = page.cookies().await;
    assert!(
        !cookies.contains_key("access_token") && !cookies.contains_key("refresh_token"),
        "logout clears both cookies: {cookies:?}"
    );
    let res = page.call("GET", "/api/v1/account/", None, None).await;
    assert_eq!(res.status, 401, "after logout: {res:?}");
}

/// The same flow with the tokens in JSON bodies and `Authorization: Bearer`,
/// as a page on another site must do: its browser keeps no API cookie.
async fn token_flow(page: &Page<'_>, server: &Server) {
    let signup = json!({"email": EMAIL, "password": PASSWORD, "name": NAME, "captcha": "test"});
    let res = page
        .call("POST", "/api/v1/auth/signup/", Some(signup), None)
        .await;
    assert_eq!(res.status, 201, "signup: {res:?}");
    assert_eq!(res.body["email_verified"], false, "{res:?}");
    let id = res.body["id"].as_str().expect("user id").to_owned();
    let (access, _) = body_tokens(&res);

    let code = tokio::task::block_in_place(|| server.code_for(EMAIL));
    let res = page
        .call(
            "POST",
            "/api/v1/auth/verify-email/",
            Some(json!({"verification_code": code})),
            Some(&access),
        )
        .await;
    assert_eq!(res.status, 200, "verify-email: {res:?}");
    assert_eq!(res.body["email_verified"], true, "{res:?}");
    assert_eq!(res.body["token_type"], "Bearer", "{res:?}");
    assert!(res.body["access_token"].is_string(), "{res:?}");

    let signin = json!({"login": EMAIL, "password": PASSWORD, "captcha": "test"});
    let res = page
        .call("POST", "/api/v1/auth/signin/", Some(signin), None)
        .await;
    assert_eq!(res.status, 200, "signin: {res:?}");
    let (access, refresh) = body_tokens(&res);
    let res = page
        .call("GET", "/api/v1/account/", None, Some(&access))
        .await;
    assert_eq!((res.status, &res.body), (200, &account(&id)));
    let res = page.call("GET", "/api/v1/account/", None, None).await;
    assert_eq!(
        res.status, 401,
        "no API cookie rides along cross-site: {res:?}"
    );

    // The layer never refreshes a Bearer call; the page renews with its
    // refresh token in the body.
    let res = page
        .call(
            "POST",
            "/api/v1/auth/custom-refresh/",
            Some(json!({"refresh_token": refresh})),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "custom-refresh: {res:?}");
    let (renewed, rotated) = body_tokens(&res);
    assert_ne!(rotated, refresh, "the refresh token is rotated");
    let res = page
        .call("GET", "/api/v1/account/", None, Some(&renewed))
        .await;
    assert_eq!((res.status, &res.body), (200, &account(&id)));

    let res = page
        .call(
            "POST",
            "/api/v1/auth/custom-logout/",
            Some(json!({"refresh_token": rotated})),
            None,
        )
        .await;
    assert_eq!(res.status, 204, "custom-logout: {res:?}");
    let res = page
        .call(
            "POST",
            "/api/v1/auth/custom-refresh/",
            Some(json!({"refresh_token": rotated})),
            None,
        )
        .await;
    assert_eq!(res.status, 401, "the logged-out refresh token: {res:?}");
    assert_eq!(res.body["code"], "invalid_refresh_token", "{res:?}");
    // The contract: an ended sign-in's access tokens are refused within 1 s.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let res = page
            .call("GET", "/api/v1/account/", None, Some(&renewed))
            .await;
        if res.status == 401 {
            break;
        }
        assert_eq!(res.status, 200, "{res:?}");
        assert!(
            Instant::now() < deadline,
            "the logged-out access token still works"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_same_origin_page_uses_cookies() {
    run(PageAt::SameOrigin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_same_site_page_uses_cookies_with_cors() {
    run(PageAt::SameSite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_cross_site_page_uses_tokens_in_the_body() {
    run(PageAt::CrossSite).await;
}
