//! The layering of `shared/src`, checked on the source: each module imports only
//! from the modules below it (see `ARCHITECTURE.md`), so no arrow runs back up and
//! no import cycle can form.

use std::collections::BTreeSet;
use std::path::Path;

/// Each top-level module and the modules it may import from.
const ALLOWED: &[(&str, &[&str])] = &[
    ("clock", &[]),
    ("aws", &[]),
    ("logging", &[]),
    ("metrics", &[]),
    ("secrets", &[]),
    ("domain", &[]),
    ("store", &["domain"]),
    ("fintoc", &["domain", "secrets"]),
    ("webhook", &["domain", "secrets"]),
    ("http", &["domain", "store", "fintoc", "webhook"]),
    (
        "app",
        &[
            "domain", "store", "fintoc", "webhook", "http", "secrets", "clock",
        ],
    ),
    ("config", &["app", "domain", "fintoc", "secrets"]),
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

fn imported_modules(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let name: String = text[i + 7..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        found.insert(name);
    }
    found
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
