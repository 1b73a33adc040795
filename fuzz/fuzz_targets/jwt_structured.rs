//! Near-valid HS256 access tokens, built from structure: a header and claims
//! written as JSON text field by field (so duplicate keys, escapes, odd
//! number spellings and wrong types are possible), then encoded with
//! mutations (padding, the standard alphabet, extra segments) and signed
//! with the right key, a wrong key or not at all. Tokens signed with the
//! right key reach the claim checks.
//!
//! A small model predicts the verifier's answer for every input it
//! understands (the checks' order included) and the target asserts it;
//! inputs it does not model (duplicate keys, re-encoded segments) are only
//! checked for no panic and the round-trip of claims that verified.
#![no_main]

use std::fmt::Write;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use axum_authkit::fuzzing;
use axum_authkit::{AccessClaims, Audience, Auth, TokenError};
use axum_authkit_fuzz::{AUDIENCE, ISSUER, LEEWAY, MAX_TOKEN_BYTES, NOW, SECRET, WRONG_SECRET};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use sha2::Sha256;

/// The app's claims: whatever else the payload holds.
type Extra = Map<String, Value>;

fn auth() -> &'static Auth<Extra> {
    static AUTH: OnceLock<Auth<Extra>> = OnceLock::new();
    AUTH.get_or_init(axum_authkit_fuzz::auth::<Extra>)
}

#[derive(Arbitrary, Debug)]
enum Alg {
    Hs256,
    Lower,
    None,
    EdDsa,
    Rs256,
    Es256,
    Missing,
    Number,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Kid {
    K1,
    Ed,
    Rsa,
    Missing,
    Null,
    Number,
    K1Padded,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Typ {
    AtJwt,
    Application,
    Upper,
    Jwt,
    Missing,
    Null,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Forbidden {
    Crit,
    Jku,
    Jwk,
    X5u,
    X5c,
}

#[derive(Arbitrary, Debug)]
struct HeaderSpec {
    alg: Alg,
    kid: Kid,
    typ: Typ,
    forbidden: Option<(Forbidden, Small)>,
    extra: Vec<(String, Small)>,
    /// Repeats one header field with another value.
    duplicate: Option<(u8, Small)>,
}

/// A small JSON value, written as text.
#[derive(Arbitrary, Debug, Clone)]
enum Small {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Exp(i8, i16),
    Array(Vec<bool>),
    Object(String, bool),
}

impl Small {
    fn write(&self, out: &mut String) {
        match self {
            Small::Null => out.push_str("null"),
            Small::Bool(b) => write!(out, "{b}").unwrap(),
            Small::Int(i) => write!(out, "{i}").unwrap(),
            Small::Uint(u) => write!(out, "{u}").unwrap(),
            // Non-finite floats have no JSON spelling: null instead.
            Small::Float(f) if !f.is_finite() => out.push_str("null"),
            Small::Float(f) => write!(out, "{f:?}").unwrap(),
            Small::Str(s) => json_str(s, out),
            Small::Exp(m, e) => write!(out, "{m}e{e}").unwrap(),
            Small::Array(v) => {
                out.push('[');
                for (i, b) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write!(out, "{b}").unwrap();
                }
                out.push(']');
            }
            Small::Object(k, b) => {
                out.push('{');
                json_str(k, out);
                write!(out, ":{b}}}").unwrap();
            }
        }
    }
}

/// A string claim.
#[derive(Arbitrary, Debug)]
enum Text {
    Plain,
    Empty,
    /// Any Unicode, escaped only where JSON requires.
    Unicode(String),
    /// Every character as a `\u` escape (surrogate pairs included).
    Escaped(String),
    Missing,
    Wrong(Small),
}

/// A NumericDate claim.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Time {
    /// `NOW` plus this many seconds.
    Rel(i32),
    /// `NOW` plus this, as a float with a fraction.
    RelFloat(i32, u8),
    /// `NOW` plus this, in exponent notation (`1.8e9`).
    RelExp(i16),
    Int(i64),
    Uint(u64),
    Float(f64),
    Max,
    Min,
    NegZero,
    Huge,
    String,
    Null,
    Missing,
}

#[derive(Arbitrary, Debug)]
enum Bool {
    True,
    False,
    Missing,
    Wrong(Small),
}

#[derive(Arbitrary, Debug)]
enum Iss {
    Right,
    Wrong(String),
    Missing,
    Wrong2(Small),
}

#[derive(Arbitrary, Debug)]
enum Aud {
    Right,
    /// An array; `true` entries are the right audience.
    Array(Vec<bool>),
    Wrong(String),
    Missing,
    Wrong2(Small),
}

#[derive(Arbitrary, Debug)]
struct ClaimsSpec {
    sub: Text,
    email: Text,
    email_verified: Bool,
    sid: Text,
    jti: Text,
    iat: Time,
    exp: Time,
    nbf: Time,
    iss: Iss,
    aud: Aud,
    /// The app's claims (keys get an `x-` prefix, so never a standard name).
    extra: Vec<(String, Small)>,
    /// Repeats one standard claim with another value.
    duplicate: Option<(u8, Small)>,
    /// Writes the fields in reverse order.
    reverse: bool,
}

#[derive(Arbitrary, Debug)]
enum Signature {
    Right,
    WrongKey,
    Empty,
    Garbage(Vec<u8>),
    /// The right one with a bit flipped.
    Flipped(u8, u8),
    /// The right one, padded with `=`.
    Padded,
    /// The right one in the standard alphabet (`+/`).
    Standard,
}

#[derive(Arbitrary, Debug)]
enum Framing {
    Plain,
    /// Segments base64url *with* padding.
    Padded,
    /// Segments in the standard alphabet.
    Standard,
    /// A fourth segment.
    Extra,
    /// Whitespace around the token.
    Spaced,
}

#[derive(Arbitrary, Debug)]
struct Input {
    header: HeaderSpec,
    claims: ClaimsSpec,
    signature: Signature,
    framing: Framing,
}

fn json_str(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).unwrap());
}

