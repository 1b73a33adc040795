//! The JSON body reader of the auth routes: `Content-Type`, the declared and
//! the actual size against the limit, one JSON object, then field reading.
//!
//! Invariants: no panic; the answer is 415, 413 or 400 exactly when the
//! rules say so, and otherwise the object serde_json reads; the object
//! renders and parses back to itself; field errors are a 400.
#![no_main]

use std::convert::Infallible;

use arbitrary::Arbitrary;
use axum::body::Body;
use axum_authkit::fuzzing;
use bytes::Bytes;
use http::{Request, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[derive(Arbitrary, Debug)]
enum ContentType {
    Json,
    JsonCharset,
    ProblemJson,
    TextPlain,
    Missing,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Length {
    Missing,
    Exact,
    Declared(u64),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    content_type: ContentType,
    length: Length,
    /// Body chunks, streamed as they come.
    chunks: Vec<Vec<u8>>,
    limit: u16,
}

fuzz_target!(|input: Input| {
    let body: Vec<u8> = input.chunks.concat();
    let limit = usize::from(input.limit);
    let mut req = Request::post("/");
    let ct: Option<&[u8]> = match &input.content_type {
        ContentType::Json => Some(b"application/json"),
        ContentType::JsonCharset => Some(b"Application/JSON; charset=utf-8"),
        ContentType::ProblemJson => Some(b"application/problem+json"),
        ContentType::TextPlain => Some(b"text/plain"),
        ContentType::Missing => None,
        ContentType::Raw(raw) => Some(raw),
    };
    let Ok(ct_value) = ct.map(http::HeaderValue::from_bytes).transpose() else {
        return;
    };
    if let Some(v) = &ct_value {
        req = req.header(header::CONTENT_TYPE, v.clone());
    }
    let declared: Option<Vec<u8>> = match &input.length {
        Length::Missing => None,
        Length::Exact => Some(body.len().to_string().into_bytes()),
        Length::Declared(n) => Some(n.to_string().into_bytes()),
        Length::Raw(raw) => Some(raw.clone()),
    };
    let Ok(len_value) = declared
        .as_deref()
        .map(http::HeaderValue::from_bytes)
        .transpose()
    else {
        return;
    };
    if let Some(v) = &len_value {
        req = req.header(header::CONTENT_LENGTH, v.clone());
    }
    let chunks = input
        .chunks
        .into_iter()
        .map(|c| Ok::<_, Infallible>(Bytes::from(c)));
    let req = req
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();

    let answer = fuzzing::read_json_body(req, limit);

    let plain_json = matches!(
        input.content_type,
        ContentType::Json | ContentType::JsonCharset | ContentType::ProblemJson
    );
    let not_json = matches!(
        input.content_type,
        ContentType::TextPlain | ContentType::Missing
    );
    let declared_n = len_value
        .as_ref()
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match &answer {
        Err(StatusCode::UNSUPPORTED_MEDIA_TYPE) => assert!(!plain_json),
        Err(StatusCode::PAYLOAD_TOO_LARGE) => {
            assert!(!not_json);
            assert!(body.len() > limit || declared_n.is_some_and(|n| n > limit as u64));
        }
        Err(StatusCode::BAD_REQUEST) => {
            assert!(!not_json);
            assert!(body.len() <= limit);
            assert!(!matches!(
                serde_json::from_slice::<Value>(&body),
                Ok(Value::Object(_))
            ));
        }
        Err(other) => panic!("unexpected status {other}"),
        Ok(read) => {
            assert!(!not_json);
            assert!(body.len() <= limit && declared_n.is_none_or(|n| n <= limit as u64));
            let Ok(Value::Object(expected)) = serde_json::from_slice::<Value>(&body) else {
                panic!("accepted a body that is not a JSON object");
            };
            assert_eq!(read.object, expected);
            // Render → parse is stable.
            let rendered = serde_json::to_vec(&read.object).unwrap();
            let again: serde_json::Map<String, Value> = serde_json::from_slice(&rendered).unwrap();
            // Floats may come back a few ulps off (serde_json without
            // `float_roundtrip`); everything else exactly.
            assert!(
                axum_authkit_fuzz::same_map(&again, &read.object),
                "{again:?} != {:?}",
                read.object
            );
            if let Err(status) = read.fields {
                assert_eq!(status, StatusCode::BAD_REQUEST);
            }
        }
    }
    if plain_json {
        let expected = if declared_n.is_some_and(|n| n > limit as u64) || body.len() > limit {
            Some(StatusCode::PAYLOAD_TOO_LARGE)
        } else if matches!(serde_json::from_slice::<Value>(&body), Ok(Value::Object(_))) {
            None
        } else {
            Some(StatusCode::BAD_REQUEST)
        };
        assert_eq!(answer.as_ref().err().copied(), expected);
    }
});
