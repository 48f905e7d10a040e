//! Request bodies: JSON, and the form fields (`multipart/form-data` or URL-encoded) some
//! providers put their JSON in.

use super::{Rejection, Request, MAX_BODY_BYTES};
use bytes::Bytes;
use serde_json::{Map, Value};

/// The most parts a multipart body may have: Plex sends two, Emby one.
const MAX_PARTS: usize = 16;

/// A JSON object as received: its text (a UTF-8 byte-order mark left out) and its value.
#[derive(Debug)]
pub(super) struct Json {
    pub text: String,
    pub value: Map<String, Value>,
}

/// Parses `bytes` (named `what` in messages) as one JSON object.
pub(super) fn json_object(bytes: &[u8], what: &str) -> Result<Json, Rejection> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Rejection::bad(format!("{what} is not UTF-8 text ({e})")))?;
    if text.trim().is_empty() {
        return Err(Rejection::bad(format!(
            "{what} is empty; a JSON object was expected"
        )));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(value)) => Ok(Json {
            text: text.trim().to_owned(),
            value,
        }),
        Ok(_) => Err(Rejection::bad(format!("{what} is JSON but not an object"))),
        Err(e) => Err(Rejection::bad(format!("{what} is not valid JSON: {e}"))),
    }
}

/// The request's media type, in lower case, without parameters.
pub(super) fn media_type(req: &Request) -> Option<String> {
    let value = req.header("content-type")?;
    let media = value.split(';').next().unwrap_or_default().trim();
    Some(media.to_ascii_lowercase())
}

/// The form field `name` of a `multipart/form-data` body; every other part (Plex's `thumb`
/// image) is read past and dropped. `Ok(None)` when no part has that name.
pub(super) async fn multipart_field(req: &Request, name: &str) -> Result<Option<Bytes>, Rejection> {
    let content_type = req.header("content-type").unwrap_or_default();
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| Rejection::bad(format!("the multipart/form-data body cannot be read: {e}")))?;
    let body = req.body.clone();
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let limits = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(MAX_BODY_BYTES as u64));
    let mut form = multer::Multipart::with_constraints(stream, boundary, limits);
    let broken = |e: multer::Error| {
        Rejection::bad(format!("the multipart/form-data body is malformed: {e}"))
    };
    let mut found: Option<Bytes> = None;
    let mut parts = 0;
    while let Some(mut field) = form.next_field().await.map_err(broken)? {
        parts += 1;
        if parts > MAX_PARTS {
            return Err(Rejection::bad(format!(
                "the multipart/form-data body has more than {MAX_PARTS} parts"
            )));
        }
        if field.name() == Some(name) {
            if found.is_some() {
                return Err(Rejection::bad(format!(
                    "the multipart/form-data body has more than one part named {name:?}"
                )));
            }
            found = Some(field.bytes().await.map_err(broken)?);
        } else {
            while field.chunk().await.map_err(broken)?.is_some() {}
        }
    }
    Ok(found)
}

/// The field `name` of an `application/x-www-form-urlencoded` body.
pub(super) fn urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The JSON a form carries in field `name` (`multipart/form-data` or URL-encoded), or `None`
/// when the body is not a form.
pub(super) async fn form_json(req: &Request, name: &str) -> Result<Option<Json>, Rejection> {
    let what = format!("the form field {name:?}");
    match media_type(req).as_deref() {
        Some("multipart/form-data") => match multipart_field(req, name).await? {
            Some(bytes) => json_object(&bytes, &what).map(Some),
            None => Err(Rejection::bad(format!(
                "the multipart/form-data body has no part named {name:?}"
            ))),
        },
        Some("application/x-www-form-urlencoded") => match urlencoded_field(&req.body, name) {
            Some(text) => json_object(text.as_bytes(), &what).map(Some),
            None => Err(Rejection::bad(format!(
                "the form has no field named {name:?}"
            ))),
        },
        _ => Ok(None),
    }
}

/// A JSON field that holds text: a string (blank is none) or a number, written as text.
pub(super) fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A JSON field that holds a whole number: a number, or a string of one (templates and old
/// clients send numbers as strings). A fraction is cut.
pub(super) fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| f as i64)
            })
        }
        _ => None,
    }
}

/// A field of a JSON object whose name is matched in any case (`Provider_imdb`,
/// `provider_imdb`).
pub(super) fn field_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_may_come_as_strings() {
        assert_eq!(int(Some(&json!(12))), Some(12));
        assert_eq!(int(Some(&json!("12"))), Some(12));
        assert_eq!(int(Some(&json!(" 12 "))), Some(12));
        assert_eq!(int(Some(&json!(12.9))), Some(12));
        assert_eq!(int(Some(&json!(""))), None);
        assert_eq!(int(Some(&json!("x"))), None);
        assert_eq!(text(Some(&json!(31646104))).as_deref(), Some("31646104"));
        assert_eq!(text(Some(&json!(""))), None);
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_refused_with_why() {
        assert!(json_object(b"\xEF\xBB\xBF{\"a\":1}", "the body").is_ok());
        let e = json_object(b"\xff\xfe", "the body").expect_err("not UTF-8");
        assert!(e.message.contains("not UTF-8"), "{}", e.message);
        let e = json_object(b"[1]", "the body").expect_err("an array");
        assert!(e.message.contains("not an object"), "{}", e.message);
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let e = json_object(format!("{{\"a\":{deep}}}").as_bytes(), "the body").expect_err("deep");
        assert_eq!(e.status, 400);
        assert!(json_object(b"  ", "the body").is_err());
    }
}
