//! The OpenAPI document (`openapi/openapi.json`) against the code.
//!
//! The routes are read from the routers' source (`functions/*/src/**/*.rs` and
//! `functions/*/*/src/**/*.rs` for a package inside a function's, but `src/bin/`,
//! which holds benchmark baselines, not the API: every
//! `.route("PATH", get(a).post(b))`); axum writes path parameters as `{id}`, like OpenAPI, so the
//! paths compare as they are. Every routed operation must be documented and every documented
//! operation routed, so a new endpoint without documentation fails here. An operation whose
//! handler takes `AuthUser`/`AdminUser`/`GateUser` must require the bearer scheme; one whose handler takes
//! `Buyer` (an optional caller) must offer it next to anonymous access (`{}`); any other must
//! declare `security: []`. The error answers each kind of operation can give must
//! be documented with the `Error` body. schemathesis (`scripts/schemathesis.sh`) then checks the
//! running server against the same document.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use api_tests::TestServer;
use regex_lite::Regex;
use serde_json::Value;

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn document() -> Value {
    let text = std::fs::read_to_string(root().join("openapi/openapi.json")).expect("openapi/openapi.json");
    serde_json::from_str(&text).expect("openapi/openapi.json is JSON")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() && path.file_name().is_some_and(|n| n != "bin") {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text of the call's arguments: from just after `open` (an opening parenthesis) to its
/// matching closing one, skipping string literals.
fn call_args(src: &str, open: usize) -> &str {
    let bytes = src.as_bytes();
    let (mut depth, mut i, mut in_str) = (1usize, open + 1, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            b'(' if !in_str => depth += 1,
            b')' if !in_str => {
                depth -= 1;
                if depth == 0 {
                    return &src[open + 1..i];
                }
            }
            _ => {}
        }
        i += 1;
    }
    panic!("unbalanced parentheses after byte {open}")
}

/// Who may call an operation, read from its handler's extractors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// `AuthUser`/`AdminUser`/`GateUser`: a valid bearer token is required.
    Required,
    /// `Buyer`: anonymous, a bearer token (valid when sent) or a reservation token.
    Optional,
    /// Nobody is identified (public, or a gateway's own signature).
    None,
}

/// One routed operation: where it is and who may call it.
#[derive(Debug)]
struct Routed {
    file: String,
    auth: Auth,
}

/// Every routed `(METHOD, path)` of every endpoint group.
fn routes() -> BTreeMap<(String, String), Routed> {
    let route = Regex::new(r"\.route\(\s*").unwrap();
    let path_lit = Regex::new(r#"^\s*"([^"]+)"\s*,"#).unwrap();
    let method =
        Regex::new(r"(?:^|[^A-Za-z0-9_])(get|put|post|delete|options|head|patch|trace)\s*\(").unwrap();
    let mut found = BTreeMap::new();
    // Each function's package, and a package of its own inside one (the deals group's
    // handlers, `functions/deals/api`).
    let packages = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.join("Cargo.toml").is_file())
            .collect()
    };
    let mut dirs: Vec<PathBuf> = packages(&root().join("functions"))
        .into_iter()
        .flat_map(|p| {
            let mut inner = packages(&p);
            inner.push(p);
            inner
        })
        .map(|p| p.join("src"))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        let sources: Vec<(PathBuf, String)> = files
            .into_iter()
            .map(|f| (f.clone(), std::fs::read_to_string(&f).expect("read source")))
            .collect();
        for (file, src) in &sources {
            let name = file.strip_prefix(root()).unwrap_or(file).display().to_string();
            assert!(
                !src.contains(".nest("),
                "{name}: nested routers are not read by this test; use full paths"
            );
            for m in route.find_iter(src) {
                let args = call_args(src, m.start() + ".route".len());
                let path = path_lit
                    .captures(args)
                    .unwrap_or_else(|| panic!("{name}: a route whose path is not a string literal: {args}"))
                    [1]
                .to_owned();
                let mut methods = 0;
                for c in method.captures_iter(args) {
                    let verb = c.get(1).unwrap();
                    let handler_args = call_args(args, verb.end() + args[verb.end()..].find('(').unwrap());
                    let auth = handler_auth(handler_args.trim(), &sources);
                    let key = (verb.as_str().to_uppercase(), path.clone());
                    let prev = found.insert(key.clone(), Routed { file: name.clone(), auth });
                    assert!(prev.is_none(), "{key:?} is routed twice");
                    methods += 1;
                }
                assert!(methods > 0, "{name}: no method router found in route {path}");
            }
        }
    }
    found
}

