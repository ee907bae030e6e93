//! Robokassa's payment-link and ResultURL signatures against an independent implementation:
//! the public aiorobokassa library (PyPI, pinned in `scripts/requirements.txt`, installed in
//! the project's `.venv`). Two hundred inputs, generated from a fixed seed, go to one
//! Python process as JSON; it answers with aiorobokassa's `calculate_payment_signature` and
//! `verify_result_url_signature` for each, which must agree with ours (hex compared without
//! regard to case: aiorobokassa writes upper case, we write lower case).
//!
//! The inputs vary the login, the passwords (Latin, digits, punctuation, Cyrillic), OutSum
//! (two decimals), InvId (sometimes absent from the link), the hash (md5, sha256, sha512)
//! and up to five `Shp_` pairs whose keys and values mix upper and lower case, digits,
//! underscores, Cyrillic and other non-ASCII text, so that both the UTF-8 bytes and the
//! order of the pairs (sorted by key) are checked.
//!
//! Without `.venv/bin/python`, or with a venv that lacks aiorobokassa, the test is skipped,
//! unless `REQUIRE_MOTO=1` (as under `make test`, which builds the venv first): then it fails.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use shared::payments::gateways::robokassa::{Config, HashAlg, link_signature, result_signature};

const CASES: usize = 200;
const SEED: u64 = 20_260_412;

/// aiorobokassa's side: reads the cases (JSON on stdin), writes one answer per case.
const PYTHON: &str = r#"
import json, sys
cases = json.loads(sys.stdin.buffer.read().decode("utf-8"))
try:
    from aiorobokassa.utils.signature import calculate_payment_signature, verify_result_url_signature
except ImportError as e:
    print(f"aiorobokassa is not importable: {e}", file=sys.stderr)
    sys.exit(3)
out = []
for c in cases:
    shp = c["shp"] or None
    out.append({
        "link": calculate_payment_signature(c["login"], c["out_sum"], c["inv_id"] or None, c["password1"],
                                            algorithm=c["alg"], shp_params=shp),
        "result_ours": verify_result_url_signature(c["out_sum"], c["result_inv_id"], c["password2"], c["result"],
                                                   algorithm=c["alg"], shp_params=shp),
        "result_altered": verify_result_url_signature(c["out_sum"], c["result_inv_id"], c["password2"],
                                                      c["result_altered"], algorithm=c["alg"], shp_params=shp),
    })
sys.stdout.write(json.dumps(out))
"#;

/// SplitMix64: a tiny generator whose sequence is fixed by its seed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// `min..=max` characters drawn from `alphabet`.
    fn text(&mut self, alphabet: &str, min: u64, max: u64) -> String {
        let chars: Vec<char> = alphabet.chars().collect();
        (0..min + self.below(max - min + 1)).map(|_| *self.pick(&chars)).collect()
    }
}

const LATIN: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const CYRILLIC: &str = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ";
const PUNCT: &str = " -_.,;!?@#$%&*()+=/[]{}~\"'|\\:";
const OTHER: &str = "€№«»—ü😀";

const SHP_KEYS: &[&str] = &[
    "payment_id",
    "login",
    "oplata",
    "a",
    "B",
    "Z1",
    "_x",
    "order",
    "item_2",
    "item_10",
    "город",
    "Ключ",
    "ё",
    "Ё",
    "key😀",
];

struct Case {
    login: String,
    password1: String,
    password2: String,
    alg: HashAlg,
    out_sum: String,
    /// The link's InvId; empty when the link has none.
    inv_id: String,
    /// The ResultURL's InvId (always present there).
    result_inv_id: String,
    /// `Shp_` pairs, keys without the prefix.
    shp: BTreeMap<String, String>,
}

fn case(g: &mut Gen) -> Case {
    let login = match g.below(4) {
        0 => g.pick(&["demo", "robo-demo", "test", "shop_1"]).to_string(),
        _ => g.text(&format!("{LATIN}_-"), 3, 20),
    };
    let mut password = || match g.below(5) {
        0 => g.text(&format!("{LATIN}{CYRILLIC}{PUNCT}"), 1, 40),
        1 => g.text(&format!("{LATIN}{PUNCT}"), 8, 32),
        _ => g.text(LATIN, 8, 24),
    };
    let (password1, password2) = (password(), password());
    let alg = match g.below(10) {
        0..=6 => HashAlg::Md5,
        7 | 8 => HashAlg::Sha256,
        _ => HashAlg::Sha512,
    };
    let rubles = match g.below(4) {
        0 => g.below(10),
        1 => g.below(1_000),
        2 => g.below(100_000),
        _ => g.below(100_000_000),
    };
    let out_sum = format!("{rubles}.{:02}", g.below(100));
    let result_inv_id = (1 + g.below(9_999_999_999)).to_string();
    let inv_id = if g.below(10) == 0 { String::new() } else { result_inv_id.clone() };
    let mut shp = BTreeMap::new();
    for _ in 0..g.below(6) {
        let key = match g.below(3) {
            0 => g.text(&format!("{LATIN}_{CYRILLIC}"), 1, 12),
            _ => g.pick(SHP_KEYS).to_string(),
        };
        let value = match g.below(4) {
            0 => g.text(LATIN, 0, 36),
            1 => g.text(CYRILLIC, 1, 20),
            _ => g.text(&format!("{LATIN}{CYRILLIC}{PUNCT}{OTHER}"), 0, 40),
        };
        shp.insert(key, value);
    }
    Case { login, password1, password2, alg, out_sum, inv_id, result_inv_id, shp }
}

