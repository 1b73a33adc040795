//! An OpenAPI 3.1 document of the auth routes (feature `openapi`, on by
//! default): [`Auth::openapi`] describes every route of
//! [`Auth::router`] under the prefix it is mounted at, with its request
//! body, success body, cookies, security, and every error `code` it can
//! answer with. Serve it, or merge it into the app's own document.
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use axum::{Json, Router, body::Body, routing::get};
//! use axum_authkit::{Auth, store::MemoryStore};
//! use http::{Request, StatusCode};
//! use http_body_util::BodyExt;
//! use tower::ServiceExt;
//!
//! let auth: Auth = Auth::builder()
//!     .secret(b"a long random secret, at least 32 bytes")
//!     .store(Arc::new(MemoryStore::new()))
//!     .build()?;
//! let doc = Json(auth.openapi("/api/v1/auth"));
//! let app: Router = Router::new()
//!     .route("/api/v1/auth/openapi.json", get(move || async move { doc }))
//!     .nest("/api/v1/auth", auth.router());
//!
//! let req = Request::get("/api/v1/auth/openapi.json").body(Body::empty())?;
//! let res = app.oneshot(req).await?;
//! assert_eq!(res.status(), StatusCode::OK);
//! let bytes = res.into_body().collect().await?.to_bytes();
//! let doc: serde_json::Value = serde_json::from_slice(&bytes)?;
//! assert_eq!(doc["openapi"], "3.1.0");
//! let signin = &doc["paths"]["/api/v1/auth/signin/"]["post"];
//! assert_eq!(signin["responses"]["401"]["content"]["application/json"]["schema"]
//!     ["properties"]["code"]["enum"][0], "invalid_credentials");
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! The document follows the settings of the [`Auth`] it comes from: the
//! cookie names, and whether tokens travel in bodies too
//! ([`AuthBuilder::with_tokens_in_body`](crate::AuthBuilder::with_tokens_in_body)),
//! which changes success statuses and bodies. Paths are listed in their
//! trailing-slash form; each also answers without the slash.

use std::collections::BTreeMap;
use std::sync::Arc;

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::info::{InfoBuilder, LicenseBuilder};
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{
    AllOfBuilder, ArrayBuilder, ComponentsBuilder, KnownFormat, ObjectBuilder, Ref, Schema,
    SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{OpenApi, OpenApiBuilder, PathsBuilder, RefOr, Required};

use crate::auth::Auth;
use crate::error::{AuthError, REALM};
use crate::settings::Settings;
use crate::store::StoreError;
use crate::token::TokenError;
use crate::token::claims::ExtraClaims;

const JSON: &str = "application/json";
const TAG: &str = "auth";
const BEARER: &str = "bearer";
const ACCESS_COOKIE: &str = "accessCookie";
const REFRESH_COOKIE: &str = "refreshCookie";

impl<E: ExtraClaims> Auth<E> {
    /// The OpenAPI 3.1 document of [`Auth::router`] mounted at `prefix`
    /// (for example `"/api/v1/auth"`; `""` for the root): every route in
    /// its trailing-slash form, request and success bodies, the cookies it
    /// sets, the security schemes (Bearer, access cookie, refresh cookie),
    /// and per route every error status with its `code`s. See the
    /// [module docs](crate::openapi) for an example.
    pub fn openapi(&self, prefix: &str) -> OpenApi {
        document(self.settings(), prefix)
    }
}

/// How a route is authenticated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Nothing needed.
    Public,
    /// Bearer, the access cookie, or a refresh cookie the layer rotates.
    User,
    /// The refresh cookie (or the body token, when allowed).
    Refresh,
    /// Nothing needed; a refresh cookie, when it comes, is ended.
    Logout,
}

