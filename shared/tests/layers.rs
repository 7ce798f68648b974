//! The layering of `shared/src`, checked on the source: each module imports only
//! from the modules below it (see `ARCHITECTURE.md`), so no arrow runs back up and
//! no import cycle can form — between the top-level modules, and between the
//! files of `domain/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each top-level module and the modules it may import from.
const ALLOWED: &[(&str, &[&str])] = &[
    ("clock", &[]),
    ("aws", &[]),
    ("logging", &[]),
    ("log_markers", &[]),
    ("metrics", &[]),
    ("routes", &[]),
    ("secrets", &[]),
    ("domain", &[]),
    ("store", &["domain", "log_markers"]),
    ("fintoc", &["domain", "secrets"]),
    ("webhook", &["domain", "secrets", "fintoc"]),
    ("destinations", &["domain", "fintoc"]),
    ("http", &["domain", "store", "fintoc", "webhook"]),
    (
        "app",
        &[
            "domain",
            "store",
            "fintoc",
            "webhook",
            "destinations",
            "http",
            "secrets",
            "clock",
            "log_markers",
        ],
    ),
    (
        "config",
        &["app", "domain", "fintoc", "destinations", "secrets"],
    ),
    ("testkit", &["domain", "store"]),
];

fn sources(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            sources(&entry.unwrap().path(), out);
        }
    } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The identifiers that follow `prefix` in `text` (`crate::x` gives `x`).