/// Who may call the handler (a function name or path, or a closure), from its extractors.
fn handler_auth(handler: &str, sources: &[(PathBuf, String)]) -> Auth {
    let takes = |sig: &str| {
        if sig.contains("AuthUser") || sig.contains("AdminUser") || sig.contains("GateUser") {
            Auth::Required
        } else if Regex::new(r"\bBuyer\b").unwrap().is_match(sig) {
            Auth::Optional
        } else {
            Auth::None
        }
    };
    // A generic handler (`answer::<true>`) is read at its declaration.
    let handler = handler.split("::<").next().unwrap_or(handler);
    let is_path = handler.chars().all(|c| c.is_alphanumeric() || c == '_' || c == ':');
    if !is_path {
        return takes(handler);
    }
    let fn_name = handler.rsplit("::").next().unwrap_or(handler);
    let decl = Regex::new(&format!(r"fn\s+{fn_name}\s*[(<]")).unwrap();
    for (_, src) in sources {
        if let Some(m) = decl.find(src) {
            // The parameters, which may destructure a struct (`On { app, .. }: On<AuthUser, i64>`).
            let params = call_args(src, m.start() + src[m.start()..].find('(').expect("a parameter list"));
            return takes(params);
        }
    }
    panic!("handler {handler} not found in its group's source")
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m).is_some() {
                ops.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    &doc["paths"][path][method.to_lowercase()]
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let target =
                doc.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("dangling $ref {r}"));
            resolve(doc, target)
        }
        None => v,
    }
}

#[test]
fn every_route_is_documented_and_every_operation_is_routed() {
    let doc = document();
    let routed = routes();
    let documented = documented(&doc);
    assert!(routed.len() >= 17, "the route scan found too little: {routed:?}");
    let missing: Vec<_> = routed.keys().filter(|k| !documented.contains(*k)).collect();
    assert!(missing.is_empty(), "routed but not in openapi/openapi.json: {missing:?}");
    let stale: Vec<_> = documented.iter().filter(|k| !routed.contains_key(*k)).collect();
    assert!(stale.is_empty(), "in openapi/openapi.json but not routed: {stale:?}");
}

#[test]
fn the_document_is_openapi_3_1_and_every_ref_resolves() {
    let doc = document();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "openapi: 3.1.x");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    fn walk(doc: &Value, v: &Value) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    assert!(r.starts_with("#/") && doc.pointer(&r[1..]).is_some(), "dangling $ref {r}");
                }
                map.values().for_each(|x| walk(doc, x));
            }
            Value::Array(items) => items.iter().for_each(|x| walk(doc, x)),
            _ => {}
        }
    }
    walk(&doc, &doc);
    let mut ids = BTreeSet::new();
    for (method, path) in documented(&doc) {
        let op = operation(&doc, &method, &path);
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
        assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
        // Every `{param}` of the path is declared, on the path item or the operation.
        let declared: BTreeSet<String> = [&doc["paths"][&path]["parameters"], &op["parameters"]]
            .into_iter()
            .filter_map(Value::as_array)
            .flatten()
            .map(|p| resolve(&doc, p))
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        let in_path: BTreeSet<String> =
            Regex::new(r"\{([^}]+)\}").unwrap().captures_iter(&path).map(|c| c[1].to_owned()).collect();
        assert_eq!(declared, in_path, "{method} {path}: path parameters");
    }
}

#[test]
fn security_matches_the_handlers_and_errors_are_documented() {
    let doc = document();
    let global_bearer =
        doc["security"].as_array().is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
    for ((method, path), routed) in routes() {
        let op = operation(&doc, &method, &path);
        let documented = match op.get("security").and_then(Value::as_array) {
            Some(reqs) => {
                let bearer = reqs.iter().any(|r| r.get("bearer").is_some());
                let anonymous = reqs.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty()));
                match (bearer, anonymous || reqs.is_empty()) {
                    (true, false) => Auth::Required,
                    (true, true) => Auth::Optional,
                    (false, _) => Auth::None,
                }
            }
            None if global_bearer => Auth::Required,
            None => Auth::None,
        };
        assert_eq!(
            documented, routed.auth,
            "{method} {path} ({}): the document's security differs from the handler's extractors",
            routed.file
        );
        let responses =
            op["responses"].as_object().unwrap_or_else(|| panic!("{method} {path}: no responses"));
        let success: Vec<_> = responses.keys().filter(|s| s.starts_with('2') || s.starts_with('3')).collect();
        assert!(!success.is_empty(), "{method} {path}: no 2xx or 3xx response");
        let mut needed: Vec<&str> = Vec::new();
        if routed.auth != Auth::None {
            needed.push("401");
        }
        if path.contains('{') {
            needed.extend(["400", "404"]);
        }
        if op.get("requestBody").is_some() {
            needed.extend(["400", "413", "415", "422"]);
        }
        for status in needed {
            assert!(responses.contains_key(status), "{method} {path}: {status} is not documented");
        }
        for (status, response) in responses {
            // Errors are the JSON `Error` body (a gateway callback may answer its gateway's
            // own text instead).
            if status.starts_with('4') || status.starts_with('5') {
                let content = &resolve(&doc, response)["content"];
                match content.get("application/json") {
                    Some(json) => assert_eq!(
                        json["schema"]["$ref"], "#/components/schemas/Error",
                        "{method} {path}: {status} must use the Error body"
                    ),
                    None => assert!(
                        path.starts_with("/api/v1/gateways/")
                            && content.as_object().is_some_and(|c| !c.is_empty()),
                        "{method} {path}: {status} must use the Error body"
                    ),
                }
            }
        }
    }
}