fn json_str_escaped(s: &str, out: &mut String) {
    out.push('"');
    for unit in s.encode_utf16() {
        write!(out, "\\u{unit:04x}").unwrap();
    }
    out.push('"');
}

/// A JSON object under construction, with what the model knows about it.
struct Object {
    text: String,
    fields: Vec<(String, String)>,
}

impl Object {
    fn new() -> Self {
        Object {
            text: String::new(),
            fields: Vec::new(),
        }
    }
    fn field(&mut self, key: &str, value: String) {
        self.fields.push((key.to_owned(), value));
    }
    fn finish(mut self, reverse: bool) -> String {
        if reverse {
            self.fields.reverse();
        }
        self.text.push('{');
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            json_str(k, &mut self.text);
            self.text.push(':');
            self.text.push_str(v);
        }
        self.text.push('}');
        self.text
    }
}

fn small(v: &Small) -> String {
    let mut s = String::new();
    v.write(&mut s);
    s
}

/// What the model expects of one part: `Ok(value)` it understands and
/// accepts, `Err(true)` it knows is refused, `Err(false)` it cannot tell.
type Known<T> = Result<T, bool>;

/// How a `Small` deserializes as a string claim.
fn small_as_string(v: &Small) -> Known<String> {
    match v {
        Small::Str(s) => Ok(s.clone()),
        _ => Err(true),
    }
}

fn text(spec: &Text, plain: &str, obj: &mut Object, key: &str) -> Known<String> {
    let mut out = String::new();
    let value = match spec {
        Text::Plain => {
            json_str(plain, &mut out);
            Ok(plain.to_owned())
        }
        Text::Empty => {
            out.push_str("\"\"");
            Ok(String::new())
        }
        Text::Unicode(s) => {
            json_str(s, &mut out);
            Ok(s.clone())
        }
        Text::Escaped(s) => {
            json_str_escaped(s, &mut out);
            Ok(s.clone())
        }
        Text::Missing => return Err(true),
        Text::Wrong(v) => {
            v.write(&mut out);
            small_as_string(v)
        }
    };
    obj.field(key, out);
    value
}