/// One route: what the document says about it.
struct Route {
    method: HttpMethod,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    access: Access,
    body: Option<&'static str>,
    body_required: bool,
    /// Status and body of the answer (`None`: no body).
    success: (u16, Option<RefOr<Schema>>, &'static str),
    /// Which cookies a success sets.
    cookies: Cookies,
    errors: Vec<AuthError>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cookies {
    None,
    Both,
    Access,
    Cleared,
}

fn schema_ref(name: &str) -> RefOr<Schema> {
    Ref::from_schema_name(name).into()
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn described(description: &str) -> ObjectBuilder {
    string().description(Some(description))
}

fn object<'a>(fields: impl IntoIterator<Item = (&'a str, ObjectBuilder, bool)>) -> ObjectBuilder {
    fields.into_iter().fold(
        ObjectBuilder::new().schema_type(Type::Object),
        |o, (name, schema, required)| {
            let o = o.property(name, schema);
            if required { o.required(name) } else { o }
        },
    )
}

fn both(a: &str, b: &str) -> RefOr<Schema> {
    AllOfBuilder::new()
        .item(schema_ref(a))
        .item(schema_ref(b))
        .into()
}

/// Codes the layer gives an authenticated route before its handler runs.
fn authenticated() -> Vec<AuthError> {
    vec![
        AuthError::MissingCredentials,
        AuthError::InvalidToken(TokenError::BadSignature),
        AuthError::InvalidToken(TokenError::Expired),
        AuthError::MultipleAuthorization,
        AuthError::CsrfFailed,
        // The layer's own refresh, when only a refresh cookie came.
        store(),
        internal(),
    ]
}

/// Codes of a JSON body that is not one.
fn json_body() -> Vec<AuthError> {
    vec![
        AuthError::bad_request("bad body"),
        AuthError::PayloadTooLarge,
        AuthError::UnsupportedMediaType,
    ]
}

fn store() -> AuthError {
    AuthError::StoreUnavailable(Arc::new(StoreError::NotFound))
}

fn limited() -> AuthError {
    AuthError::RateLimited {
        retry_after: std::time::Duration::from_secs(1),
    }
}

fn internal() -> AuthError {
    AuthError::Internal("")
}

fn routes(settings: &Settings) -> Vec<Route> {
    use AuthError::*;
    let body = settings.tokens_in_body();
    let pair = || schema_ref("TokenPair");
    // A new or renewed session: `204`, or `200` with the tokens.
    let session = |what| {
        if body {
            (200, Some(pair()), what)
        } else {
            (204, None, what)
        }
    };
    let user = || {
        if body {
            both("User", "TokenPair")
        } else {
            schema_ref("User")
        }
    };
    let fresh = |name: &str| {
        if body {
            both(name, "AccessToken")
        } else {
            schema_ref(name)
        }
    };
    let with = |mut a: Vec<AuthError>, b: Vec<AuthError>| {
        a.extend(b);
        a
    };
    let mut refresh_errors = vec![InvalidRefreshToken, CsrfFailed, store(), internal()];
    if body {
        refresh_errors.extend(json_body());
    }
    vec![
        Route {
            method: HttpMethod::Post,
            path: "/signup/",
            id: "signup",
            summary: "Create an account, sign it in and mail a verification code",
            access: Access::Public,
            body: Some("SignupRequest"),
            body_required: true,
            success: (201, Some(user()), "The account, signed in"),
            cookies: Cookies::Both,
            errors: with(
                json_body(),
                vec![
                    CaptchaFailed,
                    CsrfFailed,
                    EmailTaken,
                    limited(),
                    CaptchaUnavailable,
                    store(),
                    internal(),
                ],
            ),
        },
        Route {
            method: HttpMethod::Post,
            path: "/signin/",
            id: "signin",
            summary: "Sign in with e-mail address and password",
            access: Access::Public,
            body: Some("SigninRequest"),
            body_required: true,
            success: session("Signed in"),
            cookies: Cookies::Both,
            errors: with(
                json_body(),
                vec![
                    CaptchaFailed,
                    InvalidCredentials,
                    CsrfFailed,
                    limited(),
                    CaptchaUnavailable,
                    store(),
                    internal(),
                ],
            ),
        },
        Route {
            method: HttpMethod::Post,
            path: "/verify-email/",
            id: "verifyEmail",
            summary: "Verify the e-mail address with the mailed code",
            access: Access::User,
            body: Some("VerificationCode"),
            body_required: true,
            success: (
                200,
                Some(fresh("EmailVerified")),
                "Verified; a fresh access token",
            ),
            cookies: Cookies::Access,
            errors: with(
                with(authenticated(), json_body()),
                vec![
                    InvalidCode,
                    CodeExpired,
                    TooManyAttempts,
                    limited(),
                    store(),
                    internal(),
                ],
            ),
        },
        Route {
            method: HttpMethod::Post,
            path: "/resend-verification/",
            id: "resendVerification",
            summary: "Mail a new verification code",
            access: Access::User,
            body: None,
            body_required: false,
            success: (204, None, "A new code is on its way"),
            cookies: Cookies::None,
            errors: with(authenticated(), vec![limited(), MailUnavailable, store()]),
        },
        Route {
            method: HttpMethod::Post,
            path: "/custom-refresh/",
            id: "refresh",
            summary: "Rotate the refresh token and mint a new access token",
            access: Access::Refresh,
            body: body.then_some("RefreshToken"),
            body_required: false,
            success: session("Both tokens renewed"),
            cookies: Cookies::Both,
            errors: refresh_errors,
        },
        Route {
            method: HttpMethod::Post,
            path: "/custom-logout/",
            id: "logout",
            summary: "End this session and clear the cookies",
            access: Access::Logout,
            body: body.then_some("RefreshToken"),
            body_required: false,
            success: (204, None, "Signed out (always, for any credentials)"),
            cookies: Cookies::Cleared,
            errors: vec![CsrfFailed],
        },
        Route {
            method: HttpMethod::Post,
            path: "/logout-all/",
            id: "logoutAll",
            summary: "End every session of the user",
            access: Access::User,
            body: None,
            body_required: false,
            success: (204, None, "Every session ended"),
            cookies: Cookies::Cleared,
            errors: with(authenticated(), vec![store()]),
        },
        Route {
            method: HttpMethod::Post,
            path: "/password-reset/",
            id: "passwordReset",
            summary: "Mail a password-reset code, if the address has an account",
            access: Access::Public,
            body: Some("PasswordResetRequest"),
            body_required: true,
            success: (
                202,
                Some(schema_ref("Detail")),
                "Accepted, whether or not the address has an account",
            ),
            cookies: Cookies::None,
            errors: with(
                json_body(),
                vec![
                    CaptchaFailed,
                    CsrfFailed,
                    limited(),
                    CaptchaUnavailable,
                    store(),
                ],
            ),
        },
        Route {
            method: HttpMethod::Post,
            path: "/password-reset/confirm/",
            id: "passwordResetConfirm",
            summary: "Set a new password with the mailed code; ends every other session",
            access: Access::Public,
            body: Some("PasswordResetConfirm"),
            body_required: true,
            success: session("Password set; a new session"),
            cookies: Cookies::Both,
            errors: with(
                json_body(),
                vec![
                    InvalidCode,
                    CodeExpired,
                    CsrfFailed,
                    TooManyAttempts,
                    limited(),
                    store(),
                    internal(),
                ],
            ),
        },
        Route {
            method: HttpMethod::Post,
            path: "/change-password/",
            id: "changePassword",
            summary: "Change the password; ends every other session",
            access: Access::User,
            body: Some("ChangePassword"),
            body_required: true,
            success: session("Password changed; this session renewed"),
            cookies: Cookies::Both,
            errors: with(
                with(authenticated(), json_body()),
                vec![
                    InvalidPassword("current_password"),
                    limited(),
                    store(),
                    internal(),
                ],
            ),
        },
        Route {
            method: HttpMethod::Post,
            path: "/change-email/",
            id: "changeEmail",
            summary: "Mail a code to a new address (and a notice to the old one)",
            access: Access::User,
            body: Some("ChangeEmail"),
            body_required: true,
            success: (202, Some(schema_ref("Detail")), "A code is on its way"),
            cookies: Cookies::None,
            errors: with(
                with(authenticated(), json_body()),
                vec![
                    InvalidPassword("password"),
                    EmailTaken,
                    limited(),
                    MailUnavailable,
                    store(),
                    internal(),
                ],
            ),
        },
        Route {
            method: HttpMethod::Post,
            path: "/change-email/confirm/",
            id: "changeEmailConfirm",
            summary: "Switch to the new address with the mailed code",
            access: Access::User,
            body: Some("VerificationCode"),
            body_required: true,
            success: (200, Some(fresh("User")), "The account with its new address"),
            cookies: Cookies::Access,
            errors: with(
                with(authenticated(), json_body()),
                vec![
                    InvalidCode,
                    CodeExpired,
                    EmailTaken,
                    TooManyAttempts,
                    limited(),
                    store(),
                    internal(),
                ],
            ),
        },
        Route {
            method: HttpMethod::Get,
            path: "/sessions/",
            id: "listSessions",
            summary: "The user's live sessions, newest first",
            access: Access::User,
            body: None,
            body_required: false,
            success: (200, Some(schema_ref("Sessions")), "The sessions"),
            cookies: Cookies::None,
            errors: with(authenticated(), vec![store()]),
        },
        Route {
            method: HttpMethod::Delete,
            path: "/sessions/{id}/",
            id: "revokeSession",
            summary: "End one of the user's sessions",
            access: Access::User,
            body: None,
            body_required: false,
            success: (
                204,
                None,
                "Ended; ending the current session clears its cookies",
            ),
            cookies: Cookies::Cleared,
            errors: with(authenticated(), vec![NotFound, store()]),
        },
        Route {
            method: HttpMethod::Delete,
            path: "/account/",
            id: "deleteAccount",
            summary: "Delete the account, its codes and its sessions",
            access: Access::User,
            body: Some("DeleteAccount"),
            body_required: true,
            success: (204, None, "Deleted; cookies cleared"),
            cookies: Cookies::Cleared,
            errors: with(
                with(authenticated(), json_body()),
                vec![InvalidPassword("password"), limited(), store(), internal()],
            ),
        },
    ]
}

fn security(access: Access, tokens_in_body: bool) -> Vec<SecurityRequirement> {
    let req = |name: &str| SecurityRequirement::new(name, Vec::<String>::new());
    match access {
        Access::Public => Vec::new(),
        Access::User => vec![req(BEARER), req(ACCESS_COOKIE), req(REFRESH_COOKIE)],
        Access::Refresh if tokens_in_body => {
            vec![req(REFRESH_COOKIE), SecurityRequirement::default()]
        }
        Access::Refresh => vec![req(REFRESH_COOKIE)],
        Access::Logout => vec![SecurityRequirement::default(), req(REFRESH_COOKIE)],
    }
}

fn set_cookie(cookies: Cookies, settings: &Settings) -> Option<String> {
    let access = settings.access_cookie().cookie_name();
    let refresh = settings.refresh_cookie().cookie_name();
    match cookies {
        Cookies::None => None,
        Cookies::Both => Some(format!("Sets the `{access}` and `{refresh}` cookies.")),
        Cookies::Access => Some(format!("Sets the `{access}` cookie.")),
        Cookies::Cleared => Some(format!(
            "Clears the `{access}` and `{refresh}` cookies (`Max-Age=0`)."
        )),
    }
}

/// The error answers of one status: its codes, each with its sentence.
fn error_response(status: u16, errors: &[&AuthError]) -> Response {
    let codes: Vec<&str> = errors.iter().map(|e| e.code()).collect();
    let description = errors
        .iter()
        .map(|e| format!("- `{}`: {}", e.code(), e.summary()))
        .collect::<Vec<_>>()
        .join("\n");
    let schema = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("detail", described("A human sentence."))
        .property("code", string().enum_values(Some(codes.iter().copied())))
        .property("errors", schema_ref("FieldErrors"))
        .required("detail")
        .required("code");
    let mut res = ResponseBuilder::new()
        .description(description)
        .content(JSON, ContentBuilder::new().schema(Some(schema)).build());
    if status == 401 {
        res = res.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(string())
                .description(Some(format!(
                    "`Bearer realm=\"{REALM}\"`, with `error=\"invalid_token\"` when a token came and was bad"
                )))
                .build(),
        );
    }
    if codes.contains(&"rate_limited") {
        res = res.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer))
                .description(Some("Seconds to wait (with `rate_limited`)"))
                .build(),
        );
    }
    res.build()
}

