//! Production authentication, black-box: the real app verifies tokens against a real JWKS
//! server on loopback (or a PEM key, or the shared secret), and a battery of hostile tokens
//! gets SPEC's status and code without reading or writing any data.

// Helpers of this test binary only; cargo does not take files in a subfolder as test targets.
#[path = "auth/key_server.rs"]
mod key_server;
#[path = "auth/signing.rs"]
mod signing;

use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use reqwest::header::{AUTHORIZATION, COOKIE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use usage_api::auth::Rejection;
use usage_api::settings::{Secret, Settings};
use usage_tests::http::{SECRET, TestApp, TestStore, expect_error, json_body, pinned_now, token};
use usage_tests::records::client_record;

use key_server::{Behaviour, KeyServer};
use signing::{
    AUDIENCE, ISSUER, RSA_A_PUBLIC, TestKey, claims, forge, hs256, jwks, rsa_a_public_path,
};

const USER: &str = "alice";

/// The routes every case is tried on: one that reads, one that writes.
const SUMMARY: &str = "/api/usage/summary";
const SYNC: &str = "/api/usage/sync";

/// An app that verifies RS/ES tokens with the key server's keys only (no shared secret),
/// requires the test issuer and audience, and fetches keys at most once a minute.
async fn app_with_jwks(server: &KeyServer, customize: impl FnOnce(&mut Settings)) -> TestApp {
    let url = server.url();
    TestApp::spawn_with_settings(TestStore::Sqlite, move |settings| {
        settings.jwt_secret = None;
        settings.jwt_jwks_url = Some(url);
        settings.jwt_issuer = Some(ISSUER.to_owned());
        settings.jwt_audience = Some(AUDIENCE.to_owned());
        settings.jwt_jwks_min_refresh_seconds = 60;
        settings.jwt_jwks_connect_timeout_seconds = 1;
        settings.jwt_jwks_timeout_seconds = 2;
        customize(settings);
    })
    .await
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("an ASCII token");
    headers.insert(AUTHORIZATION, value);
    headers
}

/// `GET /api/usage/summary` with `headers` and `query`.
async fn read(app: &TestApp, headers: HeaderMap, query: &[(&str, &str)]) -> Response {
    let request = reqwest::Client::new().get(app.url(SUMMARY)).query(query);
    request
        .headers(headers)
        .send()
        .await
        .expect("the app answers")
}

/// `POST /api/usage/sync` of one record with `headers` and `query`.
async fn write(app: &TestApp, headers: HeaderMap, query: &[(&str, &str)]) -> Response {
    let body = json!({"executions": [client_record("refused-1", pinned_now())]});
    let request = reqwest::Client::new()
        .post(app.url(SYNC))
        .query(query)
        .json(&body);
    request
        .headers(headers)
        .send()
        .await
        .expect("the app answers")
}

/// Both routes refuse `headers` (and `query`) with `status` and `code`; a 503 says when to
/// retry.
async fn expect_refused(
    app: &TestApp,
    headers: HeaderMap,
    query: &[(&str, &str)],
    status: StatusCode,
    code: &str,
) {
    for response in [
        read(app, headers.clone(), query).await,
        write(app, headers.clone(), query).await,
    ] {
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(
                response.headers().contains_key(RETRY_AFTER),
                "no Retry-After"
            );
        }
        expect_error(response, status, code).await;
    }
}

/// The number of records the holder of `token` has.
async fn stored_for(app: &TestApp, token: &str) -> Value {
    let response = read(app, bearer(token), &[]).await;
    json_body(response, StatusCode::OK).await["summary"]["totalExecutions"].clone()
}

