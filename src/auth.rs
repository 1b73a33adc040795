//! [`Auth`]: the shared handle that the layer, the extractors and the router
//! all work through.
//!
//! It is cheap to clone (one `Arc`). Besides building layers and the router,
//! it offers the operations an app may want to call itself: verify a token,
//! sign a user in, refresh, revoke.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use crate::cache::TokenCache;
use crate::captcha::CaptchaVerifier;
use crate::claims::{AccessClaims, Audience, ExtraClaims};
use crate::config::{AuthBuilder, AuthConfig};
use crate::csrf::CsrfGuard;
use crate::error::AuthError;
use crate::layer::AuthLayer;
use crate::mail::Mailer;
use crate::password::Passwords;
use crate::rate_limit::RateLimiter;
use crate::refresh::{RefreshError, RefreshTokens};
use crate::store::{Family, RefreshStore, User, UserStore};
use crate::time::{now_millis, now_secs};
use crate::verification::Codes;
use crate::verify::{TokenError, Verifier};

pub(crate) type ClaimsFn<E> = Arc<dyn Fn(&User) -> E + Send + Sync>;

pub(crate) struct AuthInner<E> {
    pub(crate) config: AuthConfig,
    pub(crate) verifier: Verifier,
    pub(crate) cache: TokenCache<E>,
    pub(crate) refresh: RefreshTokens,
    pub(crate) codes: Codes,
    pub(crate) families: Arc<dyn RefreshStore>,
    pub(crate) users: Arc<dyn UserStore>,
    pub(crate) csrf: CsrfGuard,
    pub(crate) passwords: Passwords,
    pub(crate) limiter: Arc<dyn RateLimiter>,
    pub(crate) captcha: Arc<dyn CaptchaVerifier>,
    pub(crate) mailer: Arc<dyn Mailer>,
    pub(crate) extra: ClaimsFn<E>,
}

/// Authentication for one app: keys, stores, settings. See the crate docs.
pub struct Auth<E = ()> {
    pub(crate) inner: Arc<AuthInner<E>>,
}

impl<E> Clone for Auth<E> {
    fn clone(&self) -> Self {
        Auth {
            inner: self.inner.clone(),
        }
    }
}

impl<E> std::fmt::Debug for Auth<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("issuer", &self.inner.config.issuer)
            .field("kid", &self.inner.verifier.keys().active_kid())
            .finish_non_exhaustive()
    }
}

/// A signed-in client's pair of tokens.
#[derive(Clone, Debug)]
pub struct Session<E = ()> {
    /// The access JWT (`access_token` cookie or Bearer).
    pub access_token: String,
    /// Its claims.
    pub claims: Arc<AccessClaims<E>>,
    /// The opaque refresh token (`refresh_token` cookie).
    pub refresh_token: String,
    /// The sign-in it belongs to.
    pub family: Family,
}

impl Auth<()> {
    /// A builder with default settings and no app claims.
    pub fn builder() -> AuthBuilder<()> {
        AuthBuilder::default()
    }
}

impl<E: ExtraClaims> Auth<E> {
    /// A builder for an `Auth` whose tokens carry the app's claims `E`.
    pub fn builder_with_claims() -> AuthBuilder<E> {
        AuthBuilder::default()
    }

    pub(crate) fn from_inner(inner: AuthInner<E>) -> Self {
        Auth {
            inner: Arc::new(inner),
        }
    }