impl AuthError {
    /// The sentence of a code, without the details of one occurrence.
    fn summary(&self) -> String {
        match self {
            AuthError::InvalidRequest { .. } | AuthError::MultipleAuthorization => {
                "The request is invalid: a body that is not a JSON object, a field \
                 (see `errors`), or two `Authorization` headers."
                    .into()
            }
            AuthError::InvalidToken(TokenError::Expired) => "The access token has expired.".into(),
            AuthError::InvalidToken(_) => "The access token is invalid.".into(),
            _ => self.to_string(),
        }
    }
}

fn operation(route: &Route, settings: &Settings) -> utoipa::openapi::path::Operation {
    let tokens_in_body = settings.tokens_in_body();
    let mut op = OperationBuilder::new()
        .operation_id(Some(route.id))
        .summary(Some(route.summary))
        .tag(TAG);
    let security = security(route.access, tokens_in_body);
    if !security.is_empty() {
        op = op.securities(Some(security));
    }
    if let Some(name) = route.body {
        let required = if route.body_required {
            Required::True
        } else {
            Required::False
        };
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(required))
                .content(
                    JSON,
                    ContentBuilder::new().schema(Some(schema_ref(name))).build(),
                )
                .build(),
        ));
    }
    if route.path.contains("{id}") {
        op = op.parameter(
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some("The session id (the access token's `sid`)"))
                .schema(Some(string())),
        );
    }
    let (status, body, description) = &route.success;
    let mut ok = ResponseBuilder::new().description(*description);
    if let Some(schema) = body {
        ok = ok.content(
            JSON,
            ContentBuilder::new().schema(Some(schema.clone())).build(),
        );
    }
    if let Some(cookies) = set_cookie(route.cookies, settings) {
        ok = ok.header(
            "Set-Cookie",
            HeaderBuilder::new()
                .schema(string())
                .description(Some(cookies))
                .build(),
        );
    }
    op = op.response(status.to_string(), ok.build());
    let mut by_status: BTreeMap<u16, Vec<&AuthError>> = BTreeMap::new();
    for e in &route.errors {
        let list = by_status.entry(e.status().as_u16()).or_default();
        if !list.iter().any(|seen| seen.code() == e.code()) {
            list.push(e);
        }
    }
    for (status, errors) in by_status {
        op = op.response(status.to_string(), error_response(status, &errors));
    }
    op.build()
}

