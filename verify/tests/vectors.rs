//! Every vector of `tests/vectors/signatures.json`, signed and verified.

use herald_verify::*;
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/signatures.json");
    let text = std::fs::read_to_string(path).expect("verify/tests/vectors/signatures.json");
    let doc: Value = serde_json::from_str(&text).expect("valid JSON");
    let vectors = doc["vectors"].as_array().expect("a vectors array").clone();
    assert!(!vectors.is_empty());
    vectors
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key}"))
}

fn secrets(v: &Value) -> Vec<String> {
    v["secrets"]
        .as_array()
        .expect("secrets")
        .iter()
        .map(|x| x.as_str().expect("secret").to_owned())
        .collect()
}

fn headers(v: &Value) -> Vec<(String, String)> {
    vec![
        (header::HOOK_ID.into(), s(v, "hookId").into()),
        (header::EVENT.into(), s(v, "event").into()),
        (header::NONCE.into(), s(v, "nonce").into()),
        (header::TIMESTAMP.into(), s(v, "timestamp").into()),
        (
            header::SIGNATURES.into(),
            s(v, "rewatchSignaturesHeader").into(),
        ),
        (header::WEBHOOK_ID.into(), s(v, "nonce").into()),
        (
            header::WEBHOOK_TIMESTAMP.into(),
            v["unixTimestamp"].as_i64().expect("unix").to_string(),
        ),
        (
            header::WEBHOOK_SIGNATURE.into(),
            s(v, "standardWebhooksSignatureHeader").into(),
        ),
    ]
}

#[test]
fn signing_reproduces_every_vector() {
    for v in vectors() {
        let secrets = secrets(&v);
        let unix = v["unixTimestamp"].as_i64().expect("unix");
        assert_eq!(
            rewatch_signed_string(
                s(&v, "hookId"),
                s(&v, "event"),
                s(&v, "nonce"),
                s(&v, "timestamp")
            ),
            s(&v, "signedString")
        );
        assert_eq!(
            rewatch_signatures_header(
                &secrets,
                s(&v, "hookId"),
                s(&v, "event"),
                s(&v, "nonce"),
                s(&v, "timestamp")
            ),
            s(&v, "rewatchSignaturesHeader")
        );
        assert_eq!(
            standard_signatures_header(&secrets, s(&v, "nonce"), unix, s(&v, "body").as_bytes()),
            s(&v, "standardWebhooksSignatureHeader")
        );
        assert_eq!(parse_timestamp(s(&v, "timestamp")), Some(unix));
        let at = chrono::DateTime::from_timestamp(unix, 0).expect("a time");
        assert_eq!(format_timestamp(at), s(&v, "timestamp"));
        // Each signature alone is the header's part at its place.
        let rewatch: Vec<String> = secrets
            .iter()
            .map(|x| {
                rewatch_signature(
                    x.as_bytes(),
                    s(&v, "hookId"),
                    s(&v, "event"),
                    s(&v, "nonce"),
                    s(&v, "timestamp"),
                )
            })
            .collect();
        assert_eq!(rewatch.join(","), s(&v, "rewatchSignaturesHeader"));
        let standard: Vec<String> = secrets
            .iter()
            .map(|x| {
                standard_signature(x.as_bytes(), s(&v, "nonce"), unix, s(&v, "body").as_bytes())
            })
            .collect();
        assert_eq!(standard.join(" "), s(&v, "standardWebhooksSignatureHeader"));
        let whsec: Vec<String> = secrets
            .iter()
            .map(|x| standard_webhooks_secret(x.as_bytes()))
            .collect();
        let expected: Vec<String> = v["standardWebhooksSecrets"]
            .as_array()
            .expect("whsec secrets")
            .iter()
            .map(|x| x.as_str().expect("whsec").to_owned())
            .collect();
        assert_eq!(whsec, expected);
    }
}

