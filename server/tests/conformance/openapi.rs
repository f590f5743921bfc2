//! `server/openapi.yaml` describes exactly the routes the router serves.

use crate::support::*;
use std::collections::BTreeSet;

#[tokio::test]
async fn the_spec_and_the_router_name_the_same_routes() {
    let s = Srv::start().await;
    let spec = s
        .send(s.http.get(format!("{}/v1/openapi.json", s.base)))
        .await;
    let spec = spec.ok();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut in_spec = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                in_spec.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = monodit_server::http::route_table(true)
        .into_iter()
        .collect();
    assert_eq!(in_spec, served, "openapi.yaml and the router disagree");
    // Every operation documents the coded error body.
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            let responses = op["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path}: responses"));
            assert!(
                responses
                    .keys()
                    .any(|k| k.starts_with('4') || k == "default"),
                "{method} {path} documents no error response"
            );
        }
    }
    s.stop().await;
}