/// The text of a NumericDate and the value the verifier should read.
fn time(t: Time) -> (Option<String>, Known<i64>) {
    let rel = |d: i64| NOW + d;
    match t {
        Time::Rel(d) => (Some(rel(d.into()).to_string()), Ok(rel(d.into()))),
        Time::RelFloat(d, frac) => {
            let v = rel(d.into());
            let text = format!("{v}.{frac:03}");
            // Floored, so a negative value with a fraction goes one down.
            let floored = if frac > 0 && v < 0 { v - 1 } else { v };
            // Parsed through f64: exact for these magnitudes (< 2^53).
            (Some(text), Ok(floored))
        }
        Time::RelExp(d) => {
            let v = rel(d.into());
            (Some(format!("{}e3", v as f64 / 1000.0)), Err(false))
        }
        Time::Int(i) => (Some(i.to_string()), Ok(i)),
        Time::Uint(u) => (Some(u.to_string()), i64::try_from(u).map_err(|_| true)),
        Time::Float(f) if !f.is_finite() => (Some("null".into()), Err(true)),
        Time::Float(f) => {
            // serde_json's float parsing may miss by an ulp (no
            // `float_roundtrip`): model only what that cannot change.
            let known = if f.abs() >= 2e15 {
                Err(true)
            } else if f.abs() < 1e15 && f.fract() == 0.0 {
                Ok(f as i64)
            } else {
                Err(false)
            };
            (Some(format!("{f:?}")), known)
        }
        Time::Max => (Some(i64::MAX.to_string()), Ok(i64::MAX)),
        Time::Min => (Some(i64::MIN.to_string()), Ok(i64::MIN)),
        Time::NegZero => (Some("-0".into()), Ok(0)),
        Time::Huge => (Some("1".repeat(400)), Err(true)),
        Time::String => (Some(format!("\"{NOW}\"")), Err(true)),
        Time::Null => (Some("null".into()), Err(true)),
        Time::Missing => (None, Err(true)),
    }
}

