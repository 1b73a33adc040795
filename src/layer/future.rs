//! [`ResponseFuture`] of [`AuthService`](super::AuthService).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum_core::body::Body;
use axum_core::response::Response;
use futures_util::future::BoxFuture;
use pin_project_lite::pin_project;

pin_project! {
    /// Response future of [`AuthService`](super::AuthService).
    pub struct ResponseFuture<F, Err> {
        #[pin]
        kind: Kind<F, Err>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, Err> {
        // The common case: authenticated (or not) without I/O.
        Inner { #[pin] future: F },
        // The automatic refresh: store I/O, then the inner service.
        Boxed { future: BoxFuture<'static, Result<Response, Err>> },
        // Answered by the layer itself.
        Error { response: Option<Response> },
    }
}

impl<F, Err> ResponseFuture<F, Err> {
    pub(super) fn inner(future: F) -> Self {
        ResponseFuture {
            kind: Kind::Inner { future },
        }
    }

    pub(super) fn boxed(
        future: impl Future<Output = Result<Response, Err>> + Send + 'static,
    ) -> Self {
        ResponseFuture {
            kind: Kind::Boxed {
                future: Box::pin(future),
            },
        }
    }

    pub(super) fn error(response: Response) -> Self {
        ResponseFuture {
            kind: Kind::Error {
                response: Some(response),
            },
        }
    }
}

impl<F, B, Err> Future for ResponseFuture<F, Err>
where
    F: Future<Output = Result<http::Response<B>, Err>>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum_core::BoxError>,
{
    type Output = Result<Response, Err>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => {
                Poll::Ready(ready!(future.poll(cx)).map(|r| r.map(Body::new)))
            }
            KindProj::Boxed { future } => future.as_mut().poll(cx),
            KindProj::Error { response } => {
                // Polling after completion is a caller bug; answer 500 rather than panic.
                Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                    use axum_core::response::IntoResponse;
                    crate::error::AuthError::Internal("response future polled after completion")
                        .into_response()
                })))
            }
        }
    }
}