fn components(settings: &Settings) -> utoipa::openapi::Components {
    let access_ttl = settings.access_ttl().as_secs();
    let code = || described("The 6-digit code from the mail.").pattern(Some("^\\s*[0-9]{6}\\s*$"));
    let email = || {
        described("An e-mail address, at most 254 characters.")
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .max_length(Some(254))
    };
    let password = || described("A password.");
    let captcha = || described("The captcha response, when a captcha verifier is configured.");
    let token_fields = |refresh: bool| {
        let mut fields = vec![
            (
                "access_token",
                described("The access JWT, for `Authorization: Bearer`."),
                true,
            ),
            ("token_type", string().enum_values(Some(["Bearer"])), true),
            (
                "expires_in",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .description(Some("Seconds the access token lives."))
                    .examples([access_ttl]),
                true,
            ),
        ];
        if refresh {
            fields.push((
                "refresh_token",
                described("The opaque refresh token; rotated on every use."),
                true,
            ));
        }
        object(fields)
    };
    let nullable =
        || ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null]));
    let date_time = || string().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)));
    let session = object([
        (
            "id",
            described("The session id (the access token's `sid`)."),
            true,
        ),
        ("created_at", date_time(), true),
        ("last_used_at", date_time(), true),
        (
            "user_agent",
            nullable().description(Some("The user agent at sign-in.")),
            true,
        ),
        (
            "ip",
            nullable().description(Some("The client address at sign-in.")),
            true,
        ),
        (
            "current",
            ObjectBuilder::new().schema_type(Type::Boolean),
            true,
        ),
    ]);
    let boolean = || ObjectBuilder::new().schema_type(Type::Boolean);
    ComponentsBuilder::new()
        .schema(
            "Error",
            object([
                ("detail", described("A human sentence."), true),
                ("code", described("The machine code; see each route's answers."), true),
            ])
            .property("errors", schema_ref("FieldErrors")),
        )
        .schema(
            "FieldErrors",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some("Messages per field."))
                .additional_properties(Some(ArrayBuilder::new().items(string()))),
        )
        .schema(
            "Detail",
            object([("detail", described("A human sentence."), true)]),
        )
        .schema(
            "User",
            object([
                ("id", string(), true),
                ("email", email(), true),
                ("name", string(), true),
                ("email_verified", boolean(), true),
            ]),
        )
        .schema(
            "EmailVerified",
            object([
                ("detail", described("A human sentence."), true),
                ("email_verified", boolean().enum_values(Some([true])), true),
            ]),
        )
        .schema("AccessToken", token_fields(false))
        .schema("TokenPair", token_fields(true))
        .schema("Session", session)
        .schema(
            "Sessions",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("sessions", ArrayBuilder::new().items(schema_ref("Session")))
                .required("sessions"),
        )
        .schema(
            "SignupRequest",
            object([
                ("email", email(), true),
                (
                    "password",
                    described("The password; length limits are configurable (by default 12 to 128 characters), very common passwords are refused."),
                    true,
                ),
                ("name", string().min_length(Some(1)).max_length(Some(150)), true),
                ("captcha", captcha(), false),
            ]),
        )
        .schema(
            "SigninRequest",
            object([
                ("login", email().description(Some("The e-mail address.")), true),
                ("password", password(), true),
                ("captcha", captcha(), false),
            ]),
        )
        .schema(
            "VerificationCode",
            object([("verification_code", code(), true)]),
        )
        .schema(
            "PasswordResetRequest",
            object([("email", email(), true), ("captcha", captcha(), false)]),
        )
        .schema(
            "PasswordResetConfirm",
            object([
                ("email", email(), true),
                ("code", code(), true),
                ("new_password", password(), true),
            ]),
        )
        .schema(
            "ChangePassword",
            object([
                ("current_password", password(), true),
                ("new_password", password(), true),
            ]),
        )
        .schema(
            "ChangeEmail",
            object([("new_email", email(), true), ("password", password(), true)]),
        )
        .schema(
            "DeleteAccount",
            object([("password", password(), true)]),
        )
        .schema(
            "RefreshToken",
            object([(
                "refresh_token",
                described("The refresh token, when no refresh cookie comes."),
                false,
            )]),
        )
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The access token in `Authorization: Bearer`."))
                    .build(),
            ),
        )
        .security_scheme(
            ACCESS_COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                settings.access_cookie().cookie_name(),
                "The access token as a cookie; unsafe methods from other sites are refused (`403 csrf_failed`).",
            ))),
        )
        .security_scheme(
            REFRESH_COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                settings.refresh_cookie().cookie_name(),
                "The refresh token as a cookie; where an access token is missing or expired, the layer rotates it and sets both cookies.",
            ))),
        )
        .build()
}

