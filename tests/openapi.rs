//! The OpenAPI document of the auth routes: valid against the official
//! OpenAPI 3.1 schema (vendored in `tests/openapi/`), one path per route of
//! the API reference and of the real router, and per route exactly the
//! error codes that `docs/API.md` lists.
#![cfg(feature = "openapi")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum_authkit::Auth;
use axum_authkit::store::MemoryStore;
use http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use utoipa::OpenApi as _;

const PREFIX: &str = "/api/v1/auth";
const API_MD: &str = include_str!("../docs/API.md");
const OAS_SCHEMA: &str = include_str!("openapi/schema-3.1-2022-10-07.json");
/// Where the per-route table of docs/API.md says what tokens in bodies add.
const IN_BODY: &str = "with tokens in the body";

fn auth(tokens_in_body: bool) -> Auth {
    Auth::builder()
        .secret(b"a long random secret, at least 32 bytes")
        .store(Arc::new(MemoryStore::new()))
        .with_tokens_in_body(tokens_in_body)
        .build()
        .unwrap()
}

fn doc(tokens_in_body: bool) -> Value {
    serde_json::to_value(auth(tokens_in_body).openapi(PREFIX)).unwrap()
}

/// The errors of `document` against the official OpenAPI 3.1 schema.
fn schema_errors(document: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(OAS_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator
        .iter_errors(document)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// The backticked words of `text`.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// docs/API.md's table of error codes per route: `"POST /signup/"` to
/// (codes always, codes added with tokens in the body).
fn documented_routes() -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let mut routes = BTreeMap::new();
    for line in API_MD.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() != 4 || !cells[1].starts_with('`') {
            continue;
        }
        let route = cells[1].trim_matches('`');
        let Some((method, path)) = route.split_once(' ') else {
            continue;
        };
        if !["GET", "POST", "DELETE"].contains(&method) || !path.starts_with('/') {
            continue;
        }
        let (always, in_body) = cells[2].split_once(IN_BODY).unwrap_or((cells[2], ""));
        let codes = |t: &str| backticked(t).into_iter().map(str::to_owned).collect();
        routes.insert(route.to_owned(), (codes(always), codes(in_body)));
    }
    routes
}

/// docs/API.md's table of statuses per code.
fn documented_statuses() -> BTreeMap<String, u16> {
    API_MD
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() != 4 {
                return None;
            }
            let code = cells[1].strip_prefix('`')?.strip_suffix('`')?;
            Some((code.to_owned(), cells[2].parse().ok()?))
        })
        .collect()
}

/// Each operation of `document` as `"POST /signup/"` (prefix cut), with its
/// error codes by status.
fn operations(document: &Value) -> BTreeMap<String, BTreeMap<u16, BTreeSet<String>>> {
    let mut ops = BTreeMap::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        let local = path
            .strip_prefix(PREFIX)
            .unwrap_or_else(|| panic!("{path}"));
        for (method, op) in item.as_object().unwrap() {
            let mut errors = BTreeMap::<u16, BTreeSet<String>>::new();
            for (status, res) in op["responses"].as_object().unwrap() {
                let status: u16 = status.parse().unwrap();
                if status < 400 {
                    continue;
                }
                let codes =
                    &res["content"]["application/json"]["schema"]["properties"]["code"]["enum"];
                let codes = codes
                    .as_array()
                    .unwrap_or_else(|| panic!("{path} {status}"));
                assert!(!codes.is_empty());
                errors
                    .entry(status)
                    .or_default()
                    .extend(codes.iter().map(|c| c.as_str().unwrap().to_owned()));
            }
            ops.insert(format!("{} {local}", method.to_uppercase()), errors);
        }
    }
    ops
}

#[test]
fn the_document_is_valid_openapi_3_1() {
    for tokens_in_body in [false, true] {
        let document = doc(tokens_in_body);
        assert_eq!(document["openapi"], "3.1.0");
        let errors = schema_errors(&document);
        assert!(errors.is_empty(), "{errors:#?}");
    }
}

#[test]
fn the_schema_check_catches_a_broken_document() {
    let mut broken = doc(false);
    broken.as_object_mut().unwrap().remove("info");
    assert!(!schema_errors(&broken).is_empty());
    let mut broken = doc(false);
    broken["paths"][format!("{PREFIX}/signin/")]["post"]["responses"]["204"] = Value::from(3);
    assert!(!schema_errors(&broken).is_empty());
}

#[test]
fn every_route_in_its_trailing_slash_form_and_no_other() {
    let documented: BTreeSet<String> = documented_routes().into_keys().collect();
    assert_eq!(documented.len(), 15, "{documented:#?}");
    for tokens_in_body in [false, true] {
        let ops: BTreeSet<String> = operations(&doc(tokens_in_body)).into_keys().collect();
        assert_eq!(ops, documented);
        assert!(ops.iter().all(|op| op.ends_with('/')), "{ops:#?}");
    }
}

