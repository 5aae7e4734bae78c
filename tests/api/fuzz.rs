//! A property test over generated requests: filters nested and combined at random (within
//! and past the limits), as literals and as variables, with hostile strings (NUL, wildcards,
//! non-ASCII, overlong), odd date-times and page sizes, and patches with variables left out.
//! For every request: no 5xx, a JSON answer, and every error with an `extensions.code`; at
//! the end the server still answers.
//!
//! The cases are drawn from a seeded generator, so a run is reproducible: `FUZZ_SEED` picks
//! the seed (default 1) and `FUZZ_CASES` the number of cases (default 300; CI runs the
//! default on both databases).
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use crate::common::spawn_app;

const STRINGS: &[&str] = &[
    "",
    "a",
    "mueller",
    "\u{0}",
    "ab\u{0}cd",
    "Ärzte",
    "ÉNERGIE",
    "%_\\",
    "'; DROP TABLE contacts; --",
    "\"quoted\"",
    "🦀 emoji",
    "+1 650 253 0000 x136",
    "+49 151 2345 6789",
    "VIP",
];

const DATE_TIMES: &[&str] = &[
    "2026-01-01T00:00:00.000Z",
    "2026-03-28T23:30:00.0000001Z",
    "1969-12-31T23:59:59.9995+02:00",
    "not a date",
    "",
    "9999-12-31T23:59:59.999Z",
];

fn string(rng: &mut StdRng) -> Value {
    if rng.random_ratio(1, 15) {
        return Value::String("x".repeat(rng.random_range(200..400)));
    }
    Value::String(STRINGS[rng.random_range(0..STRINGS.len())].to_string())
}

fn date_range(rng: &mut StdRng) -> Value {
    let mut range = Map::new();
    for bound in ["gt", "gte", "lt", "lte"] {
        if rng.random_bool(0.4) {
            let text = DATE_TIMES[rng.random_range(0..DATE_TIMES.len())];
            range.insert(bound.into(), json!(text));
        }
    }
    Value::Object(range)
}

/// A contact filter, nested up to `depth` levels of `and`/`or`/`not`.
fn filter(rng: &mut StdRng, depth: u32) -> Value {
    let mut f = Map::new();
    let branches = if depth > 0 { rng.random_range(0..3) } else { 0 };
    for _ in 0..branches {
        match rng.random_range(0..3) {
            0 => {
                let n = rng.random_range(0..4);
                let list = (0..n).map(|_| filter(rng, depth - 1)).collect();
                f.insert("and".into(), Value::Array(list));
            }
            1 => {
                let n = if rng.random_ratio(1, 10) {
                    rng.random_range(100..700)
                } else {
                    rng.random_range(0..4)
                };
                let list = (0..n).map(|_| filter(rng, 0)).collect();
                f.insert("or".into(), Value::Array(list));
            }
            _ => {
                f.insert("not".into(), filter(rng, depth - 1));
            }
        }
    }
    for _ in 0..rng.random_range(1..4) {
        let (name, value) = match rng.random_range(0..9) {
            0 => ("search", string(rng)),
            1 => ("email", string(rng)),
            2 => ("phone", string(rng)),
            3 => ("tag", string(rng)),
            4 => ("tagsAny", json!([string(rng), string(rng)])),
            5 => ("isTestContact", json!(rng.random_bool(0.5))),
            6 => ("accountId", string(rng)),
            7 => ("lastMessageAt", date_range(rng)),
            _ => ("updatedAt", date_range(rng)),
        };
        f.insert(name.into(), value);
    }
    Value::Object(f)
}

/// `value` written as a GraphQL literal (input object fields unquoted).
fn literal(value: &Value) -> String {
    match value {
        Value::Object(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k}: {}", literal(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(literal).collect();
            format!("[{}]", inner.join(", "))
        }
        other => other.to_string(),
    }
}

fn page_size(rng: &mut StdRng) -> String {
    ["0", "1", "20", "100", "101", "-1", "2147483648", "null"][rng.random_range(0..8)].to_string()
}

/// One generated request: (query, variables).
fn request(rng: &mut StdRng, contact: &str) -> (String, Value) {
    match rng.random_range(0..5) {
        0 | 1 => {
            let depth = if rng.random_ratio(1, 8) {
                rng.random_range(10..40)
            } else {
                rng.random_range(0..5)
            };
            let f = filter(rng, depth);
            let first = page_size(rng);
            if rng.random_bool(0.5) {
                (
                    format!(
                        "{{ contacts(first: {first}, filter: {}) {{ totalCount pageInfo {{ hasNextPage }} nodes {{ id }} }} }}",
                        literal(&f)
                    ),
                    json!({}),
                )
            } else {
                (
                    format!(
                        "query($f: ContactFilter) {{ contacts(first: {first}, filter: $f) {{ totalCount nodes {{ id name }} }} }}"
                    ),
                    json!({ "f": f }),
                )
            }
        }
        2 => {
            // List brackets nested far past any limit.
            let n = rng.random_range(1..3000);
            (
                format!(
                    "{{ contacts(filter: {{ tagsAny: {}\"a\"{} }}) {{ totalCount }} }}",
                    "[".repeat(n),
                    "]".repeat(n)
                ),
                json!({}),
            )
        }
        3 => {
            let mut variables = Map::new();
            variables.insert("id".into(), json!(contact));
            for name in ["first", "role", "phone", "last"] {
                if rng.random_bool(0.5) {
                    let value = if rng.random_ratio(1, 5) {
                        Value::Null
                    } else {
                        string(rng)
                    };
                    variables.insert(name.into(), value);
                }
            }
            (
                "mutation($id: ID!, $first: String, $role: String, $phone: String, $last: String) {
                   updateContact(input: { id: $id, patch: { firstName: $first, role: $role, phone: $phone, lastName: $last } }) { contact { id } } }".to_string(),
                Value::Object(variables),
            )
        }
        _ => {
            let first = page_size(rng);
            let range = date_range(rng);
            (
                format!(
                    "{{ duplicateContacts(first: {first}) {{ totalCount }} accounts(filter: {{ search: {}, updatedAt: {} }}) {{ totalCount }} }}",
                    string(rng),
                    literal(&range)
                ),
                json!({}),
            )
        }
    }
}

#[tokio::test]
async fn generated_requests_never_fail_the_server_and_always_carry_codes() {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let cases: usize = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let app = spawn_app().await;
    let contact = app.contact_ids(json!({ "search": "a" })).await[0].clone();
    let mut rng = StdRng::seed_from_u64(seed);
    let url = format!("{}/graphql", app.base_url);
    for case in 0..cases {
        let (query, variables) = request(&mut rng, &contact);
        let response = app
            .client
            .post(&url)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap_or_else(|err| panic!("case {case} (seed {seed}): no answer: {err}\n{query}"));
        let status = response.status();
        let text = response.text().await.expect("body");
        assert!(
            !status.is_server_error(),
            "case {case} (seed {seed}): HTTP {status}: {text}\n{query}\n{variables}"
        );
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("case {case}: not JSON: {text}"));
        for error in body["errors"].as_array().into_iter().flatten() {
            assert!(
                error["extensions"]["code"].is_string(),
                "case {case} (seed {seed}): an error without a code: {error}\n{query}\n{variables}"
            );
            assert_ne!(
                error["extensions"]["code"], "INTERNAL_SERVER_ERROR",
                "case {case} (seed {seed}): {error}\n{query}\n{variables}"
            );
        }
    }
    let alive = app.data("{ __typename }", json!({})).await;
    assert_eq!(alive["__typename"], "Query");
}
