//! Sessions: start, refresh, sign out, list, revoke — and the one function
//! every ending goes through.

use super::{Auth, Tokens};
use crate::client::Client;
use crate::error::AuthError;
use crate::session::refresh::{Issued, RefreshError};
use crate::store::User;
use crate::time::{now_millis, now_secs};
use crate::token::claims::{AccessClaims, ExtraClaims};

/// One of a user's live sessions, as the session list shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SessionInfo {
    /// The session id (the access token's `sid`).
    pub id: String,
    /// The sign-in, RFC 3339.
    pub created_at: String,
    /// The last refresh (or the sign-in), RFC 3339.
    pub last_used_at: String,
    /// The client's user agent at sign-in.
    pub user_agent: Option<String>,
    /// The client address at sign-in.
    pub ip: Option<String>,
    /// Whether the request that asked came with this session's token.
    pub current: bool,
}

fn rfc3339(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl<E: ExtraClaims> Auth<E> {
    /// Starts a session for `user` without checking a password: for the
    /// app's own code after it has authenticated the user some other way.
    /// The auth routes call it after a sign-up, a sign-in or a reset.
    pub async fn start_session(
        &self,
        user: &User,
        client: &Client,
    ) -> Result<Tokens<E>, AuthError> {
        let issued = self
            .inner
            .refresh
            .start(&*self.inner.sessions, &user.id, client, now_millis())
            .await?;
        let access = self.access_token(user, &issued.session.id).await?;
        tracing::info!(user = %user.id, sid = %issued.session.id, "session started");
        Ok(Tokens {
            access,
            refresh_token: issued.token,
            session: issued.session,
        })
    }

    /// Rotates a refresh token and mints a fresh access token. The owner is
    /// checked first: a token whose user is gone or disabled is refused (and
    /// its session ended), and a failed check rotates nothing. A
    /// rotated-away token presented after the grace window ends its session
    /// (`401 invalid_refresh_token` either way).
    #[tracing::instrument(name = "auth.refresh", skip_all, fields(user = tracing::field::Empty, sid = tracing::field::Empty))]
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens<E>, AuthError> {
        let refreshed = self.rotate_refresh_token(refresh_token).await;
        crate::counters::refresh(match &refreshed {
            Ok(_) => "success",
            Err(AuthError::InvalidRefreshToken) => "invalid",
            Err(_) => "error",
        });
        refreshed
    }

    async fn rotate_refresh_token(&self, refresh_token: &str) -> Result<Tokens<E>, AuthError> {
        let inner = &*self.inner;
        let presented = inner.refresh.present(&*inner.sessions, refresh_token).await;
        let presented = match presented {
            Ok(presented) => presented,
            Err(e) => return Err(self.refresh_error(e).await),
        };
        let session = presented.session();
        let span = tracing::Span::current();
        span.record("user", tracing::field::display(&session.user_id));
        span.record("sid", tracing::field::display(&session.id));
        let user = match inner.users.user_by_id(&session.user_id).await? {
            Some(user) if !user.disabled => user,
            _ => {
                let sid = session.id.clone();
                self.end_session(&sid).await?;
                return Err(AuthError::InvalidRefreshToken);
            }
        };
        let issued = match inner
            .refresh
            .rotate(&*inner.sessions, presented, now_millis())
            .await
        {
            Ok(issued) => issued,
            Err(e) => return Err(self.refresh_error(e).await),
        };
        tracing::debug!("session refreshed");
        self.tokens(&user, issued).await
    }

    async fn tokens(&self, user: &User, issued: Issued) -> Result<Tokens<E>, AuthError> {
        let access = self.access_token(user, &issued.session.id).await?;
        Ok(Tokens {
            access,
            refresh_token: issued.token,
            session: issued.session,
        })
    }

    async fn refresh_error(&self, err: RefreshError) -> AuthError {
        match err {
            RefreshError::Reused { session_id } => {
                crate::counters::refresh("reuse");
                // The store already refuses the family; a failed write of
                // the shared deny list is the one error left to report.
                match self.forget_sessions(&[session_id]).await {
                    Ok(()) => AuthError::InvalidRefreshToken,
                    Err(e) => e,
                }
            }
            RefreshError::Store(e) => e.into(),
            RefreshError::Invalid => AuthError::InvalidRefreshToken,
        }
    }

    /// Ends the session of `refresh_token` if it is genuine (any recent
    /// generation), or else the session a valid `access_token` names.
    /// Returns whether a session ended. Garbage changes nothing.
    #[tracing::instrument(name = "auth.sign_out", skip_all)]
    pub async fn sign_out(
        &self,
        refresh_token: Option<&str>,
        access_token: Option<&[u8]>,
    ) -> Result<bool, AuthError> {
        if let Some(token) = refresh_token
            && let Some(session) = self
                .inner
                .refresh
                .owner(&*self.inner.sessions, token)
                .await?
        {
            self.end_session(&session.id).await?;
            tracing::info!(user = %session.user_id, sid = %session.id, "signed out");
            return Ok(true);
        }
        if let Some(claims) = access_token.and_then(|t| self.verify_at(t, now_secs()).ok()) {
            self.end_session(&claims.sid).await?;
            tracing::info!(user = %claims.sub, sid = %claims.sid, "signed out");
            return Ok(true);
        }
        Ok(false)
    }

    /// Ends every session of `user_id`. Returns how many there were.
    #[tracing::instrument(name = "auth.sign_out_everywhere", skip_all, fields(user = %user_id))]
    pub async fn sign_out_everywhere(&self, user_id: &str) -> Result<usize, AuthError> {
        self.end_user_sessions(user_id, None).await
    }

    /// The caller's live sessions, newest first, the caller's own marked
    /// `current`.
    pub async fn sessions(&self, caller: &AccessClaims<E>) -> Result<Vec<SessionInfo>, AuthError> {
        let sessions = self
            .inner
            .sessions
            .user_sessions(&caller.sub, now_millis())
            .await?;
        Ok(sessions
            .into_iter()
            .map(|s| SessionInfo {
                current: s.id == caller.sid,
                created_at: rfc3339(s.created_at),
                last_used_at: rfc3339(s.last_used_at),
                id: s.id,
                user_agent: s.user_agent,
                ip: s.ip,
            })
            .collect())
    }

    /// Ends one of the caller's own live sessions. Another user's session,
    /// or one that is not live, is `404 not_found`.
    #[tracing::instrument(name = "auth.revoke_session", skip_all, fields(user = %caller.sub, sid = %caller.sid))]
    pub async fn revoke_session(
        &self,
        caller: &AccessClaims<E>,
        sid: &str,
    ) -> Result<(), AuthError> {
        match self.inner.sessions.session(sid).await? {
            Some(s) if s.user_id == caller.sub && s.is_live(now_millis()) => {
                self.end_session(sid).await?;
                tracing::info!(user = %caller.sub, sid = ?sid, "session revoked");
                Ok(())
            }
            _ => Err(AuthError::NotFound),
        }
    }

    /// Ends one session: the store refuses its refresh tokens, and its access
    /// tokens are refused at once.
    pub(crate) async fn end_session(&self, sid: &str) -> Result<(), AuthError> {
        self.inner.sessions.revoke_session(sid).await?;
        self.forget_sessions(&[sid.to_owned()]).await
    }

    /// Ends every session of a user but `except`.
    pub(crate) async fn end_user_sessions(
        &self,
        user_id: &str,
        except: Option<&str>,
    ) -> Result<usize, AuthError> {
        let ids = self
            .inner
            .sessions
            .revoke_user_sessions(user_id, except)
            .await?;
        self.forget_sessions(&ids).await?;
        tracing::info!(user = %user_id, sessions = ids.len(), "sessions ended");
        Ok(ids.len())
    }

    /// The one path of every revocation (logout, logout-all, reset, password
    /// change, session revoke, deletion, disabling, reuse): deny the
    /// sessions' access tokens until their last possible `exp`, then drop
    /// them from the cache (in that order; see `verify_at`), then write the
    /// shared deny list, which every other instance applies (`auth/sync.rs`)
    /// and loads at start. Returns after the shared write, so the caller
    /// answers only once other instances can learn of it; if that write
    /// fails the error is returned (this instance refuses the tokens
    /// anyway).
    async fn forget_sessions(&self, sids: &[String]) -> Result<(), AuthError> {
        if sids.is_empty() {
            return Ok(());
        }
        crate::counters::revocations(sids.len());
        let now = now_secs();
        let until = now
            .saturating_add(i64::try_from(self.inner.settings.access_ttl.as_secs()).unwrap_or(0))
            .saturating_add(self.inner.verifier.leeway());
        for sid in sids {
            self.inner.revocations.add(sid, until, now);
            self.inner.cache.forget_session(sid);
        }
        // Through the last millisecond of second `until`.
        let until_ms = until.saturating_mul(1000).saturating_add(999);
        if let Err(e) = self.inner.sessions.deny(sids, until_ms).await {
            tracing::error!(sessions = sids.len(), error = %e, "writing the shared deny list failed");
            return Err(e.into());
        }
        Ok(())
    }

    /// Gives the caller's session a new refresh token (the old one stops
    /// working) and a fresh access token, after its credentials changed.
    pub(super) async fn renew_session(
        &self,
        user: &User,
        caller: &AccessClaims<E>,
    ) -> Result<Tokens<E>, AuthError> {
        let issued = self
            .inner
            .refresh
            .reissue(&*self.inner.sessions, &caller.sid, now_millis())
            .await;
        match issued {
            Ok(issued) => self.tokens(user, issued).await,
            Err(e) => Err(self.refresh_error(e).await),
        }
    }
}
