//! The cross-site rule for cookie-authenticated requests.
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
//!   host nor an allowed origin is refused; no `Origin` at all passes (not a
//!   browser request);
//! - `GET`, `HEAD` and `OPTIONS` always pass.
//!
//! Bearer-authenticated requests are never checked: a browser does not add
//! an `Authorization` header on its own. The sign-in and sign-up routes apply
//! the rule to every request, against login CSRF.
//!
//! tower-http exposes the rule only as a middleware, so [`CsrfGuard`] runs
//! that middleware around a probe service that hands the request back.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use futures_util::FutureExt;
use http::{Request, Response, StatusCode};
use tower_http::csrf::{ConfigError, CsrfLayer};
use tower_layer::Layer;
use tower_service::Service;

/// The configured cross-site rule.
#[derive(Clone, Debug)]
pub struct CsrfGuard {
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

impl CsrfGuard {
    /// A guard that also trusts the given origins (`https://app.example.com`).
    pub fn new<I, S>(allowed_origins: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut layer = CsrfLayer::new();
        for origin in allowed_origins {
            layer = layer.add_trusted_origin(origin)?;
        }
        Ok(CsrfGuard { layer })
    }

    /// Passes `req` back when it may proceed; `None` when it is refused.
    pub fn check<B>(&self, req: Request<B>) -> Option<Request<B>> {
        let mut csrf = self.layer.layer(Probe);
        // The probe answers at once, so the future is ready on first poll.
        let res = csrf.call(req).now_or_never()?.ok()?;
        if res.status() == StatusCode::FORBIDDEN {
            return None;
        }
        res.into_body()
    }
}
