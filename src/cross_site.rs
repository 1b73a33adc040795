//! The cross-site rule for requests a cookie authenticates.
//!
//! A browser attaches cookies to requests that other sites trigger, so a
//! request authenticated by a cookie with an unsafe method must come from
//! this site. The decision is tower-http's [`csrf`](tower_http::csrf) module,
//! the Fetch-Metadata scheme of Go's `CrossOriginProtection`:
//!
//! - `Sec-Fetch-Site: same-origin` or `none` passes; any other value
//!   (`cross-site`, and also `same-site`, so a sibling subdomain cannot act
//!   for the user) is refused unless `Origin` is an allowed origin;
//! - without `Sec-Fetch-Site`, an `Origin` that is neither the request's own
//!   host nor an allowed origin is refused (`Origin: null` included); no
//!   `Origin` at all passes (not a browser request);
//! - `GET`, `HEAD` and `OPTIONS` always pass.
//!
//! Bearer-authenticated requests are never checked: a browser does not add
//! an `Authorization` header on its own. The sign-in and sign-up routes apply
//! the rule to every request, against login CSRF; the logout and refresh
//! routes whenever a cookie comes.
//!
//! A refusal is logged at `WARN` with the (escaped) `Origin` and
//! `Sec-Fetch-Site`, and says which setting allows an origin: wiring a
//! browser app on another origin should never fail without a clue.
//!
//! tower-http exposes the rule only as a middleware, so [`CrossSite`] runs
//! that middleware around a probe service that hands the request back.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use futures_util::FutureExt;
use http::header::ORIGIN;
use http::{Method, Request, Response, StatusCode};
use tower_http::csrf::CsrfLayer;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{AuthError, ConfigError};

/// The configured cross-site rule.
#[derive(Clone, Debug)]
pub(crate) struct CrossSite {
    layer: CsrfLayer,
}

/// The inner service of the check: returns the request it was given.
#[derive(Clone, Copy, Debug)]
struct Probe;

impl<B> Service<Request<B>> for Probe {
    type Response = Response<Option<Request<B>>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(Response::new(Some(req))))
    }
}

/// Whether `method` changes nothing, so the rule never applies.
pub(crate) fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl CrossSite {
    /// A rule that also trusts the given origins (`https://app.example.com`).
    pub(crate) fn new(allowed_origins: &[String]) -> Result<Self, ConfigError> {
        let mut layer = CsrfLayer::new();
        for origin in allowed_origins {
            layer = layer
                .add_trusted_origin(origin)
                .map_err(|e| ConfigError::Origin {
                    origin: origin.clone(),
                    reason: e.to_string(),
                })?;
        }
        Ok(CrossSite { layer })
    }

    /// Passes `req` back when it may proceed; `403 csrf_failed` (logged at
    /// `WARN`) when it comes from another site.
    pub(crate) fn check<B>(&self, req: Request<B>) -> Result<Request<B>, AuthError> {
        if is_safe(req.method()) {
            return Ok(req);
        }
        let origin = req.headers().get(ORIGIN).cloned();
        let fetch_site = req.headers().get("sec-fetch-site").cloned();
        let path = req.uri().path().to_owned();
        let mut csrf = self.layer.layer(Probe);
        // The probe answers at once, so the future is ready on first poll.
        let passed = csrf
            .call(req)
            .now_or_never()
            .and_then(Result::ok)
            .filter(|res| res.status() != StatusCode::FORBIDDEN)
            .and_then(Response::into_body);
        passed.ok_or_else(|| {
            tracing::warn!(
                origin = ?origin,
                sec_fetch_site = ?fetch_site,
                path = ?path,
                "cross-site request refused (403 csrf_failed); to let a browser app on another \
                 origin make cookie-authenticated requests, add its origin with \
                 AuthBuilder::with_allowed_origins"
            );
            AuthError::CsrfFailed
        })
    }
}
