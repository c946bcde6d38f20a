//! Endpoint backends (container-native load balancing) of the GCE provider against the fake
//! Compute API, over HTTP: zonal NEGs, their endpoints, their health, switching a Service port
//! between node port and endpoints, and leaving nothing behind.

mod common;

use cloud::model::*;
use cloud::{EndpointHealth, EndpointSync, Provider, ResourceKind};
use common::*;
use fake_gce::{Config, InstanceSeed, JournalEvent};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const ZONE_A: &str = "us-central1-a";
const ZONE_B: &str = "us-central1-b";

/// The nodes of [`nodes`], each with an alias IP range for its pods, plus `extra` instances.
fn neg_config(extra: Vec<InstanceSeed>) -> Config {
    let aliases = [
        ("node-a1", "10.4.1.0/24"),
        ("node-a2", "10.4.2.0/24"),
        ("node-b1", "10.4.3.0/24"),
    ];
    let mut instances: Vec<InstanceSeed> = nodes()
        .iter()
        .map(|n| InstanceSeed {
            alias_ip_ranges: aliases
                .iter()
                .filter(|(i, _)| *i == n.instance)
                .map(|(_, r)| (*r).to_owned())
                .collect(),
            ..InstanceSeed::new(&n.zone, &n.instance)
        })
        .collect();
    instances.extend(extra);
    Config {
        instances,
        ..fake_config()
    }
}

/// A fake whose nodes have pod ranges, and a provider whose infrastructure serves `node_ports`
/// and the pod port `endpoint_ports`.
async fn start(node_ports: &[u16], endpoint_ports: &[u16]) -> Env {
    let env = Env::start_with(neg_config(Vec::new()), node_ports, |_| {}).await;
    let mut infra = env.infra.clone();
    infra.endpoint_ports = endpoint_ports.iter().copied().collect();
    env.provider
        .ensure_infrastructure(&infra)
        .await
        .expect("infrastructure");
    Env { infra, ..env }
}

fn endpoint_backend(namespace: &str, service: &str, port: u16) -> Backend {
    Backend {
        target: BackendTarget::Endpoints,
        ..backend(namespace, service, port, 0)
    }
}

fn ep(zone: &str, instance: &str, ip: &str, port: u16) -> Endpoint {
    Endpoint {
        zone: zone.into(),
        instance: instance.into(),
        ip: ip.into(),
        port,
    }
}

fn set(key: &BackendKey, endpoints: &[Endpoint]) -> EndpointSet {
    EndpointSet {
        key: key.clone(),
        endpoints: endpoints.iter().cloned().collect(),
    }
}

/// Three pods: two in zone a, one in zone b.
fn pods() -> Vec<Endpoint> {
    vec![
        ep(ZONE_A, "node-a1", "10.4.1.5", 8080),
        ep(ZONE_A, "node-a2", "10.4.2.7", 8080),
        ep(ZONE_B, "node-b1", "10.4.3.9", 8080),
    ]
}

fn neg_path(zone: &str, name: &str) -> String {
    format!("projects/{PROJECT}/zones/{zone}/networkEndpointGroups/{name}")
}

/// Paths of the fake's resources of a collection, in any scope.
fn paths(env: &Env, collection: &str) -> BTreeSet<String> {
    let marker = format!("/{collection}/");
    env.resources()
        .keys()
        .filter(|p| p.contains(&marker))
        .cloned()
        .collect()
}