fn alg_name(a: HashAlg) -> &'static str {
    match a {
        HashAlg::Md5 => "MD5",
        HashAlg::Sha256 => "SHA256",
        HashAlg::Sha512 => "SHA512",
    }
}

/// The same signature with its first hex digit changed.
fn altered(sig: &str) -> String {
    let first = if sig.starts_with('0') { '1' } else { '0' };
    format!("{first}{}", &sig[1..])
}

/// The project's venv Python, or `None` (skip) when there is none.
fn venv_python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if python.exists() {
        return Some(python);
    }
    if std::env::var("REQUIRE_MOTO").is_ok_and(|v| v == "1") {
        panic!("REQUIRE_MOTO=1 but {} is missing: run scripts/venv.sh", python.display());
    }
    eprintln!("skipped: {} is missing (scripts/venv.sh creates it)", python.display());
    None
}

#[test]
fn signatures_agree_with_aiorobokassa() {
    let Some(python) = venv_python() else { return };
    let mut g = Gen(SEED);
    let cases: Vec<Case> = (0..CASES).map(|_| case(&mut g)).collect();
    let ours: Vec<(String, String)> = cases
        .iter()
        .map(|c| {
            let config = Config {
                login: c.login.clone(),
                password1: c.password1.clone(),
                password2: c.password2.clone(),
                hash: c.alg,
                ..Config::default()
            };
            let shp: BTreeMap<String, String> =
                c.shp.iter().map(|(k, v)| (format!("Shp_{k}"), v.clone())).collect();
            (
                link_signature(&config, &c.out_sum, &c.inv_id, &shp),
                result_signature(&config, &c.out_sum, &c.result_inv_id, &shp),
            )
        })
        .collect();
    let input: Vec<Value> = cases
        .iter()
        .zip(&ours)
        .map(|(c, (_, result))| {
            json!({
                "login": c.login,
                "password1": c.password1,
                "password2": c.password2,
                "alg": alg_name(c.alg),
                "out_sum": c.out_sum,
                "inv_id": c.inv_id,
                "result_inv_id": c.result_inv_id,
                "shp": c.shp,
                "result": result,
                "result_altered": altered(result),
            })
        })
        .collect();

    let mut child = Command::new(&python)
        .arg("-c")
        .arg(PYTHON)
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
    let mut stdin = child.stdin.take().expect("stdin");
    let body = serde_json::to_vec(&input).expect("cases as JSON");
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child.wait_with_output().expect("wait for python");
    let written = writer.join().expect("writer thread");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    if out.status.code() == Some(3) {
        if std::env::var("REQUIRE_MOTO").is_ok_and(|v| v == "1") {
            panic!("REQUIRE_MOTO=1 but {stderr}: run scripts/venv.sh");
        }
        eprintln!("skipped: {stderr} (scripts/venv.sh installs it)");
        return;
    }
    assert!(out.status.success(), "python failed: {}\n{stderr}", out.status);
    written.expect("write the cases");
    let answers: Vec<Value> = serde_json::from_slice(&out.stdout).expect("python's answer is JSON");
    assert_eq!(answers.len(), CASES);

    let mut failures = Vec::new();
    let mut bad_cases = 0;
    let mut shp_pairs = 0;
    let mut without_inv = 0;
    for (i, ((c, (link, result)), theirs)) in cases.iter().zip(&ours).zip(&answers).enumerate() {
        let before = failures.len();
        shp_pairs += c.shp.len();
        without_inv += usize::from(c.inv_id.is_empty());
        let their_link = theirs["link"].as_str().expect("link signature");
        if !their_link.eq_ignore_ascii_case(link) {
            failures.push(format!("case {i}: link signature ours {link}, aiorobokassa {their_link}"));
        }
        if theirs["result_ours"] != Value::Bool(true) {
            failures.push(format!("case {i}: aiorobokassa rejects our ResultURL signature {result}"));
        }
        if theirs["result_altered"] != Value::Bool(false) {
            failures.push(format!("case {i}: aiorobokassa accepts an altered ResultURL signature"));
        }
        bad_cases += usize::from(failures.len() > before);
        if failures.len() > before && before < 12 {
            let shp: Vec<_> = c.shp.iter().collect();
            failures.push(format!(
                "  inputs: login {:?}, OutSum {:?}, InvId {:?}/{:?}, {}, Shp {shp:?}",
                c.login,
                c.out_sum,
                c.inv_id,
                c.result_inv_id,
                alg_name(c.alg)
            ));
        }
    }
    assert!(failures.is_empty(), "{bad_cases} of {CASES} inputs disagree:\n{}", failures.join("\n"));
    // The generator covers what it claims to.
    assert!(shp_pairs > CASES, "only {shp_pairs} Shp pairs");
    assert!(without_inv > 0, "no link without InvId");
    assert!(cases.iter().any(|c| c.shp.len() >= 3), "no case with several Shp pairs");
    assert!(cases.iter().any(|c| c.shp.keys().any(|k| !k.is_ascii())), "no non-ASCII Shp key");
    for alg in [HashAlg::Md5, HashAlg::Sha256, HashAlg::Sha512] {
        assert!(cases.iter().any(|c| c.alg == alg), "no {} case", alg_name(alg));
    }
    eprintln!(
        "{CASES} inputs ({shp_pairs} Shp pairs, {without_inv} links without InvId): aiorobokassa agrees"
    );
}
