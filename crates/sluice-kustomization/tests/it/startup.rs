//! Start-up: Kustomizations that exist when the controller starts are all
//! reconciled, however many start at once (they used to hang for good
//! waiting for the GitRepository cache when several started before its
//! first list was in).

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn kustomizations_present_at_start_up_are_all_reconciled() {
    let mut env = Env::without_controllers("ks-start").await;
    let names: Vec<String> = (0..8).map(|i| format!("ks{i}")).collect();
    for name in &names {
        env.kustomization(name, json!({"path": "./apps"})).await;
    }
    env.start_controllers().await;
    // No GitRepository: each one fails, saying so, once reconciled.
    for name in &names {
        let ks = env.wait_reason(name, "ArtifactFailed").await;
        assert!(
            ready_message(&ks).contains("not found"),
            "{name}: {}",
            ready_message(&ks)
        );
    }
}
