//! End to end with kubectl in the loop: `kubectl apply`, `kubectl get ing` shows the ADDRESS,
//! `kubectl delete` waits for the cleanup.

mod e2e;

use e2e::*;

const MANIFEST: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: echoheaders}
spec:
  type: NodePort
  selector: {app: echoheaders}
  ports: [{port: 8080, targetPort: 8080, protocol: TCP}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: test}
spec:
  ingressClassName: gce
  defaultBackend: {service: {name: echoheaders, port: {number: 8080}}}
"#;

#[tokio::test]
async fn kubectl_apply_get_and_delete() {
    let mut env = Env::start().await;
    let Some(out) = env.kubectl_run(&["apply", "-f", "-"], Some(MANIFEST)).await else {
        return;
    };
    assert!(
        out.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.start_controller();

    let ip = env.wait_address("test").await;
    let table = eventually("kubectl get ing showing the address", WAIT, || async {
        let out = env.kubectl_run(&["get", "ing"], None).await?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains(&ip).then_some(text)
    })
    .await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..5], ["test", "gce", "*", ip.as_str(), "80"], "{table}");

    // `kubectl describe` shows the story in Events.
    let describe = env.kubectl_run(&["describe", "ing", "test"], None).await.unwrap();
    let text = String::from_utf8_lossy(&describe.stdout);
    assert!(text.contains("IPAssigned") && text.contains("Created"), "{text}");

    // `kubectl delete` returns once the finalizer let go, i.e. after the cloud cleanup.
    let out = env
        .kubectl_run(&["delete", "ing", "test", "--timeout=60s"], None)
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<String> = env
        .gce
        .owned_by(&env.cluster_uid)
        .await
        .into_iter()
        .filter(|r| !r.contains("instanceGroups") && !r.starts_with("firewalls"))
        .collect();
    assert!(left.is_empty(), "left after kubectl delete: {left:?}");
    let out = env.kubectl_run(&["get", "ing", "test"], None).await.unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound"));
}
