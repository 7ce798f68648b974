//! The layering of `shared/src`, checked on the source: each module imports only
//! from the modules below it (see `ARCHITECTURE.md`), so no arrow runs back up and
//! no import cycle can form — between the top-level modules, and between the
//! files of `domain/`.

use std::collections::BTreeSet;
use std::path::Path;

/// Each top-level module and the modules it may import from.
const ALLOWED: &[(&str, &[&str])] = &[
    ("clock", &[]),
    ("aws", &[]),
    ("logging", &[]),
    ("metrics", &[]),
    ("routes", &[]),
    ("secrets", &[]),
    ("domain", &[]),
    ("store", &["domain"]),
    ("fintoc", &["domain", "secrets"]),
    ("webhook", &["domain", "secrets", "fintoc"]),
    ("http", &["domain", "store", "fintoc", "webhook"]),
    (
        "app",
        &[
            "domain", "store", "fintoc", "webhook", "http", "secrets", "clock",
        ],
    ),
    ("config", &["app", "domain", "fintoc", "secrets"]),
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
    "money",
    "schedule",
    "payment",
    "report",
    "order",
    "deployment",
    "create",
    "idempotency",
    "transition",
    "reconcile",
    "session",
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