#[test]
fn every_vector_verifies_under_both_schemes_with_each_secret_alone() {
    for v in vectors() {
        let unix = v["unixTimestamp"].as_i64().expect("unix");
        let body = s(&v, "body").as_bytes();
        let h = headers(&v);
        for (i, secret) in secrets(&v).iter().enumerate() {
            let verifier = Verifier::new([secret]);
            let std_ok = verifier
                .verify_standard_at(&h, body, unix)
                .expect("standard verifies");
            assert_eq!(std_ok.scheme, Scheme::StandardWebhooks);
            assert_eq!(std_ok.nonce, s(&v, "nonce"));
            let rw_ok = verifier
                .verify_rewatch_at(&h, unix)
                .expect("rewatch verifies");
            assert_eq!(rw_ok.scheme, Scheme::Rewatch);
            assert_eq!(rw_ok.timestamp, unix);
            // The whsec_ form of the same secret is accepted too.
            let whsec = &v["standardWebhooksSecrets"][i];
            let verifier = Verifier::new([whsec.as_str().expect("whsec")]);
            assert!(verifier.verify_at(&h, body, unix).is_ok());
        }
    }
}

#[test]
fn a_changed_body_fails_the_standard_scheme() {
    for v in vectors() {
        let unix = v["unixTimestamp"].as_i64().expect("unix");
        let verifier = Verifier::new(secrets(&v));
        let mut body = s(&v, "body").as_bytes().to_vec();
        body.push(b' ');
        assert_eq!(
            verifier.verify_standard_at(&headers(&v), &body, unix),
            Err(VerifyError::NoMatchingSignature)
        );
    }
}