/// The endpoints of a NEG as the fake holds them: `(instance, ip, port)`.
fn attached(env: &Env, zone: &str, name: &str) -> BTreeSet<(String, String, u64)> {
    env.gce.state()["endpoints"][neg_path(zone, name)]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["instance"].as_str().unwrap_or_default().to_owned(),
                e["ipAddress"].as_str().unwrap_or_default().to_owned(),
                e["port"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

/// The request paths of the calls made since journal sequence `since` whose path ends so.
fn calls(env: &Env, since: u64, suffix: &str) -> usize {
    env.gce
        .journal_since(since)
        .entries
        .iter()
        .filter(|e| matches!(&e.event, JournalEvent::Request(r) if r.path.ends_with(suffix)))
        .count()
}

/// Every resource of this cluster (its names start with the cluster's tag).
fn ours(env: &Env) -> Vec<String> {
    let tag = format!("/clb-{}-", env.provider.namer().cluster_tag());
    env.resources()
        .keys()
        .filter(|p| p.contains(&tag))
        .cloned()
        .collect()
}

#[tokio::test]
async fn an_endpoint_backend_is_a_neg_per_zone_behind_a_rate_backend_service() {
    let env = start(&[], &[8080]).await;
    let model = lb("default", "pods", vec![endpoint_backend("default", "echo", 80)]);
    let status = env.provider.ensure(&model).await.expect("ensure");
    let name = env.provider.namer().endpoint_backend("default", "echo", 80);
    assert_ne!(name, env.provider.namer().backend("default", "echo", 80));

    // No instance group: with endpoint backends only, the nodes need none of ours.
    assert!(
        paths(&env, "instanceGroups").is_empty(),
        "{:?}",
        paths(&env, "instanceGroups")
    );
    for zone in [ZONE_A, ZONE_B] {
        let neg = env
            .gce
            .resource(&neg_path(zone, &name))
            .expect("a NEG in each zone");
        assert_eq!(neg["networkEndpointType"], "GCE_VM_IP_PORT");
        assert_eq!(name_of(&neg["network"]), "default");
        assert!(neg["description"].as_str().unwrap().contains(CLUSTER));
    }
    let service = env.get("backendServices", &name);
    let backends = service["backends"].as_array().unwrap();
    assert_eq!(backends.len(), 2);
    for b in backends {
        assert!(
            b["group"].as_str().unwrap().contains("/networkEndpointGroups/"),
            "{b}"
        );
        assert_eq!(b["balancingMode"], "RATE");
        assert_eq!(b["maxRatePerEndpoint"], json!(1.0));
        assert_eq!(b["capacityScaler"], json!(1.0));
    }
    assert_ne!(service["portName"], "port0");
    let hc = env.get("healthChecks", &name);
    assert_eq!(hc["httpHealthCheck"]["portSpecification"], "USE_SERVING_PORT");
    let map = env.get("urlMaps", &status.names(ResourceKind::UrlMap)[0]);
    assert_eq!(name_of(&map["defaultService"]), name);

    assert_eq!(status.names(ResourceKind::BackendService), vec![name.clone()]);
    assert_eq!(
        status.names(ResourceKind::NetworkEndpointGroup),
        vec![format!("{ZONE_A}/{name}"), format!("{ZONE_B}/{name}")]
    );
    assert_eq!(
        status.backend_ports,
        BTreeMap::from([(name.clone(), BackendKey::new("default", "echo", 80))])
    );
    assert!(status.switching.is_empty());

    // The firewall lets the health checkers reach the pods' port.
    let fw = env.get("firewalls", &env.provider.namer().firewall());
    assert_eq!(fw["allowed"], json!([{"IPProtocol": "tcp", "ports": ["8080"]}]));

    // Nothing changed: no write.
    env.gce.reset_stats();
    let again = env.provider.ensure(&model).await.unwrap();
    assert!(!again.changed);
    assert_eq!(env.gce.stats().total.mutations, 0);
    assert_eq!(again.address, status.address);

    // `plan` shows the NEGs.
    let plan = env.provider.plan(&model).unwrap();
    let negs: Vec<&Value> = plan
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "networkEndpointGroups")
        .collect();
    assert_eq!(negs.len(), 2, "{plan}");
    assert_eq!(negs[0]["name"], name.as_str());
}

#[tokio::test]
async fn sync_endpoints_attaches_exactly_the_set_and_reports_health() {
    let env = start(&[], &[8080]).await;
    let key = BackendKey::new("default", "echo", 80);
    let name = env.provider.namer().endpoint_backend("default", "echo", 80);

    // Before any load balancer built the backend: nothing to sync, nothing created.
    env.gce.reset_stats();
    let before = env.provider.sync_endpoints(&set(&key, &pods())).await.unwrap();
    assert_eq!(before, EndpointSync::NoBackend);
    assert_eq!(env.gce.stats().total.mutations, 0);
    assert!(paths(&env, "networkEndpointGroups").is_empty());
    assert!(env.provider.endpoint_health(&key).await.unwrap().is_empty());

    let model = lb("default", "pods", vec![endpoint_backend("default", "echo", 80)]);
    env.provider.ensure(&model).await.unwrap();
    let synced = env.provider.sync_endpoints(&set(&key, &pods())).await.unwrap();
    assert_eq!(
        synced,
        EndpointSync::Synced {
            attached: 3,
            detached: 0
        }
    );
    let tuple = |i: &str, ip: &str| (i.to_owned(), ip.to_owned(), 8080);
    assert_eq!(
        attached(&env, ZONE_A, &name),
        BTreeSet::from([tuple("node-a1", "10.4.1.5"), tuple("node-a2", "10.4.2.7")])
    );
    assert_eq!(
        attached(&env, ZONE_B, &name),
        BTreeSet::from([tuple("node-b1", "10.4.3.9")])
    );

    // The same set again: read, nothing written.
    env.gce.reset_stats();
    let again = env.provider.sync_endpoints(&set(&key, &pods())).await.unwrap();
    assert!(!again.changed());
    assert_eq!(env.gce.stats().total.mutations, 0);

    // Health, per endpoint and per backend.
    let health = env.provider.endpoint_health(&key).await.unwrap();
    assert_eq!(health.len(), 3);
    assert!(
        health.values().all(|h| *h == EndpointHealth::Healthy),
        "{health:?}"
    );
    assert!(health.contains_key(&pods()[2]), "{health:?}");
    assert!(
        env.gce
            .set_endpoint_health(ZONE_A, &name, "10.4.2.7", 8080, false)
    );
    let health = env.provider.endpoint_health(&key).await.unwrap();
    assert_eq!(health[&pods()[1]], EndpointHealth::Unhealthy);
    assert_eq!(health[&pods()[0]], EndpointHealth::Healthy);
    let backends = env
        .provider
        .backend_health(std::slice::from_ref(&name))
        .await
        .unwrap();
    assert_eq!(
        backends[&name],
        cloud::BackendHealth::Healthy { healthy: 2, total: 3 }
    );

    // A pod goes, another moves to a new port at the same IP.
    let mut next = pods();
    next.remove(0);
    next[0].port = 9090;
    let synced = env.provider.sync_endpoints(&set(&key, &next)).await.unwrap();
    assert_eq!(
        synced,
        EndpointSync::Synced {
            attached: 1,
            detached: 2
        }
    );
    assert_eq!(
        attached(&env, ZONE_A, &name),
        BTreeSet::from([("node-a2".to_owned(), "10.4.2.7".to_owned(), 9090)])
    );
    assert_eq!(attached(&env, ZONE_B, &name).len(), 1);

    // All gone.
    let synced = env.provider.sync_endpoints(&set(&key, &[])).await.unwrap();
    assert_eq!(
        synced,
        EndpointSync::Synced {
            attached: 0,
            detached: 2
        }
    );
    assert!(attached(&env, ZONE_A, &name).is_empty() && attached(&env, ZONE_B, &name).is_empty());
}

#[tokio::test]
async fn more_than_500_endpoints_go_in_batches() {
    // A big node: 1,200 pods in a /20.
    let big = InstanceSeed {
        alias_ip_ranges: vec!["10.8.0.0/20".into()],
        ..InstanceSeed::new(ZONE_A, "node-big")
    };
    let env = Env::start_with(neg_config(vec![big]), &[], |_| {}).await;
    let key = BackendKey::new("default", "many", 80);
    let name = env.provider.namer().endpoint_backend("default", "many", 80);
    let model = lb("default", "many", vec![endpoint_backend("default", "many", 80)]);
    env.provider.ensure(&model).await.unwrap();

    let many: Vec<Endpoint> = (0..1200u32)
        .map(|i| {
            ep(
                ZONE_A,
                "node-big",
                &format!("10.8.{}.{}", i / 250, i % 250 + 1),
                8080,
            )
        })
        .collect();
    let since = env.gce.journal().next_seq;
    let synced = env.provider.sync_endpoints(&set(&key, &many)).await.unwrap();
    assert_eq!(
        synced,
        EndpointSync::Synced {
            attached: 1200,
            detached: 0
        }
    );
    assert_eq!(
        calls(&env, since, "/attachNetworkEndpoints"),
        3,
        "500 + 500 + 200"
    );
    assert_eq!(attached(&env, ZONE_A, &name).len(), 1200);

    let since = env.gce.journal().next_seq;
    let synced = env
        .provider
        .sync_endpoints(&set(&key, &many[..100]))
        .await
        .unwrap();
    assert_eq!(
        synced,
        EndpointSync::Synced {
            attached: 0,
            detached: 1100
        }
    );
    assert_eq!(
        calls(&env, since, "/detachNetworkEndpoints"),
        3,
        "500 + 500 + 100"
    );
    assert_eq!(calls(&env, since, "/attachNetworkEndpoints"), 0);
    assert_eq!(attached(&env, ZONE_A, &name).len(), 100);
}

#[tokio::test]
async fn deleting_the_last_load_balancer_leaves_nothing_and_syncs_find_no_backend() {
    let env = start(&[], &[8080]).await;
    let key = BackendKey::new("default", "echo", 80);
    let shared = vec![endpoint_backend("default", "echo", 80)];
    let a = lb("default", "a", shared.clone());
    let b = lb("default", "b", shared);
    env.provider.ensure(&a).await.unwrap();
    env.provider.ensure(&b).await.unwrap();
    env.provider.sync_endpoints(&set(&key, &pods())).await.unwrap();

    // One of two users goes: the backend stays and keeps its endpoints.
    env.provider.delete(&a.key).await.unwrap();
    let name = env.provider.namer().endpoint_backend("default", "echo", 80);
    assert!(env.try_get("backendServices", &name).is_some());
    assert_eq!(attached(&env, ZONE_A, &name).len(), 2);

    // The last one goes: everything of ours goes, NEGs with their endpoints included.
    env.provider.delete(&b.key).await.unwrap();
    let left: Vec<String> = ours(&env)
        .into_iter()
        .filter(|p| !p.contains("/firewalls/"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    // A sync arriving late recreates nothing.
    env.gce.reset_stats();
    let late = env.provider.sync_endpoints(&set(&key, &pods())).await.unwrap();
    assert_eq!(late, EndpointSync::NoBackend);
    assert_eq!(env.gce.stats().total.mutations, 0);
    assert!(paths(&env, "networkEndpointGroups").is_empty());

    // And the cluster-wide part goes once nothing needs it.
    let mut infra = env.infra.clone();
    infra.endpoint_ports.clear();
    env.provider.ensure_infrastructure(&infra).await.unwrap();
    assert!(ours(&env).is_empty(), "left behind: {:?}", ours(&env));
}

#[tokio::test]
async fn an_endpoint_in_a_new_zone_gets_its_neg() {
    // The infrastructure knows zone a only.
    let env = Env::start_with(neg_config(Vec::new()), &[], |_| {}).await;
    let mut infra = env.infra.clone();
    infra.nodes.retain(|n| n.zone == ZONE_A);
    infra.endpoint_ports = [8080].into_iter().collect();
    env.provider.ensure_infrastructure(&infra).await.unwrap();
    let key = BackendKey::new("default", "echo", 80);
    let name = env.provider.namer().endpoint_backend("default", "echo", 80);
    let model = lb("default", "pods", vec![endpoint_backend("default", "echo", 80)]);
    env.provider.ensure(&model).await.unwrap();
    assert!(env.gce.resource(&neg_path(ZONE_B, &name)).is_none());

    let synced = env.provider.sync_endpoints(&set(&key, &pods())).await.unwrap();
    assert_eq!(
        synced,
        EndpointSync::Synced {
            attached: 3,
            detached: 0
        }
    );
    assert!(env.gce.resource(&neg_path(ZONE_B, &name)).is_some());
    let service = env.get("backendServices", &name);
    assert_eq!(service["backends"].as_array().unwrap().len(), 2);
    assert_eq!(attached(&env, ZONE_B, &name).len(), 1);

    // The next pass keeps the new zone.
    env.gce.reset_stats();
    env.provider.ensure(&model).await.unwrap();
    assert_eq!(env.gce.stats().total.mutations, 0);
}

#[tokio::test]
async fn a_neg_left_by_a_failed_pass_is_collected() {
    let env = start(&[], &[8080]).await;
    env.gce.set_quota("backendServices", Some(0));
    let model = lb("default", "orphan", vec![endpoint_backend("default", "echo", 80)]);
    assert!(env.provider.ensure(&model).await.is_err());
    assert_eq!(
        paths(&env, "networkEndpointGroups").len(),
        2,
        "created beside the health check"
    );
    // A NEG with a name of ours but not ours is left alone.
    let foreign = format!("clb-{}-ne-foreign", env.provider.namer().cluster_tag());
    let url = format!(
        "{}projects/{PROJECT}/zones/{ZONE_A}/networkEndpointGroups",
        env.gce.base_url()
    );
    let created = reqwest::Client::new()
        .post(url)
        .bearer_auth(TOKEN)
        .json(&json!({"name": foreign, "networkEndpointType": "GCE_VM_IP_PORT", "description": "by hand"}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());

    env.provider.collect_garbage().await.unwrap();
    assert_eq!(
        paths(&env, "networkEndpointGroups"),
        BTreeSet::from([neg_path(ZONE_A, &foreign)])
    );
    assert!(env.names("healthChecks").is_empty());
}

#[tokio::test]
async fn switching_to_endpoints_and_back_keeps_the_address_and_a_backend() {
    let env = start(&[30080], &[8080]).await;
    let key = BackendKey::new("default", "echo", 80);
    let be = env.provider.namer().backend("default", "echo", 80);
    let ne = env.provider.namer().endpoint_backend("default", "echo", 80);
    let mut model = lb("default", "switch", vec![backend("default", "echo", 80, 30080)]);
    let first = env.provider.ensure(&model).await.unwrap();
    let map_name = first.names(ResourceKind::UrlMap)[0].clone();
    let serving = |env: &Env| name_of(&env.get("urlMaps", &map_name)["defaultService"]);
    assert_eq!(serving(&env), be);

    // To endpoints: the NEG backend is built, the URL map stays on the node-port backend
    // while the NEGs have no healthy endpoint.
    model.backends[0].target = BackendTarget::Endpoints;
    let status = env.provider.ensure(&model).await.unwrap();
    assert_eq!(status.switching, vec![key.clone()]);
    assert_eq!(status.address, first.address);
    assert_eq!(serving(&env), be);
    assert!(env.try_get("backendServices", &ne).is_some());
    assert_eq!(status.backend_ports.len(), 2, "{:?}", status.backend_ports);
    // A sweep meanwhile leaves both alone.
    env.provider.collect_garbage().await.unwrap();
    assert!(env.try_get("backendServices", &ne).is_some());
    assert!(env.try_get("backendServices", &be).is_some());

    // Endpoints attached but failing their health checks: still waiting.
    env.provider.sync_endpoints(&set(&key, &pods())).await.unwrap();
    for p in pods() {
        assert!(env.gce.set_endpoint_health(&p.zone, &ne, &p.ip, p.port, false));
    }
    let status = env.provider.ensure(&model).await.unwrap();
    assert_eq!(status.switching, vec![key.clone()]);
    assert_eq!(serving(&env), be);

    // One healthy endpoint: the URL map moves, the node-port backend goes.
    let p = &pods()[2];
    assert!(env.gce.set_endpoint_health(&p.zone, &ne, &p.ip, p.port, true));
    let status = env.provider.ensure(&model).await.unwrap();
    assert!(status.switching.is_empty());
    assert_eq!(status.address, first.address);
    assert_eq!(serving(&env), ne);
    assert!(
        env.try_get("backendServices", &be).is_none(),
        "the old backend was not swept"
    );
    assert!(env.try_get("healthChecks", &be).is_none());
    assert_eq!(status.backend_ports, BTreeMap::from([(ne.clone(), key.clone())]));
    // Steady again: no write, no health read.
    env.gce.reset_stats();
    env.provider.ensure(&model).await.unwrap();
    let stats = env.gce.stats();
    assert_eq!(stats.total.mutations, 0);
    assert_eq!(stats.total.reads, 0, "{stats:?}");

    // Back to the node port: the instance groups serve at once, the NEGs go.
    model.backends[0].target = BackendTarget::NodePort { node_port: 30080 };
    let status = env.provider.ensure(&model).await.unwrap();
    assert!(status.switching.is_empty());
    assert_eq!(status.address, first.address);
    assert_eq!(serving(&env), be);
    assert!(env.try_get("backendServices", &ne).is_none());
    assert!(paths(&env, "networkEndpointGroups").is_empty());
    let late = env.provider.sync_endpoints(&set(&key, &pods())).await.unwrap();
    assert_eq!(late, EndpointSync::NoBackend);
}

#[tokio::test]
async fn endpoint_ports_change_in_the_firewall_and_groups_follow_node_ports() {
    let env = start(&[], &[8080]).await;
    let fw = env.provider.namer().firewall();
    assert!(paths(&env, "instanceGroups").is_empty());
    let mut infra = env.infra.clone();
    infra.endpoint_ports = [9090].into_iter().collect();
    env.provider.ensure_infrastructure(&infra).await.unwrap();
    assert_eq!(env.get("firewalls", &fw)["allowed"][0]["ports"], json!(["9090"]));
    // A node port in use: groups appear, naming it and not the pod port.
    infra.node_ports = [30080].into_iter().collect();
    env.provider.ensure_infrastructure(&infra).await.unwrap();
    assert_eq!(
        env.get("firewalls", &fw)["allowed"][0]["ports"],
        json!(["9090", "30080"])
    );
    let ig = env.provider.namer().instance_group();
    let group = env
        .gce
        .resource(&format!("projects/{PROJECT}/zones/{ZONE_A}/instanceGroups/{ig}"))
        .expect("group");
    assert_eq!(group["namedPorts"], json!([{"name": "port30080", "port": 30080}]));
    // No node port any more: the groups go, the pod port stays.
    infra.node_ports.clear();
    env.provider.ensure_infrastructure(&infra).await.unwrap();
    assert!(paths(&env, "instanceGroups").is_empty());
    assert_eq!(env.get("firewalls", &fw)["allowed"][0]["ports"], json!(["9090"]));
}

/// The TCP ports the cluster's firewall rule allows, if it exists.
fn firewall_ports(env: &Env) -> Option<Value> {
    env.try_get("firewalls", &env.provider.namer().firewall())
        .map(|fw| fw["allowed"][0]["ports"].clone())
}

#[tokio::test]
async fn a_restarted_provider_keeps_the_pod_ports_of_the_endpoint_backends_in_the_cloud() {
    let env = start(&[30080], &[8080]).await;
    let key = BackendKey::new("default", "echo", 80);
    let model = lb(
        "default",
        "pods",
        vec![
            endpoint_backend("default", "echo", 80),
            backend("default", "node", 80, 30080),
        ],
    );
    env.provider.ensure(&model).await.unwrap();
    env.provider.sync_endpoints(&set(&key, &pods())).await.unwrap();
    // Asked for the node port only (the endpoint ports are not known yet after a restart).
    let mut infra = env.infra.clone();
    infra.endpoint_ports.clear();
    // The process that synced the endpoints knows their port without reading them.
    let since = env.gce.journal().next_seq;
    env.provider.ensure_infrastructure(&infra).await.unwrap();
    assert_eq!(firewall_ports(&env), Some(json!(["8080", "30080"])));
    assert_eq!(calls(&env, since, "/listNetworkEndpoints"), 0);

    // A new process (a restart, another controller of the cluster) reads them, one list per
    // zone's NEG, and keeps the port; the instance groups still name the node port only.
    let restarted = new_provider(&env.gce, |_| {});
    assert_eq!(restarted.endpoint_backends().await.unwrap(), vec![key.clone()]);
    let since = env.gce.journal().next_seq;
    restarted.ensure_infrastructure(&infra).await.unwrap();
    assert_eq!(firewall_ports(&env), Some(json!(["8080", "30080"])));
    assert_eq!(calls(&env, since, "/listNetworkEndpoints"), 2);
    let ig = env.provider.namer().instance_group();
    let group = env
        .gce
        .resource(&format!("projects/{PROJECT}/zones/{ZONE_A}/instanceGroups/{ig}"))
        .expect("group");
    assert_eq!(group["namedPorts"], json!([{"name": "port30080", "port": 30080}]));
    // What it read holds for the removal grace.
    let patient = new_provider(&env.gce, |c| {
        c.removal_grace = std::time::Duration::from_secs(3600)
    });
    let since = env.gce.journal().next_seq;
    patient.ensure_infrastructure(&infra).await.unwrap();
    patient.ensure_infrastructure(&infra).await.unwrap();
    assert_eq!(calls(&env, since, "/listNetworkEndpoints"), 2, "read once");
    assert_eq!(firewall_ports(&env), Some(json!(["8080", "30080"])));

    // The endpoint backend gone (the node-port one stays), the pod port goes.
    let node_only = lb("default", "pods", vec![backend("default", "node", 80, 30080)]);
    env.provider.ensure(&node_only).await.unwrap();
    assert!(restarted.endpoint_backends().await.unwrap().is_empty());
    restarted.ensure_infrastructure(&infra).await.unwrap();
    assert_eq!(firewall_ports(&env), Some(json!(["30080"])));
}

fn name_of(link: &Value) -> String {
    name(link)
}