async fn expect_accepted(app: &TestApp, token: &str) {
    let response = read(app, bearer(token), &[]).await;
    json_body(response, StatusCode::OK).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_rs256_token_from_the_key_server_is_accepted_and_syncs() {
    let key = TestKey::rsa_a("rsa-a");
    let server = KeyServer::start(jwks(&[&key])).await;
    let app = app_with_jwks(&server, |_| {}).await;
    let token = key.sign(&claims(USER));

    let body = json_body(write(&app, bearer(&token), &[]).await, StatusCode::OK).await;

    assert_eq!(body, json!({"success": true, "synced": 1, "duplicates": 0}));
    assert_eq!(stored_for(&app, &token).await, 1);
    assert_eq!(server.hits(), 1, "the keys were fetched once and cached");
    assert_eq!(app.auth_metrics.accepted(), 2);
    assert_eq!(app.auth_metrics.key_fetches(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_es256_token_from_the_key_server_is_accepted() {
    let rsa = TestKey::rsa_a("rsa-a");
    let ec = TestKey::ec_a("ec-a");
    let server = KeyServer::start(jwks(&[&rsa, &ec])).await;
    let app = app_with_jwks(&server, |_| {}).await;

    assert_eq!(stored_for(&app, &ec.sign(&claims(USER))).await, 0);
    assert_eq!(stored_for(&app, &rsa.sign(&claims(USER))).await, 0);
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_published_later_is_accepted_without_a_restart() {
    let old = TestKey::rsa_a("2026-01");
    let new = TestKey::rsa_b("2026-02");
    let server = KeyServer::start(jwks(&[&old])).await;
    let app = app_with_jwks(&server, |settings| {
        settings.jwt_jwks_min_refresh_seconds = 1;
    })
    .await;
    expect_accepted(&app, &old.sign(&claims(USER))).await;
    let fetched_at = Instant::now();

    server.publish(jwks(&[&old, &new]));
    // The refresh interval under test is one second; a key id first seen sooner would be
    // refused by design. Waiting it out is the behaviour, not a race.
    tokio::time::sleep(Duration::from_millis(1_100).saturating_sub(fetched_at.elapsed())).await;

    expect_accepted(&app, &new.sign(&claims(USER))).await;
    expect_accepted(&app, &old.sign(&claims(USER))).await;
    assert_eq!(server.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_made_up_key_ids_reaches_the_key_server_once() {
    let key = TestKey::rsa_a("rsa-a");
    let server = KeyServer::start(jwks(&[&key])).await;
    let app = app_with_jwks(&server, |_| {}).await;
    let forged = || {
        let kid = format!("made-up-{:016x}", rand::random::<u64>());
        key.sign_as(&claims(USER), Algorithm::RS256, Some(&kid))
    };

    // Fifty at once on a cold cache: one fetch, shared.
    let requests = (0..50).map(|_| {
        let request = reqwest::Client::new()
            .get(app.url(SUMMARY))
            .headers(bearer(&forged()));
        tokio::spawn(request.send())
    });
    for request in requests.collect::<Vec<_>>() {
        let response = request.await.unwrap().expect("the app answers");
        expect_error(response, StatusCode::UNAUTHORIZED, "INVALID_TOKEN").await;
    }
    // Fifty more, one after the other, within the refresh interval: no fetch at all.
    for _ in 0..50 {
        let response = read(&app, bearer(&forged()), &[]).await;
        expect_error(response, StatusCode::UNAUTHORIZED, "INVALID_TOKEN").await;
    }

    assert_eq!(server.hits(), 1, "one fetch for a hundred unknown key ids");
    assert_eq!(app.auth_metrics.rejected(Rejection::UnknownKey), 100);
    assert_eq!(stored_for(&app, &key.sign(&claims(USER))).await, 0);
    assert_eq!(server.hits(), 1, "the real key came with that fetch");
}

/// A token the app on the key server must refuse, with SPEC's code and the logged reason.
struct Hostile {
    case: &'static str,
    token: String,
    code: &'static str,
    reason: Rejection,
}

fn hostile(case: &'static str, token: String, reason: Rejection) -> Hostile {
    let code = match reason {
        Rejection::Expired => "TOKEN_EXPIRED",
        _ => "INVALID_TOKEN",
    };
    Hostile {
        case,
        token,
        code,
        reason,
    }
}

/// Good claims with `changes` applied; a `null` removes the claim.
fn claims_with(changes: Value) -> Value {
    let mut claims = claims(USER);
    let object = claims.as_object_mut().unwrap();
    for (name, value) in changes.as_object().unwrap() {
        match value {
            Value::Null => object.remove(name),
            value => object.insert(name.clone(), value.clone()),
        };
    }
    claims
}

/// Tokens with a bad claim, signed with the published key.
fn bad_claims(key: &TestKey) -> Vec<Hostile> {
    use Rejection::*;
    let now = chrono::Utc::now().timestamp();
    let signed = |changes: Value| key.sign(&claims_with(changes));
    vec![
        hostile("expired", signed(json!({"exp": now - 3600})), Expired),
        hostile(
            "not yet valid",
            signed(json!({"nbf": now + 3600})),
            NotYetValid,
        ),
        hostile(
            "wrong issuer",
            signed(json!({"iss": "https://evil.invalid/"})),
            WrongIssuer,
        ),
        hostile("no issuer", signed(json!({"iss": null})), Malformed),
        hostile(
            "wrong audience",
            signed(json!({"aud": "another-app"})),
            WrongAudience,
        ),
        hostile("no audience", signed(json!({"aud": null})), Malformed),
        hostile("no subject", signed(json!({"sub": null})), NoSubject),
        hostile("empty subject", signed(json!({"sub": ""})), NoSubject),
        hostile("blank subject", signed(json!({"sub": "  "})), NoSubject),
        hostile("numeric subject", signed(json!({"sub": 42})), NoSubject),
        hostile("no expiry", signed(json!({"exp": null})), Malformed),
    ]
}

/// Tokens whose algorithm, key or signature is wrong, and plain garbage.
fn bad_signatures(key: &TestKey, ec: &TestKey) -> Vec<Hostile> {
    use Rejection::*;
    let good = key.sign(&claims(USER));
    let parts: Vec<&str> = good.split('.').collect();
    let signature = parts[2];
    let none = json!({"alg": "none", "kid": key.kid, "typ": "JWT"});
    let rs256 = json!({"alg": "RS256", "kid": key.kid});
    let critical = json!({"alg": "RS256", "kid": key.kid, "crit": ["b64"], "b64": false});
    let confused = hs256(&claims(USER), RSA_A_PUBLIC.as_bytes(), Some(&key.kid));
    let es256_on_rsa = ec.sign_as(&claims(USER), Algorithm::ES256, Some(&key.kid));
    let rs384 = key.sign_as(&claims(USER), Algorithm::RS384, Some(&key.kid));
    let unpublished = TestKey::rsa_b(&key.kid).sign(&claims(USER));
    vec![
        hostile("alg none", forge(&none, &claims(USER), ""), WrongAlgorithm),
        hostile(
            "alg none, signed",
            forge(&none, &claims(USER), signature),
            WrongAlgorithm,
        ),
        hostile(
            "HS256 with the public key as secret",
            confused,
            WrongAlgorithm,
        ),
        hostile("ES256 naming an RSA key id", es256_on_rsa, WrongAlgorithm),
        hostile("RS384, not accepted", rs384, WrongAlgorithm),
        hostile("signed by an unpublished key", unpublished, BadSignature),
        hostile(
            "claims changed",
            forge(&rs256, &claims("mallory"), signature),
            BadSignature,
        ),
        hostile(
            "signature stripped",
            format!("{}.{}.", parts[0], parts[1]),
            BadSignature,
        ),
        hostile(
            "critical extension",
            forge(&critical, &claims(USER), signature),
            Malformed,
        ),
        hostile("garbage", "garbage".to_owned(), Malformed),
        hostile("three dots", "a.b.c".to_owned(), Malformed),
        hostile("empty parts", "..".to_owned(), Malformed),
        hostile(
            "header not JSON",
            "bm90IGpzb24.e30.c2ln".to_owned(),
            Malformed,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_token_gets_its_code_and_reason_and_touches_no_data() {
    let key = TestKey::rsa_a("rsa-a");
    let ec = TestKey::ec_a("ec-a");
    let server = KeyServer::start(jwks(&[&key, &ec])).await;
    let app = app_with_jwks(&server, |_| {}).await;
    let cases = bad_claims(&key)
        .into_iter()
        .chain(bad_signatures(&key, &ec));

    for Hostile {
        case,
        token,
        code,
        reason,
    } in cases
    {
        let before = app.auth_metrics.rejected(reason);
        for response in [
            read(&app, bearer(&token), &[]).await,
            write(&app, bearer(&token), &[]).await,
        ] {
            let body = json_body(response, StatusCode::UNAUTHORIZED).await;
            assert_eq!(body["code"], json!(code), "{case}: {body}");
        }
        let counted = app.auth_metrics.rejected(reason) - before;
        assert_eq!(counted, 2, "{case}: not refused as {}", reason.reason());
    }

    assert_eq!(stored_for(&app, &key.sign(&claims(USER))).await, 0);
    assert_eq!(stored_for(&app, &key.sign(&claims("mallory"))).await, 0);
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_outside_the_authorization_header_are_not_read() {
    let key = TestKey::rsa_a("rsa-a");
    let server = KeyServer::start(jwks(&[&key])).await;
    let app = app_with_jwks(&server, |_| {}).await;
    let good = key.sign(&claims(USER));

    for name in ["token", "access_token", "jwt", "authorization"] {
        let query = [(name, good.as_str())];
        expect_refused(
            &app,
            HeaderMap::new(),
            &query,
            StatusCode::UNAUTHORIZED,
            "NO_TOKEN",
        )
        .await;
    }
    for cookie in [
        format!("token={good}"),
        format!("access_token={good}"),
        format!("Authorization=Bearer {good}"),
    ] {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(&cookie).unwrap());
        expect_refused(&app, headers, &[], StatusCode::UNAUTHORIZED, "NO_TOKEN").await;
    }

    assert_eq!(stored_for(&app, &good).await, 0);
    assert_eq!(server.hits(), 1, "no refused request needed a key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_non_ascii_authorization_headers_are_invalid_token() {
    let key = TestKey::rsa_a("rsa-a");
    let server = KeyServer::start(jwks(&[&key])).await;
    let app = app_with_jwks(&server, |_| {}).await;
    let mut padded = claims(USER);
    padded["padding"] = json!("x".repeat(9 * 1024));
    let oversized = key.sign(&padded);
    let mut latin1 = b"Bearer ".to_vec();
    latin1.extend_from_slice(key.sign(&claims(USER)).as_bytes());
    latin1.extend_from_slice(b"\xe9\xff");

    let mut non_ascii = HeaderMap::new();
    non_ascii.insert(AUTHORIZATION, HeaderValue::from_bytes(&latin1).unwrap());
    let unauthorized = StatusCode::UNAUTHORIZED;
    expect_refused(&app, bearer(&oversized), &[], unauthorized, "INVALID_TOKEN").await;
    expect_refused(&app, non_ascii, &[], unauthorized, "INVALID_TOKEN").await;

    assert_eq!(app.auth_metrics.rejected(Rejection::Malformed), 4);
    assert_eq!(
        server.hits(),
        0,
        "a malformed header never reaches for a key"
    );
    assert_eq!(stored_for(&app, &key.sign(&claims(USER))).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_server_down_at_first_use_is_auth_unavailable_with_retry_after() {
    let key = TestKey::rsa_a("rsa-a");
    let server = KeyServer::start(jwks(&[&key])).await;
    server.stop().await;
    // The shared secret is configured too: it keeps working while the key server is down,
    // and lets the test look at the data.
    let app = app_with_jwks(&server, |settings| {
        settings.jwt_secret = Some(Secret::new(SECRET));
        settings.jwt_issuer = None;
        settings.jwt_audience = None;
    })
    .await;

    let rs256 = key.sign(&claims(USER));
    expect_refused(
        &app,
        bearer(&rs256),
        &[],
        StatusCode::SERVICE_UNAVAILABLE,
        "AUTH_UNAVAILABLE",
    )
    .await;

    assert_eq!(
        stored_for(&app, &token(USER)).await,
        0,
        "HS256 still works; nothing stored"
    );
    assert_eq!(
        app.auth_metrics.key_fetch_failures(),
        1,
        "one try within the interval"
    );
    assert_eq!(app.auth_metrics.rejected(Rejection::KeysUnavailable), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_server_that_recovers_is_used_again_without_a_restart() {
    let key = TestKey::rsa_a("rsa-a");
    let server = KeyServer::start(jwks(&[&key])).await;
    server.behave(Behaviour::Fail(500));
    let app = app_with_jwks(&server, |settings| {
        settings.jwt_jwks_min_refresh_seconds = 1;
    })
    .await;
    let token = key.sign(&claims(USER));

    let refused = read(&app, bearer(&token), &[]).await;
    let failed_at = Instant::now();
    assert_eq!(refused.headers()[RETRY_AFTER], "5");
    expect_error(refused, StatusCode::SERVICE_UNAVAILABLE, "AUTH_UNAVAILABLE").await;
    server.behave(Behaviour::Serve);
    // Within the one-second interval the key server is left alone, even though it is back.
    let early = read(&app, bearer(&token), &[]).await;
    if failed_at.elapsed() < Duration::from_millis(900) {
        expect_error(early, StatusCode::SERVICE_UNAVAILABLE, "AUTH_UNAVAILABLE").await;
        assert_eq!(server.hits(), 1);
    }
    tokio::time::sleep(Duration::from_millis(1_100).saturating_sub(failed_at.elapsed())).await;

    assert_eq!(stored_for(&app, &token).await, 0);
    assert_eq!(server.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_key_keeps_working_while_the_key_server_is_down() {
    let key = TestKey::rsa_a("rsa-a");
    let server = KeyServer::start(jwks(&[&key])).await;
    let app = app_with_jwks(&server, |_| {}).await;
    let token = key.sign(&claims(USER));
    expect_accepted(&app, &token).await;

    server.stop().await;

    let body = json_body(write(&app, bearer(&token), &[]).await, StatusCode::OK).await;
    assert_eq!(body["synced"], 1);
    assert_eq!(stored_for(&app, &token).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_key_server_is_given_up_after_the_fetch_timeout() {
    let key = TestKey::rsa_a("rsa-a");
    let server = KeyServer::start(jwks(&[&key])).await;
    server.behave(Behaviour::Hang);
    let app = app_with_jwks(&server, |settings| {
        settings.jwt_jwks_timeout_seconds = 1;
    })
    .await;

    let started = Instant::now();
    let response = read(&app, bearer(&key.sign(&claims(USER))), &[]).await;

    expect_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "AUTH_UNAVAILABLE",
    )
    .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "answered before the timeout: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "the timeout was not applied: {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pem_public_key_verifies_its_own_tokens_only() {
    let key = TestKey::rsa_a("any-kid");
    let ec = TestKey::ec_a("ec-a");
    for pem in [rsa_a_public_path(), RSA_A_PUBLIC.to_owned()] {
        let app = TestApp::spawn_with_settings(TestStore::Sqlite, |settings| {
            settings.jwt_secret = None;
            settings.jwt_public_key_pem = Some(pem);
        })
        .await;
        let good = key.sign(&claims(USER));
        let unauthorized = StatusCode::UNAUTHORIZED;

        let forged = [
            hs256(&claims(USER), RSA_A_PUBLIC.as_bytes(), None),
            TestKey::rsa_b("any-kid").sign(&claims(USER)),
            ec.sign(&claims(USER)),
            token(USER),
        ];
        for token in forged {
            expect_refused(&app, bearer(&token), &[], unauthorized, "INVALID_TOKEN").await;
        }
        assert_eq!(stored_for(&app, &good).await, 0);
        let no_kid = key.sign_as(&claims(USER), Algorithm::RS256, None);
        expect_accepted(&app, &no_kid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_secret_and_a_key_server_each_token_is_checked_by_its_algorithm() {
    let key = TestKey::rsa_a("rsa-a");
    let server = KeyServer::start(jwks(&[&key])).await;
    let app = app_with_jwks(&server, |settings| {
        settings.jwt_secret = Some(Secret::new(SECRET));
        settings.jwt_issuer = None;
        settings.jwt_audience = None;
    })
    .await;

    expect_accepted(&app, &token(USER)).await;
    expect_accepted(&app, &key.sign(&claims(USER))).await;
    let confused = hs256(&claims(USER), RSA_A_PUBLIC.as_bytes(), Some("rsa-a"));
    let unauthorized = StatusCode::UNAUTHORIZED;
    expect_refused(&app, bearer(&confused), &[], unauthorized, "INVALID_TOKEN").await;

    assert_eq!(app.auth_metrics.rejected(Rejection::BadSignature), 2);
    assert_eq!(stored_for(&app, &token(USER)).await, 0);
}
