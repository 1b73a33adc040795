//! Sessions: one per sign-in, named by the access token's `sid`.
//!
//! A session is stored as a chain of refresh tokens (the storage word for
//! that chain is *family*): [`refresh`] mints and rotates them and detects
//! reuse; [`revocations`] is the deny list that makes an ended session's
//! access tokens fail before they expire.

pub(crate) mod refresh;
pub(crate) mod revocations;