    /// The settings.
    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// The token verifier (keys, issuer, audience).
    pub fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }

    /// The user store.
    pub fn users(&self) -> &dyn UserStore {
        &*self.inner.users
    }

    /// The refresh-family store.
    pub fn families(&self) -> &dyn RefreshStore {
        &*self.inner.families
    }

    /// The layer, in optional mode: requests pass, the extractors decide.
    /// Call [`AuthLayer::required`] to answer `401` in the layer instead.
    pub fn layer(&self) -> AuthLayer<E> {
        AuthLayer::new(self.clone())
    }

    /// Verifies an access token (through the cache), as the layer does.
    pub fn verify(&self, token: &str) -> Result<Arc<AccessClaims<E>>, TokenError> {
        self.verify_at(token.as_bytes(), now_secs())
    }

    #[inline]
    /// Takes bytes: a cache hit needs no UTF-8 check, the bytes are the key.
    pub(crate) fn verify_at(
        &self,
        token: &[u8],
        now: i64,
    ) -> Result<Arc<AccessClaims<E>>, TokenError> {
        let inner = &*self.inner;
        if let Some(claims) = inner.cache.get(token) {
            match inner.verifier.check_times(claims.exp, claims.nbf, now) {
                Ok(()) => return Ok(claims),
                Err(_) => inner.cache.remove(token),
            }
        }
        let token = std::str::from_utf8(token).map_err(|_| TokenError::Malformed)?;
        let claims = Arc::new(inner.verifier.verify::<E>(token, now)?);
        if !inner.cache.insert(token, claims.clone()) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// Mints an access token for `user` in sign-in `sid`.
    pub fn issue_access_token(
        &self,
        user: &User,
        sid: &str,
    ) -> Result<(String, Arc<AccessClaims<E>>), AuthError> {
        let now = now_secs();
        let ttl = i64::try_from(self.inner.config.access_ttl.as_secs()).unwrap_or(i64::MAX / 4);
        let claims = AccessClaims {
            sub: user.id.clone(),
            email: user.email.clone(),
            email_verified: user.email_verified,
            sid: sid.to_owned(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            iat: now,
            exp: now.saturating_add(ttl),
            nbf: None,
            iss: self.inner.verifier.issuer().to_owned(),
            aud: Audience::One(self.inner.verifier.audience().to_owned()),
            extra: (self.inner.extra)(user),
        };
        let token = self
            .inner
            .verifier
            .sign(&claims)
            .map_err(|_| AuthError::Internal("token signing failed"))?;
        Ok((token, Arc::new(claims)))
    }

    /// Signs `user` in: starts a refresh family and mints an access token.
    pub async fn sign_in(&self, user: &User) -> Result<Session<E>, AuthError> {
        let issued = self
            .inner
            .refresh
            .start(&*self.inner.families, &user.id, now_millis())
            .await?;
        let (access_token, claims) = self.issue_access_token(user, &issued.family.id)?;
        tracing::info!(user = %user.id, sid = %issued.family.id, "signed in");
        Ok(Session {
            access_token,
            claims,
            refresh_token: issued.token,
            family: issued.family,
        })
    }

    /// Rotates a refresh token and mints a fresh access token. The owner is
    /// checked first: a token whose user is gone or disabled is refused (and
    /// its family revoked), and a failed check rotates nothing.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session<E>, AuthError> {
        let inner = &*self.inner;
        let presented = inner
            .refresh
            .present(&*inner.families, refresh_token)
            .await
            .map_err(|e| self.refresh_error(e))?;
        let family = presented.family();
        let user = match inner.users.user_by_id(&family.user_id).await? {
            Some(user) if !user.disabled => user,
            _ => {
                if inner.families.revoke_family(&family.id).await? {
                    self.forget_sessions(std::slice::from_ref(&family.id));
                }
                return Err(AuthError::InvalidRefreshToken);
            }
        };
        let issued = inner
            .refresh
            .rotate_presented(&*inner.families, presented, now_millis())
            .await
            .map_err(|e| self.refresh_error(e))?;
        let (access_token, claims) = self.issue_access_token(&user, &issued.family.id)?;
        Ok(Session {
            access_token,
            claims,
            refresh_token: issued.token,
            family: issued.family,
        })
    }

    fn refresh_error(&self, err: RefreshError) -> AuthError {
        match err {
            RefreshError::Reused { family_id, .. } => {
                self.forget_sessions(&[family_id]);
                AuthError::InvalidRefreshToken
            }
            RefreshError::Store(e) => e.into(),
            _ => AuthError::InvalidRefreshToken,
        }
    }

    /// Ends the sign-in of `refresh_token`, if it is genuine. Returns the
    /// revoked family.
    pub async fn revoke(&self, refresh_token: &str) -> Result<Option<Family>, AuthError> {
        let family = self
            .inner
            .refresh
            .revoke(&*self.inner.families, refresh_token)
            .await?;
        if let Some(family) = &family {
            self.forget_sessions(std::slice::from_ref(&family.id));
            tracing::info!(user = %family.user_id, sid = %family.id, "signed out");
        }
        Ok(family)
    }

    /// Ends the sign-in (refresh family) `sid`, for example when its access
    /// token asks to log out.
    pub async fn revoke_session(&self, sid: &str) -> Result<bool, AuthError> {
        let revoked = self.inner.families.revoke_family(sid).await?;
        self.forget_sessions(&[sid.to_owned()]);
        Ok(revoked)
    }

    /// Ends every sign-in of `user_id`. Returns how many there were.
    pub async fn revoke_user(&self, user_id: &str) -> Result<usize, AuthError> {
        let ids = self.inner.families.revoke_user_families(user_id).await?;
        self.forget_sessions(&ids);
        tracing::info!(user = %user_id, sessions = ids.len(), "signed out everywhere");
        Ok(ids.len())
    }

    /// Makes this process refuse the access tokens of these sign-ins now.
    fn forget_sessions(&self, sids: &[String]) {
        let now = now_secs();
        let until = now
            .saturating_add(i64::try_from(self.inner.config.access_ttl.as_secs()).unwrap_or(0))
            .saturating_add(self.inner.verifier.leeway());
        for sid in sids {
            self.inner.cache.revoke(sid, until, now);
        }
    }

    /// `Set-Cookie` values that store a session's two tokens.
    pub fn session_cookies(&self, session: &Session<E>) -> [HeaderValue; 2] {
        let config = &self.inner.config;
        let refresh_left = session
            .family
            .expires_at
            .saturating_sub(now_millis())
            .max(0);
        [
            config
                .access_cookie
                .set(&session.access_token, config.access_ttl),
            config.refresh_cookie.set(
                &session.refresh_token,
                Duration::from_millis(u64::try_from(refresh_left).unwrap_or(0)),
            ),
        ]
    }

    /// `Set-Cookie` values that clear both cookies.
    pub fn clear_cookies(&self) -> [HeaderValue; 2] {
        let config = &self.inner.config;
        [config.access_cookie.clear(), config.refresh_cookie.clear()]
    }

    /// Deletes expired refresh families and stale cache entries. The router
    /// does not call it; run it periodically (see [`Auth::spawn_purger`]).
    pub async fn purge_expired(&self) -> Result<u64, AuthError> {
        self.inner
            .cache
            .purge(now_secs(), self.inner.verifier.leeway());
        Ok(self.inner.families.purge_expired(now_millis()).await?)
    }

    /// Runs [`Auth::purge_expired`] every `period` on the current runtime.
    pub fn spawn_purger(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let auth = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                match auth.purge_expired().await {
                    Ok(n) if n > 0 => tracing::debug!(purged = n, "expired sign-ins purged"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging expired sign-ins failed"),
                }
            }
        })
    }

    /// Number of tokens in the verified-token cache.
    pub fn cached_tokens(&self) -> usize {
        self.inner.cache.len()
    }

    /// The public keys as a JWKS document.
    pub fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        self.inner.verifier.keys().jwks()
    }
}