#[test]
fn a_wrong_secret_matches_nothing() {
    let v = &vectors()[0];
    let unix = v["unixTimestamp"].as_i64().expect("unix");
    let verifier = Verifier::new(["z".repeat(40)]);
    let h = headers(v);
    assert_eq!(
        verifier.verify_rewatch_at(&h, unix),
        Err(VerifyError::NoMatchingSignature)
    );
    assert_eq!(
        verifier.verify_standard_at(&h, s(v, "body").as_bytes(), unix),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn rotation_accepts_old_and_new_secret() {
    let v = &vectors()[1];
    let unix = v["unixTimestamp"].as_i64().expect("unix");
    let old = secrets(v).remove(0);
    let verifier = Verifier::new(["n".repeat(40), old]);
    let ok = verifier
        .verify_at(&headers(v), s(v, "body").as_bytes(), unix)
        .expect("verifies");
    assert_eq!(ok.secret_index, 1);
}

#[test]
fn tolerance_edges() {
    let v = &vectors()[0];
    let unix = v["unixTimestamp"].as_i64().expect("unix");
    let body = s(v, "body").as_bytes();
    let h = headers(v);
    let verifier = Verifier::new(secrets(v));
    assert!(verifier.verify_at(&h, body, unix + 300).is_ok());
    assert!(verifier.verify_at(&h, body, unix - 300).is_ok());
    assert_eq!(
        verifier.verify_at(&h, body, unix + 301),
        Err(VerifyError::TooOld(1))
    );
    assert_eq!(
        verifier.verify_at(&h, body, unix - 302),
        Err(VerifyError::TooNew(2))
    );
    assert_eq!(
        verifier.verify_rewatch_at(&h, unix + 301),
        Err(VerifyError::TooOld(1))
    );
    let strict = Verifier::new(secrets(v)).with_tolerance(std::time::Duration::from_secs(10));
    assert!(strict.verify_at(&h, body, unix + 10).is_ok());
    assert_eq!(
        strict.verify_at(&h, body, unix + 11),
        Err(VerifyError::TooOld(1))
    );
}

#[test]
fn each_failure_says_what_failed() {
    let v = &vectors()[0];
    let unix = v["unixTimestamp"].as_i64().expect("unix");
    let body = s(v, "body").as_bytes();
    let verifier = Verifier::new(secrets(v));

    let without = |name: &str| -> Vec<(String, String)> {
        headers(v).into_iter().filter(|(k, _)| k != name).collect()
    };
    assert_eq!(
        verifier.verify_standard_at(&without(header::WEBHOOK_ID), body, unix),
        Err(VerifyError::MissingHeader(header::WEBHOOK_ID))
    );
    assert_eq!(
        verifier.verify_rewatch_at(&without(header::NONCE), unix),
        Err(VerifyError::MissingHeader(header::NONCE))
    );
    // Without Standard Webhooks headers, verify() falls back to the Rewatch scheme.
    let rewatch_only = without(header::WEBHOOK_SIGNATURE);
    assert_eq!(
        verifier
            .verify_at(&rewatch_only, body, unix)
            .map(|v| v.scheme),
        Ok(Scheme::Rewatch)
    );

    let mut bad_ts = headers(v);
    bad_ts.retain(|(k, _)| k != header::WEBHOOK_TIMESTAMP);
    bad_ts.push((header::WEBHOOK_TIMESTAMP.into(), "yesterday".into()));
    assert!(matches!(
        verifier.verify_standard_at(&bad_ts, body, unix),
        Err(VerifyError::BadHeader {
            header: header::WEBHOOK_TIMESTAMP,
            ..
        })
    ));

    let mut bad_rw_ts = headers(v);
    bad_rw_ts.retain(|(k, _)| k != header::TIMESTAMP);
    bad_rw_ts.push((header::TIMESTAMP.into(), "2021-08-10 06:09:39".into()));
    assert!(matches!(
        verifier.verify_rewatch_at(&bad_rw_ts, unix),
        Err(VerifyError::BadHeader {
            header: header::TIMESTAMP,
            ..
        })
    ));

    let mut bad_sig = headers(v);
    bad_sig.retain(|(k, _)| k != header::SIGNATURES);
    bad_sig.push((header::SIGNATURES.into(), "not-hex".into()));
    assert!(matches!(
        verifier.verify_rewatch_at(&bad_sig, unix),
        Err(VerifyError::BadHeader {
            header: header::SIGNATURES,
            ..
        })
    ));

    let mut no_v1 = headers(v);
    no_v1.retain(|(k, _)| k != header::WEBHOOK_SIGNATURE);
    no_v1.push((header::WEBHOOK_SIGNATURE.into(), "v2,abc".into()));
    assert!(matches!(
        verifier.verify_standard_at(&no_v1, body, unix),
        Err(VerifyError::BadHeader {
            header: header::WEBHOOK_SIGNATURE,
            ..
        })
    ));

    let none: Vec<String> = Vec::new();
    assert_eq!(
        Verifier::new(none).verify_at(&headers(v), body, unix),
        Err(VerifyError::NoSecrets)
    );
}

#[test]
fn header_names_match_case_insensitively() {
    let v = &vectors()[2];
    let unix = v["unixTimestamp"].as_i64().expect("unix");
    let lower: Vec<(String, String)> = headers(v)
        .into_iter()
        .map(|(k, val)| (k.to_lowercase(), val))
        .collect();
    let verifier = Verifier::new(secrets(v));
    assert!(verifier.verify_rewatch_at(&lower, unix).is_ok());
}

#[test]
fn timestamps_are_written_as_strftime_writes_them() {
    let mut unix = 0_i64;
    // From 1970 to the end of year 9999, in uneven steps that cross every field's carry.
    while unix <= 253_402_300_799 {
        let at = chrono::DateTime::from_timestamp(unix, 0).expect("a time");
        assert_eq!(
            format_timestamp(at),
            at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
        );
        unix += 86_399 * 367 + 3_607;
    }
    let end = chrono::DateTime::from_timestamp(253_402_300_799, 0).expect("a time");
    assert_eq!(format_timestamp(end), "9999-12-31T23:59:59Z");
}