/// Builds the token and the model's expectation (`None`: not modelled).
fn build(input: &Input) -> (String, Option<Result<AccessClaims<Extra>, TokenError>>) {
    let h = &input.header;
    let c = &input.claims;
    let mut modelled = true;

    // Header.
    let mut header = Object::new();
    let alg_ok = match &h.alg {
        Alg::Hs256 => {
            header.field("alg", "\"HS256\"".into());
            Ok(true)
        }
        Alg::Lower => {
            header.field("alg", "\"hs256\"".into());
            Ok(false)
        }
        Alg::None => {
            header.field("alg", "\"none\"".into());
            Ok(false)
        }
        Alg::EdDsa => {
            header.field("alg", "\"EdDSA\"".into());
            Ok(false)
        }
        Alg::Rs256 => {
            header.field("alg", "\"RS256\"".into());
            Ok(false)
        }
        Alg::Es256 => {
            header.field("alg", "\"ES256\"".into());
            Ok(false)
        }
        Alg::Missing => Err(()),
        Alg::Number => {
            header.field("alg", "256".into());
            Err(())
        }
        Alg::Other(s) => {
            let mut v = String::new();
            json_str(s, &mut v);
            header.field("alg", v);
            Ok(s == "HS256")
        }
    };
    // Which key the kid names: Some(true) k1, Some(false) another, None none.
    let kid: Result<Option<bool>, ()> = match &h.kid {
        Kid::K1 => {
            header.field("kid", "\"k1\"".into());
            Ok(Some(true))
        }
        Kid::Ed => {
            header.field("kid", "\"ed\"".into());
            Ok(Some(false))
        }
        Kid::Rsa => {
            header.field("kid", "\"rsa\"".into());
            Ok(Some(false))
        }
        Kid::Missing => Ok(None),
        Kid::Null => {
            header.field("kid", "null".into());
            Ok(None)
        }
        Kid::Number => {
            header.field("kid", "1".into());
            Err(())
        }
        Kid::K1Padded => {
            header.field("kid", "\" k1\"".into());
            Ok(None)
        }
        Kid::Other(s) => {
            let mut v = String::new();
            json_str(s, &mut v);
            header.field("kid", v);
            Ok(match s.as_str() {
                "k1" => Some(true),
                "ed" | "rsa" => Some(false),
                _ => None,
            })
        }
    };
    let typ_ok: Result<bool, ()> = match &h.typ {
        Typ::AtJwt => {
            header.field("typ", "\"at+jwt\"".into());
            Ok(true)
        }
        Typ::Application => {
            header.field("typ", "\"application/at+jwt\"".into());
            Ok(true)
        }
        Typ::Upper => {
            header.field("typ", "\"AT+JWT\"".into());
            Ok(true)
        }
        Typ::Jwt => {
            header.field("typ", "\"JWT\"".into());
            Ok(false)
        }
        Typ::Missing => Ok(false),
        Typ::Null => {
            header.field("typ", "null".into());
            Ok(false)
        }
        Typ::Other(s) => {
            let mut v = String::new();
            json_str(s, &mut v);
            header.field("typ", v);
            Ok(s.eq_ignore_ascii_case("at+jwt") || s.eq_ignore_ascii_case("application/at+jwt"))
        }
    };
    let forbidden = h.forbidden.is_some();
    if let Some((which, value)) = &h.forbidden {
        let name = match which {
            Forbidden::Crit => "crit",
            Forbidden::Jku => "jku",
            Forbidden::Jwk => "jwk",
            Forbidden::X5u => "x5u",
            Forbidden::X5c => "x5c",
        };
        header.field(name, small(value));
    }
    for (k, v) in &h.extra {
        // Other parameters are ignored whatever they hold.
        let key = format!("x-{k}");
        header.field(&key, small(v));
    }
    if let Some((which, value)) = &h.duplicate {
        let name = ["alg", "kid", "typ", "crit", "jku"][usize::from(*which) % 5];
        header.field(name, small(value));
        modelled = false;
    }
    let header_json = header.finish(false);

    // Claims.
    let mut claims = Object::new();
    let sub = text(&c.sub, "user-1", &mut claims, "sub");
    let email = text(&c.email, "a@example.com", &mut claims, "email");
    let email_verified: Known<bool> = match &c.email_verified {
        Bool::True => {
            claims.field("email_verified", "true".into());
            Ok(true)
        }
        Bool::False => {
            claims.field("email_verified", "false".into());
            Ok(false)
        }
        Bool::Missing => Err(true),
        Bool::Wrong(v) => {
            claims.field("email_verified", small(v));
            match v {
                Small::Bool(b) => Ok(*b),
                _ => Err(true),
            }
        }
    };
    let sid = text(&c.sid, "session-1", &mut claims, "sid");
    let jti = text(&c.jti, "jti-1", &mut claims, "jti");
    let mut date = |name: &str, t: Time| {
        let (text, known) = time(t);
        if let Some(text) = text {
            claims.field(name, text);
        }
        known
    };
    let iat = date("iat", c.iat);
    let exp = date("exp", c.exp);
    let nbf = match c.nbf {
        Time::Missing => Ok(None),
        t => date("nbf", t).map(Some),
    };
    let iss: Known<String> = match &c.iss {
        Iss::Right => {
            claims.field("iss", serde_json::to_string(ISSUER).unwrap());
            Ok(ISSUER.to_owned())
        }
        Iss::Wrong(s) => {
            let mut v = String::new();
            json_str(s, &mut v);
            claims.field("iss", v);
            Ok(s.clone())
        }
        Iss::Missing => Err(true),
        Iss::Wrong2(v) => {
            claims.field("iss", small(v));
            small_as_string(v)
        }
    };
    let aud: Known<Audience> = match &c.aud {
        Aud::Right => {
            claims.field("aud", serde_json::to_string(AUDIENCE).unwrap());
            Ok(Audience::One(AUDIENCE.to_owned()))
        }
        Aud::Array(v) => {
            let list: Vec<String> = v
                .iter()
                .map(|&right| {
                    if right {
                        AUDIENCE.into()
                    } else {
                        "other".into()
                    }
                })
                .collect();
            claims.field("aud", serde_json::to_string(&list).unwrap());
            Ok(Audience::Many(list))
        }
        Aud::Wrong(s) => {
            let mut v = String::new();
            json_str(s, &mut v);
            claims.field("aud", v);
            Ok(Audience::One(s.clone()))
        }
        Aud::Missing => Err(true),
        Aud::Wrong2(v) => {
            claims.field("aud", small(v));
            match v {
                Small::Str(s) => Ok(Audience::One(s.clone())),
                // An empty array is a list of no audiences; any other
                // holds booleans.
                Small::Array(v) if v.is_empty() => Ok(Audience::Many(Vec::new())),
                _ => Err(true),
            }
        }
    };
    let mut extra = Map::new();
    let mut extra_known = true;
    for (k, v) in &c.extra {
        claims.field(&format!("x-{k}"), small(v));
    }
    // With repeated keys the last one written wins: follow the written order.
    let order: Vec<&(String, Small)> = if c.reverse {
        c.extra.iter().rev().collect()
    } else {
        c.extra.iter().collect()
    };
    for (k, v) in order {
        match serde_json::from_str::<Value>(&small(v)) {
            Ok(value) => {
                extra.insert(format!("x-{k}"), value);
            }
            // A number serde_json cannot hold: refused, but by the claims
            // parse, whose order the model does not follow here.
            Err(_) => extra_known = false,
        }
    }
    if let Some((which, value)) = &c.duplicate {
        let names = [
            "sub",
            "email",
            "email_verified",
            "sid",
            "jti",
            "iat",
            "exp",
            "nbf",
            "iss",
            "aud",
        ];
        claims.field(names[usize::from(*which) % names.len()], small(value));
        modelled = false;
    }
    // Flattened extra claims buffer every value; floats stay floats, but a
    // number may be read back in another representation (1e2 as 100.0).
    if c.extra
        .iter()
        .any(|(_, v)| matches!(v, Small::Exp(..) | Small::Float(_)))
    {
        extra_known = false;
    }
    let claims_json = claims.finish(c.reverse);

    // Encoding.
    let (enc_h, enc_c) = match input.framing {
        Framing::Padded => (URL_SAFE.encode(&header_json), URL_SAFE.encode(&claims_json)),
        Framing::Standard => (STANDARD.encode(&header_json), STANDARD.encode(&claims_json)),
        _ => (
            URL_SAFE_NO_PAD.encode(&header_json),
            URL_SAFE_NO_PAD.encode(&claims_json),
        ),
    };
    let signed = format!("{enc_h}.{enc_c}");
    let mac = |key: &[u8]| {
        let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
        m.update(signed.as_bytes());
        m.finalize().into_bytes()
    };
    let right = mac(SECRET);
    let (sig, sig_right) = match &input.signature {
        Signature::Right => (URL_SAFE_NO_PAD.encode(right), true),
        Signature::WrongKey => (URL_SAFE_NO_PAD.encode(mac(WRONG_SECRET)), false),
        Signature::Empty => (String::new(), false),
        Signature::Garbage(g) => (URL_SAFE_NO_PAD.encode(g), false),
        Signature::Flipped(i, bit) => {
            let mut s = right;
            s[usize::from(*i) % 32] ^= 1 << (bit % 8);
            (URL_SAFE_NO_PAD.encode(s), false)
        }
        Signature::Padded => (URL_SAFE.encode(right), false),
        Signature::Standard => {
            let s = STANDARD.encode(right);
            // Without + or / the standard encoding is the same text.
            let same = !s.contains(['+', '/']);
            (s.trim_end_matches('=').to_owned(), same)
        }
    };
    let token = match input.framing {
        Framing::Extra => format!("{signed}.{sig}.x"),
        Framing::Spaced => format!(" {signed}.{sig} "),
        _ => format!("{signed}.{sig}"),
    };
    // Re-encoded segments may or may not decode: not modelled.
    if !matches!(input.framing, Framing::Plain) {
        modelled = false;
    }
    if !modelled {
        return (token, None);
    }

    // The model, in the verifier's order.
    let expect = || -> Option<Result<AccessClaims<Extra>, TokenError>> {
        use TokenError::*;
        if token.len() > MAX_TOKEN_BYTES {
            return Some(Err(TooLarge));
        }
        if enc_h.len() > 512 {
            return Some(Err(Malformed));
        }
        // A number out of range: an error for `Value`, skipped unread by
        // `IgnoredAny` in the header's ignored and forbidden parameters.
        if serde_json::from_str::<Value>(&header_json).is_err() {
            return None;
        }
        let (Ok(alg_ok), Ok(kid), Ok(typ_ok)) = (alg_ok, kid, typ_ok) else {
            return Some(Err(Malformed));
        };
        if forbidden {
            return Some(Err(ForbiddenHeader));
        }
        if !typ_ok {
            return Some(Err(WrongType));
        }
        let Some(k1) = kid else {
            return Some(Err(UnknownKey));
        };
        // The key decides: ed and rsa keys want EdDSA and RS256.
        let alg_text = match &h.alg {
            Alg::EdDsa => Some("EdDSA"),
            Alg::Rs256 => Some("RS256"),
            Alg::Other(s) => Some(s.as_str()),
            _ => None,
        };
        if !k1 {
            let wanted = if matches!(h.kid, Kid::Ed) || matches!(&h.kid, Kid::Other(s) if s == "ed")
            {
                "EdDSA"
            } else {
                "RS256"
            };
            if alg_text != Some(wanted) {
                return Some(Err(AlgorithmMismatch));
            }
            // An HMAC is never an Ed25519 or RSA signature.
            return Some(Err(BadSignature));
        }
        if !alg_ok {
            return Some(Err(AlgorithmMismatch));
        }
        if !sig_right {
            return Some(Err(BadSignature));
        }
        // Strict types first: any missing or ill-typed claim.
        let unknown = [&sub, &email, &sid, &jti, &iss]
            .iter()
            .any(|k| matches!(k, Err(false)))
            || matches!(email_verified, Err(false))
            || [&iat, &exp].iter().any(|k| matches!(k, Err(false)))
            || matches!(nbf, Err(false))
            || matches!(aud, Err(false));
        if unknown {
            return None;
        }
        let (
            Ok(sub),
            Ok(email),
            Ok(email_verified),
            Ok(sid),
            Ok(jti),
            Ok(iat),
            Ok(exp),
            Ok(nbf),
            Ok(iss),
            Ok(aud),
        ) = (
            &sub,
            &email,
            email_verified,
            &sid,
            &jti,
            iat,
            exp,
            nbf,
            &iss,
            &aud,
        )
        else {
            return Some(Err(InvalidClaims));
        };
        if !extra_known {
            return None;
        }
        if iss != ISSUER {
            return Some(Err(WrongIssuer));
        }
        if !aud.contains(AUDIENCE) {
            return Some(Err(WrongAudience));
        }
        if NOW > exp.saturating_add(LEEWAY) {
            return Some(Err(Expired));
        }
        if nbf.is_some_and(|nbf| nbf > NOW + LEEWAY) {
            return Some(Err(NotYetValid));
        }
        Some(Ok(AccessClaims {
            sub: sub.clone(),
            email: email.clone(),
            email_verified,
            sid: sid.clone(),
            jti: jti.clone(),
            iat,
            exp,
            nbf,
            iss: iss.clone(),
            aud: aud.clone(),
            extra: extra.clone(),
        }))
    };
    let expected = expect();
    (token, expected)
}

fuzz_target!(|input: Input| {
    let auth = auth();
    let (token, expected) = build(&input);
    let got = fuzzing::verify_uncached::<Extra>(auth, &token, NOW);
    if let Some(expected) = expected {
        assert_eq!(got, expected, "token {token}");
    }
    let cached = fuzzing::verify_at(auth, token.as_bytes(), NOW).map(|c| (*c).clone());
    assert_eq!(cached, got, "the cached path disagrees");
    if let Ok(claims) = got {
        // Round trip: the crate's own signature over these claims verifies
        // to the same claims.
        let resigned = fuzzing::sign(auth, &claims);
        let mut again = fuzzing::verify_uncached::<Extra>(auth, &resigned, NOW)
            .expect("the re-signed claims verify");
        assert!(
            axum_authkit_fuzz::same_map(&again.extra, &claims.extra),
            "extra claims do not round-trip: {:?} then {:?}",
            claims.extra,
            again.extra
        );
        again.extra = claims.extra.clone();
        assert_eq!(again, claims, "claims do not round-trip");
    }
});