#[tokio::test]
async fn every_documented_route_is_served_by_the_router() {
    let app: Router = Router::new().nest(PREFIX, auth(false).router());
    for route in documented_routes().keys() {
        let (method, path) = route.split_once(' ').unwrap();
        let path = path.replace("{id}", "some-session");
        for path in [path.clone(), path.trim_end_matches('/').to_owned()] {
            let req = Request::builder()
                .method(Method::from_bytes(method.as_bytes()).unwrap())
                .uri(format!("{PREFIX}{path}"))
                .body(Body::empty())
                .unwrap();
            let status = app.clone().oneshot(req).await.unwrap().status();
            assert!(
                ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&status),
                "{method} {path}: {status}"
            );
        }
    }
    // A path the document does not list is not served either.
    let req = Request::get(format!("{PREFIX}/openapi.json/"))
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[test]
fn error_codes_per_route_match_the_api_reference() {
    let documented = documented_routes();
    let statuses = documented_statuses();
    for tokens_in_body in [false, true] {
        for (route, by_status) in operations(&doc(tokens_in_body)) {
            let (always, in_body) = &documented[&route];
            let mut expected = always.clone();
            if tokens_in_body {
                expected.extend(in_body.iter().cloned());
            }
            let found: BTreeSet<String> = by_status.values().flatten().cloned().collect();
            assert_eq!(
                found, expected,
                "{route} (tokens in body: {tokens_in_body})"
            );
            for (status, codes) in &by_status {
                for code in codes {
                    assert_eq!(statuses.get(code), Some(status), "{route}: {code}");
                }
            }
        }
    }
}

#[test]
fn cookies_and_security_schemes_are_described() {
    let document = doc(false);
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["accessCookie"]["in"], "cookie");
    assert_eq!(schemes["accessCookie"]["name"], "access_token");
    assert_eq!(schemes["refreshCookie"]["name"], "refresh_token");
    let signin = &document["paths"][format!("{PREFIX}/signin/")]["post"];
    assert!(signin["responses"]["204"]["headers"]["Set-Cookie"].is_object());
    assert!(signin.get("security").is_none());
    let sessions = &document["paths"][format!("{PREFIX}/sessions/")]["get"];
    let security: Vec<&str> = sessions["security"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_object().unwrap().keys().map(String::as_str))
        .collect();
    assert_eq!(security, ["bearer", "accessCookie", "refreshCookie"]);
    let refresh = &document["paths"][format!("{PREFIX}/custom-refresh/")]["post"];
    assert!(refresh.get("requestBody").is_none());
    assert!(refresh["responses"]["401"]["headers"]["WWW-Authenticate"].is_object());
}

#[test]
fn tokens_in_the_body_change_statuses_and_bodies() {
    let document = doc(true);
    let op = |path: &str| document["paths"][format!("{PREFIX}{path}")]["post"].clone();
    for path in [
        "/signin/",
        "/custom-refresh/",
        "/password-reset/confirm/",
        "/change-password/",
    ] {
        let responses = &op(path)["responses"];
        assert!(responses.get("204").is_none(), "{path}");
        assert_eq!(
            responses["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/TokenPair",
            "{path}"
        );
    }
    let refresh = op("/custom-refresh/");
    assert_eq!(refresh["requestBody"]["required"], false);
    assert_eq!(refresh["security"].as_array().unwrap().len(), 2);
    let signup = &op("/signup/")["responses"]["201"]["content"]["application/json"]["schema"];
    assert_eq!(signup["allOf"][1]["$ref"], "#/components/schemas/TokenPair");
    let pair = &document["components"]["schemas"]["TokenPair"]["required"];
    assert_eq!(
        pair,
        &serde_json::json!(["access_token", "token_type", "expires_in", "refresh_token"])
    );
}

#[test]
fn the_prefix_is_the_mount_point() {
    let auth = auth(false);
    for (prefix, path) in [
        ("", "/signup/"),
        ("/", "/signup/"),
        ("/auth/", "/auth/signup/"),
        ("auth", "/auth/signup/"),
    ] {
        let document = serde_json::to_value(auth.openapi(prefix)).unwrap();
        assert!(document["paths"].get(path).is_some(), "{prefix:?}");
    }
}

/// An app's own route, documented with utoipa's macros.
#[utoipa::path(
    get,
    path = "/api/v1/account/",
    responses((status = 200, description = "The signed-in user's account")),
    security(("bearer" = []))
)]
#[allow(dead_code)]
async fn account() {}

#[derive(utoipa::OpenApi)]
#[openapi(info(title = "My app", version = "1.0.0"), paths(account))]
struct AppDoc;

#[test]
fn an_app_merges_the_auth_document_into_its_own() {
    let auth = auth(false);
    let mut merged = AppDoc::openapi();
    merged.merge(auth.openapi(PREFIX));
    let nested = AppDoc::openapi().nest(PREFIX, auth.openapi(""));
    for document in [merged, nested] {
        let json = serde_json::to_value(&document).unwrap();
        assert_eq!(json["info"]["title"], "My app");
        let paths = json["paths"].as_object().unwrap();
        assert!(paths.contains_key("/api/v1/account/"));
        assert!(
            paths.contains_key("/api/v1/auth/signup/"),
            "{:?}",
            paths.keys()
        );
        assert!(paths.contains_key("/api/v1/auth/sessions/{id}/"));
        assert_eq!(paths.len(), 16);
        assert!(json["components"]["schemas"]["SignupRequest"].is_object());
        assert!(json["components"]["securitySchemes"]["bearer"].is_object());
        let errors = schema_errors(&json);
        assert!(errors.is_empty(), "{errors:#?}");
    }
}
