//! Every manifest the demo ships (`www/widgets/*/manifest.json`) passes the core rules, so the
//! demo never drifts from what hosts and the server accept.

use monodit_core::manifest::Manifest;
use std::path::Path;

#[test]
fn demo_manifests_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/widgets");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        // The core crate is also usable on its own, without the demo next to it.
        eprintln!("no demo widgets at {}", dir.display());
        return;
    };
    let mut seen = 0;
    for entry in entries {
        let path = entry.unwrap().path().join("manifest.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        if let Err(e) = Manifest::parse(&value) {
            panic!("{}: {e} {:?}", path.display(), e.detail);
        }
        seen += 1;
    }
    assert!(
        seen > 0,
        "found widgets dir but no manifests in {}",
        dir.display()
    );
}
