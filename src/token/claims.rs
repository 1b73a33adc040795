//! [`AccessClaims`]: what an access token says, plus the app's own claims.
//!
//! The standard part follows the [API reference](crate::api): `sub` (user id), `email`,
//! `email_verified`, `sid` (the sign-in, i.e. refresh family), `jti`, `iat`,
//! `exp`, `iss` and `aud`. An app adds claims through the `E` slot, which is
//! flattened into the same JSON object:
//!
//! ```
//! use axum_authkit::AccessClaims;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
//! struct Roles {
//!     roles: Vec<String>,
//! }
//!
//! let json = r#"{"sub":"u1","email":"a@b.c","email_verified":true,"sid":"s","jti":"j",
//!     "iat":1,"exp":2,"iss":"i","aud":"a","roles":["admin"]}"#;
//! let claims: AccessClaims<Roles> = serde_json::from_str(json).unwrap();
//! assert_eq!(claims.extra.roles, ["admin"]);
//! ```

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// Bounds for the app's own claims type: serde both ways, cheap to share,
/// and a `Default` for tokens minted before the app had claims.
pub trait ExtraClaims:
    Serialize + DeserializeOwned + Clone + Default + Send + Sync + 'static
{
}

impl<T: Serialize + DeserializeOwned + Clone + Default + Send + Sync + 'static> ExtraClaims for T {}

/// The claims of an access token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims<E = ()> {
    /// The user's id.
    pub sub: String,
    /// The user's e-mail address.
    pub email: String,
    /// Whether the address was verified when the token was minted.
    pub email_verified: bool,
    /// The sign-in (refresh family) this token belongs to.
    pub sid: String,
    /// Unique token id.
    pub jti: String,
    /// Issued at (seconds since the epoch).
    #[serde(deserialize_with = "numeric_date")]
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    #[serde(deserialize_with = "numeric_date")]
    pub exp: i64,
    /// Not valid before (seconds since the epoch), when present.
    #[serde(
        default,
        deserialize_with = "opt_numeric_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub nbf: Option<i64>,
    /// Issuer.
    pub iss: String,
    /// Audience: tokens minted here carry one string; an array is accepted
    /// when it contains the expected audience.
    pub aud: Audience,
    /// The app's own claims.
    #[serde(flatten)]
    pub extra: E,
}

/// RFC 7519 NumericDate: a JSON number (integer or not), never a string.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a NumericDate (JSON number)")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom("NumericDate out of range"))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            if v.is_finite() && v.abs() < 1e15 {
                Ok(v.floor() as i64)
            } else {
                Err(E::custom("NumericDate out of range"))
            }
        }
    }
    d.deserialize_any(V)
}

fn opt_numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    numeric_date(d).map(Some)
}

/// The `aud` claim: one audience (what this crate mints) or several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience string.
    One(String),
    /// An array of audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `audience` is named.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(v) => v.iter().any(|a| a == audience),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Audience;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Audience, E> {
                Ok(Audience::One(v.to_owned()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Audience, A::Error> {
                let mut v = Vec::new();
                while let Some(a) = seq.next_element::<String>()? {
                    v.push(a);
                }
                Ok(Audience::Many(v))
            }
        }
        d.deserialize_any(V)
    }
}