fn document(settings: &Settings, prefix: &str) -> OpenApi {
    let prefix = prefix.trim_end_matches('/');
    let slash = if prefix.is_empty() || prefix.starts_with('/') {
        ""
    } else {
        "/"
    };
    let mut paths = PathsBuilder::new();
    let mut items: BTreeMap<String, PathItem> = BTreeMap::new();
    for route in routes(settings) {
        let op = operation(&route, settings);
        let path = format!("{slash}{prefix}{}", route.path);
        match items.get_mut(&path) {
            Some(item) => item.merge_operations(PathItem::new(route.method, op)),
            None => {
                items.insert(path, PathItem::new(route.method, op));
            }
        }
    }
    for (path, item) in items {
        paths = paths.path(path, item);
    }
    let info = InfoBuilder::new()
        .title("axum-authkit auth API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "E-mail and password authentication: sign-up, sign-in, verification, refresh, \
             logout, password reset and change, e-mail change, sessions, account deletion. \
             Every error is JSON `{\"detail\", \"code\"}` (plus `errors` per field). Each path \
             also answers without its trailing slash; an unknown path under the prefix is \
             `404 not_found`, another method `405 method_not_allowed`.",
        ))
        .license(Some(
            LicenseBuilder::new()
                .name("MIT OR Apache-2.0")
                .identifier(Some("MIT OR Apache-2.0"))
                .build(),
        ))
        .build();
    OpenApiBuilder::new()
        .info(info)
        .paths(paths.build())
        .components(Some(components(settings)))
        .tags(Some([TagBuilder::new()
            .name(TAG)
            .description(Some("The auth routes of axum-authkit"))
            .build()]))
        .build()
}