#[tokio::test]
async fn the_local_server_serves_the_document() {
    let srv = TestServer::memory().await;
    let res = srv.http.get(srv.url("/openapi.json")).send().await.expect("request");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let served: Value = res.json().await.expect("JSON");
    assert_eq!(served, document());
}

/// The `Error` schema describes what `ApiError` actually writes, for every variant.
#[test]
fn the_error_schema_matches_the_error_body() {
    use shared::ApiError;
    let doc = document();
    let schema = &doc["components"]["schemas"]["Error"];
    let codes: BTreeSet<&str> = schema["properties"]["error"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(Value::as_str)
        .collect();
    let required: BTreeSet<&str> =
        schema["required"].as_array().unwrap().iter().flat_map(Value::as_str).collect();
    let all = [
        ApiError::bad_request("f", "m"),
        ApiError::Unauthorized("m".into()),
        ApiError::Forbidden("m".into()),
        ApiError::NotFound("m".into()),
        ApiError::Conflict("m".into()),
        ApiError::TooMany { field: "f".into(), message: "m".into(), retry_after: 1 },
        ApiError::PayloadTooLarge,
        ApiError::UnsupportedMediaType,
        ApiError::invalid("f", "m"),
        ApiError::Gateway("m".into()),
        ApiError::Unavailable("m".into()),
        ApiError::Internal("m".into()),
    ];
    assert_eq!(codes.len(), all.len(), "one code per ApiError variant");
    for e in all {
        assert!(codes.contains(e.code()), "{} is not in the Error schema's codes", e.code());
        let body = e.body();
        let keys: BTreeSet<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, required, "{}: body keys", e.code());
    }
}

/// Every documented operation that takes a body refuses one past `MAX_BODY_BYTES` with the
/// API's JSON 413, whatever reads it (a JSON body, a gateway's form): the limit is the body
/// extractors' own, so a handler reading its body any other way (axum's `Bytes`, whose refusal
/// is plain text) fails here. Sent with a token of every role, path parameters at their first
/// documented value (or `1`), the body announced by its length and, once more, chunked.
#[tokio::test]
async fn every_body_past_the_limit_is_a_json_413() {
    let doc = document();
    let mut config = shared::Config::for_tests();
    config.jwt.secret = api_tests::SECRET.into();
    config.max_body_bytes = 1024;
    let srv = TestServer::start_with(shared::App::new(api_tests::memory_store(), config)).await;
    let tok = api_tests::token("1", &["admin", "manager", "gate"]);
    let param = Regex::new(r"\{([^}]+)\}").unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            let Some(body) = op.get("requestBody") else { continue };
            let body = resolve(&doc, body);
            let kind =
                body["content"].as_object().and_then(|c| c.keys().next().cloned()).expect("a content type");
            let params: Vec<Value> = [item.get("parameters"), op.get("parameters")]
                .into_iter()
                .flatten()
                .flat_map(|p| p.as_array().cloned().unwrap_or_default())
                .map(|p| resolve(&doc, &p).clone())
                .collect();
            let url = param.replace_all(path, |c: &regex_lite::Captures| {
                params
                    .iter()
                    .find(|p| p["in"] == "path" && p["name"] == c[1])
                    .and_then(|p| resolve(&doc, &p["schema"])["enum"][0].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "1".into())
            });
            for chunked in [false, true] {
                let big = vec![b' '; 1025];
                let req = srv
                    .http
                    .request(m.to_uppercase().parse().unwrap(), srv.url(&url))
                    .bearer_auth(&tok)
                    .header("content-type", &kind);
                let req = if chunked {
                    req.body(reqwest::Body::wrap_stream(futures_iter(big)))
                } else {
                    req.body(big)
                };
                let res = req.send().await.expect("request");
                let status = res.status().as_u16();
                let text = res.text().await.expect("body");
                let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                assert_eq!(
                    (status, json["error"]["code"].as_str()),
                    (413, Some("payload_too_large")),
                    "{m} {url} ({kind}, chunked: {chunked}): {text}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} operations take a body");
}

/// A body sent as a stream of two chunks (no length).
fn futures_iter(bytes: Vec<u8>) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let (a, b) = bytes.split_at(bytes.len() / 2);
    futures::stream::iter([Ok(a.to_vec()), Ok(b.to_vec())])
}
