//! The real binary killed (SIGKILL) and started again: what it does at start must not hurt load
//! balancers that are still serving.

mod e2e;

use cloud_lb_controller::annotations as keys;
use e2e::*;

#[tokio::test]
async fn a_restart_during_deletion_keeps_the_firewall_until_the_last_forwarding_rule_is_gone() {
    let mut env = Env::start().await;
    if env.fake_gce().is_none() {
        eprintln!("needs the fake Compute API's journal: skipping");
        return;
    }
    // Short leases: the restarted process takes over soon after the killed one's lease lapses.
    let leases = [
        "--leader-elect-lease-duration",
        "3s",
        "--leader-elect-renew-deadline",
        "2s",
        "--leader-elect-retry-period",
        "500ms",
    ];
    env.start_controller_with(&leases);
    env.apply(&service("web")).await;
    env.apply(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\nspec:\n  ingressClassName: gce\n  defaultBackend: {service: {name: web, port: {number: 80}}}\n",
    )
    .await;
    eventually("web Ready", WAIT, || async {
        env.annotation("web", keys::STATE)
            .await
            .filter(|s| s.contains(r#""state":"Ready""#))
    })
    .await;
    env.kill_controller();

    // Deleted while the controller is down: the finalizer holds it.
    env.ingresses()
        .delete("web", &Default::default())
        .await
        .expect("delete");
    env.start_controller_with(&leases);
    eventually("the Ingress gone", WAIT, || async {
        env.ingress("web").await.is_none().then_some(())
    })
    .await;
    // The groups and the firewall rule go too, once nothing uses them.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = env.gce.owned_by(&env.cluster_uid).await;
        if left.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "left: {left:?}\ncontroller log:\n{}",
            env.controller_log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let journal = env.fake_gce().map(|g| g.journal()).unwrap_or_default();
    firewall_always_covers_forwarding_rules(&journal).unwrap();
}
