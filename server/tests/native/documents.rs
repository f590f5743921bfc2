//! Documents (d1-json) and batch meta over HTTP.

use crate::support::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn dev_faults_route_does_not_exist_outside_dev_mode() {
    let s = Srv::start_with(|c| c.dev = false).await;
    let r = s
        .call(
            Method::PUT,
            "/v1/dev/faults",
            None,
            Some(json!({"documentPutErrors": 1})),
        )
        .await;
    r.expect_err("NOT_FOUND");
    s.stop().await;
}