fn names_after(text: &str, prefix: &str) -> BTreeSet<String> {
    text.match_indices(prefix)
        .map(|(i, _)| {
            text[i + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

fn imported_modules(text: &str) -> BTreeSet<String> {
    names_after(text, "crate::")
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for (module, allowed) in ALLOWED {
        let mut files = Vec::new();
        sources(&src.join(module), &mut files);
        sources(&src.join(format!("{module}.rs")), &mut files);
        assert!(!files.is_empty(), "module {module} has no source");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for used in imported_modules(&text) {
                let fine = used == *module
                    || allowed.contains(&used.as_str())
                    // The contract suite's macro, exported at the crate root.
                    || used == "store_contract_tests";
                if !fine {
                    violations.push(format!("{} uses crate::{used}", file.display()));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

/// The files of `domain/`, from the bottom: each imports only from those before it.
const DOMAIN_LAYERS: &[&str] = &[
    "error",
    "number",
    "refund_id",
    "refund",
    "money",
    "schedule",
    "payment",
    "report",
    "order",
    "deployment",
    "create",
    "idempotency",
    "payment_patch",
    "transition",
    "reconcile",
    "session",
    "merchant_event",
    "standard_webhooks",
    "delivery",
    "invariants",
    "resolution",
    "attention",
    "inspection",
    "fixtures",
];

/// The sibling modules a domain file names (`super::x`, `crate::domain::x`).
fn domain_imports(text: &str) -> BTreeSet<String> {
    let mut found = names_after(text, "super::");
    found.extend(names_after(text, "crate::domain::"));
    found
}

#[test]
fn no_domain_file_imports_from_one_above_it() {
    let domain = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    let mut violations = Vec::new();
    for (position, module) in DOMAIN_LAYERS.iter().enumerate() {
        let text = std::fs::read_to_string(domain.join(format!("{module}.rs"))).unwrap();
        for used in domain_imports(&text) {
            let below = DOMAIN_LAYERS[..position].contains(&used.as_str());
            if !below && used != *module {
                violations.push(format!("domain/{module}.rs uses domain::{used}"));
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn every_domain_file_has_a_layer() {
    let mod_rs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain/mod.rs"))
            .unwrap();
    for line in mod_rs.lines().filter_map(|l| l.strip_prefix("pub mod ")) {
        let module = line.trim_end_matches(';');
        assert!(
            DOMAIN_LAYERS.contains(&module),
            "domain::{module} is not placed in a layer"
        );
    }
}

#[test]
fn the_domain_does_no_io_and_reads_no_wire_format() {
    let domain = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    let mut violations = Vec::new();
    for module in DOMAIN_LAYERS {
        let text = std::fs::read_to_string(domain.join(format!("{module}.rs"))).unwrap();
        // Only the code, not its tests.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for forbidden in ["tracing::", "tokio::", "aws_sdk", "reqwest", "fn from_json"] {
            if code.contains(forbidden) {
                violations.push(format!("domain/{module}.rs uses {forbidden}"));
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

/// Every module of `shared/src` (`app::payments`, `store`) with its code: the
/// text of its file before its unit tests, comments left out. Unit-test modules (`x/tests.rs`) are
/// left out: they import their parent by design.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let mut found = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap().with_extension("");
        let mut segments: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if segments.last().is_some_and(|s| s == "mod") {
            segments.pop();
        }
        if segments.is_empty()
            || segments == ["lib"]
            || segments.last().is_some_and(|s| s == "tests")
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Its code: before its unit tests, without comments (a doc link is no import).
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        found.insert(segments.join("::"), code);
    }
    found
}

/// The module paths `code` (the code of `module`) names: `crate::a::b::Item` and
/// `super::b::Item`, each resolved to the longest known module it starts with.
fn references(module: &str, code: &str, known: &BTreeMap<String, String>) -> BTreeSet<String> {
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    let mut found = BTreeSet::new();
    for (prefix, base) in [("crate::", ""), ("super::", parent)] {
        for (i, _) in code.match_indices(prefix) {
            let path: String = code[i + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut candidate: Vec<&str> = base.split("::").filter(|s| !s.is_empty()).collect();
            let mut best = None;
            for segment in path.split("::").filter(|s| !s.is_empty()) {
                candidate.push(segment);
                let name = candidate.join("::");
                if known.contains_key(&name) {
                    best = Some(name);
                }
            }
            found.extend(best);
        }
    }
    found
}

/// Whether one module is the other or contains it (a module and its own
/// submodules are one unit).
fn related(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

#[test]
fn no_import_circle_anywhere_in_shared_src() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known = modules(&src);
    let edges: BTreeMap<&str, BTreeSet<String>> = known
        .iter()
        .map(|(module, code)| {
            let targets = references(module, code, &known)
                .into_iter()
                .filter(|target| !related(module, target))
                .collect();
            (module.as_str(), targets)
        })
        .collect();
    // Depth-first search for a back edge, naming the circle it closes.
    fn visit<'a>(
        node: &'a str,
        edges: &'a BTreeMap<&str, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        circles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|n| *n == node) {
            circles.push(format!("{} -> {node}", path[at..].join(" -> ")));
            return;
        }
        if !done.insert(node) {
            return;
        }
        path.push(node);
        for next in edges.get(node).into_iter().flatten() {
            if let Some((key, _)) = edges.get_key_value(next.as_str()) {
                visit(key, edges, path, done, circles);
            }
        }
        path.pop();
    }
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, &edges, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(circles.is_empty(), "{circles:#?}");
}

#[test]
fn the_circle_finder_resolves_paths_to_modules() {
    let known: BTreeMap<String, String> =
        ["app", "app::payments", "app::sessions", "domain::payment"]
            .iter()
            .map(|m| (m.to_string(), String::new()))
            .collect();
    let code = "use super::payments::X; use crate::domain::payment::StoredPayment;";
    assert_eq!(
        references("app::sessions", code, &known),
        ["app::payments".to_string(), "domain::payment".to_string()].into()
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    for line in lib.lines().filter_map(|l| l.strip_prefix("pub mod ")) {
        let module = line.trim_end_matches(';');
        assert!(
            ALLOWED.iter().any(|(m, _)| *m == module),
            "{module} is not placed in a layer"
        );
    }
}

/// Inside `fintoc/` and `store/`, each port file names no adapter: a port is what
/// the use cases call, and the adapters (the HTTP client, DynamoDB, memory) are
/// below it, never the reverse.
#[test]
fn no_port_file_names_an_adapter() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let cases: &[(&str, &[&str])] = &[
        ("fintoc/ports.rs", &["http", "verdicts"]),
        ("fintoc/verdicts.rs", &["http"]),
        ("store/ports.rs", &["dynamo", "memory"]),
    ];
    let mut violations = Vec::new();
    for (file, adapters) in cases {
        let text = std::fs::read_to_string(src.join(file)).unwrap();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for adapter in *adapters {
            for prefix in ["super::", "crate::fintoc::", "crate::store::"] {
                if code.contains(&format!("{prefix}{adapter}")) {
                    violations.push(format!("{file} names {prefix}{adapter}"));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}
