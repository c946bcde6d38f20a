//! The whole chain of one HTTPS load balancer, created in dependency order and deleted in
//! reverse, with the JSON shapes a real client sees; deleting out of order fails like the real
//! API (400 resourceInUseByAnotherResource).

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Api, ZONE, cert, link, seed_nodes};

fn is_decimal_id(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
}

fn is_rfc3339_millis(v: &Value) -> bool {
    // 2024-01-02T03:04:05.678+00:00
    v.as_str().is_some_and(|s| {
        s.len() == 29 && s.as_bytes()[10] == b'T' && s.as_bytes()[19] == b'.' && s.ends_with("+00:00")
    })
}

#[track_caller]
fn assert_common(r: &Value, kind: &str, path: &str) {
    assert_eq!(r["kind"], kind, "{r:#}");
    assert!(is_decimal_id(&r["id"]), "{r:#}");
    assert!(is_rfc3339_millis(&r["creationTimestamp"]), "{r:#}");
    assert_eq!(r["selfLink"], link(path), "{r:#}");
    assert_eq!(r["name"], path.rsplit('/').next().unwrap_or_default(), "{r:#}");
}

#[tokio::test]
async fn chain_is_created_in_order_and_deleted_in_reverse() {
    let api = Api::start().await;
    let nodes = seed_nodes(&api, 2);

    // Static address.
    let addr = api
        .create(
            "global/addresses",
            json!({"name": "lb-ip", "description": "owned"}),
        )
        .await;
    assert_common(&addr, "compute#address", "global/addresses/lb-ip");
    let ip = addr["address"].as_str().expect("allocated IP").to_string();
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{addr:#}");
    assert_eq!(addr["status"], "RESERVED");
    assert_eq!(addr["addressType"], "EXTERNAL");
    assert_eq!(addr["networkTier"], "PREMIUM");
    assert_eq!(addr["labelFingerprint"], "42WmSpB8rSM=");
    assert!(addr.get("users").is_none());

    // Health check, with the server defaults filled in.
    let hc = api
        .create(
            "global/healthChecks",
            json!({"name": "hc", "type": "HTTP",
                   "httpHealthCheck": {"port": 30001, "requestPath": "/healthz"}}),
        )
        .await;
    assert_common(&hc, "compute#healthCheck", "global/healthChecks/hc");
    assert_eq!(hc["checkIntervalSec"], 5);
    assert_eq!(hc["timeoutSec"], 5);
    assert_eq!(hc["healthyThreshold"], 2);
    assert_eq!(hc["unhealthyThreshold"], 2);
    assert_eq!(hc["httpHealthCheck"]["proxyHeader"], "NONE");
    assert!(
        hc.get("fingerprint").is_none(),
        "health checks have no fingerprint"
    );

    // Instance group with the nodes and a named port.
    let ig_path = format!("zones/{ZONE}/instanceGroups/ig");
    let ig = api
        .create(&format!("zones/{ZONE}/instanceGroups"), json!({"name": "ig"}))
        .await;
    assert_common(&ig, "compute#instanceGroup", &ig_path);
    assert_eq!(ig["zone"], link(&format!("zones/{ZONE}")));
    assert_eq!(ig["size"], 0);
    let add = api
        .done(
            Method::POST,
            &format!("{ig_path}/addInstances"),
            Some(json!({"instances": nodes.iter().map(|n| json!({"instance": n})).collect::<Vec<_>>()})),
        )
        .await;
    assert_eq!(add["operationType"], "compute.instanceGroups.addInstances");
    assert_eq!(add["zone"], link(&format!("zones/{ZONE}")));
    api.done(
        Method::POST,
        &format!("{ig_path}/setNamedPorts"),
        Some(json!({"namedPorts": [{"name": "port30001", "port": 30001}], "fingerprint": ig["fingerprint"]})),
    )
    .await;
    let ig2 = api.get(&ig_path).await.ok();
    assert_eq!(ig2["size"], 2);
    assert_eq!(ig2["namedPorts"], json!([{"name": "port30001", "port": 30001}]));
    assert_ne!(
        ig2["fingerprint"], ig["fingerprint"],
        "fingerprint changes on every write"
    );
    let members = api
        .post(
            &format!("{ig_path}/listInstances"),
            json!({"instanceState": "ALL"}),
        )
        .await
        .ok();
    assert_eq!(members["kind"], "compute#instanceGroupsListInstances");
    assert_eq!(members["items"][0]["instance"], nodes[0]);
    assert_eq!(members["items"][1]["status"], "RUNNING");

    // Backend service: references as a partial path (health check) and a full URL (group).
    let bs = api
        .create(
            "global/backendServices",
            json!({"name": "bs", "protocol": "HTTP", "portName": "port30001",
                   "healthChecks": ["global/healthChecks/hc"],
                   "backends": [{"group": link(&ig_path), "balancingMode": "RATE", "maxRatePerInstance": 1}],
                   "logConfig": {"enable": true, "sampleRate": 1.0}}),
        )
        .await;
    assert_common(&bs, "compute#backendService", "global/backendServices/bs");
    assert_eq!(bs["healthChecks"], json!([link("global/healthChecks/hc")]));
    assert_eq!(bs["backends"][0]["group"], link(&ig_path));
    assert_eq!(bs["backends"][0]["capacityScaler"], 1);
    for (field, value) in [
        ("affinityCookieTtlSec", json!(0)),
        ("connectionDraining", json!({"drainingTimeoutSec": 0})),
        ("description", json!("")),
        ("enableCDN", json!(false)),
        ("loadBalancingScheme", json!("EXTERNAL")),
        ("port", json!(80)),
        ("sessionAffinity", json!("NONE")),
        ("timeoutSec", json!(30)),
    ] {
        assert_eq!(bs[field], value, "default of {field}: {bs:#}");
    }
    assert_eq!(bs["fingerprint"].as_str().map(str::len), Some(12));
    let health = api
        .post(
            "global/backendServices/bs/getHealth",
            json!({"group": link(&ig_path)}),
        )
        .await
        .ok();
    assert_eq!(health["kind"], "compute#backendServiceGroupHealth");
    assert_eq!(health["healthStatus"].as_array().map(Vec::len), Some(2));
    assert_eq!(health["healthStatus"][0]["healthState"], "HEALTHY");
    assert_eq!(health["healthStatus"][0]["port"], 30001);
    assert_eq!(health["healthStatus"][0]["instance"], nodes[0]);

    // URL map routing one host to the backend service.
    let um = api
        .create(
            "global/urlMaps",
            json!({"name": "um", "defaultService": "projects/p/global/backendServices/bs",
                   "hostRules": [{"hosts": ["example.com"], "pathMatcher": "host1"}],
                   "pathMatchers": [{"name": "host1", "defaultService": link("global/backendServices/bs"),
                                     "pathRules": [{"paths": ["/api/*"], "service": "global/backendServices/bs"}]}]}),
        )
        .await;
    assert_common(&um, "compute#urlMap", "global/urlMaps/um");
    assert_eq!(um["defaultService"], link("global/backendServices/bs"));
    assert_eq!(
        um["pathMatchers"][0]["pathRules"][0]["service"],
        link("global/backendServices/bs")
    );

    // Certificate: the key is never returned.
    let (pem, key) = cert("example.com");
    let c = api
        .create(
            "global/sslCertificates",
            json!({"name": "cert", "certificate": pem, "privateKey": key}),
        )
        .await;
    assert_common(&c, "compute#sslCertificate", "global/sslCertificates/cert");
    assert!(c.get("privateKey").is_none());
    assert_eq!(c["type"], "SELF_MANAGED");
    assert_eq!(c["certificate"], pem.as_str());
    assert_eq!(c["subjectAlternativeNames"], json!(["example.com"]));
    assert!(is_rfc3339_millis(&c["expireTime"]), "{c:#}");

    // HTTPS proxy.
    let tps = api
        .create(
            "global/targetHttpsProxies",
            json!({"name": "tps", "urlMap": "global/urlMaps/um", "sslCertificates": ["global/sslCertificates/cert"]}),
        )
        .await;
    assert_common(&tps, "compute#targetHttpsProxy", "global/targetHttpsProxies/tps");
    assert_eq!(tps["urlMap"], link("global/urlMaps/um"));
    assert_eq!(
        tps["sslCertificates"],
        json!([link("global/sslCertificates/cert")])
    );
    assert_eq!(tps["quicOverride"], "NONE");

    // Forwarding rule on the reserved address; "443" reads back as "443-443".
    let fr = api
        .create(
            "global/forwardingRules",
            json!({"name": "fr", "IPAddress": link("global/addresses/lb-ip"), "portRange": "443",
                   "target": link("global/targetHttpsProxies/tps")}),
        )
        .await;
    assert_common(&fr, "compute#forwardingRule", "global/forwardingRules/fr");
    assert_eq!(fr["IPAddress"], ip.as_str());
    assert_eq!(fr["portRange"], "443-443");
    assert_eq!(fr["IPProtocol"], "TCP");
    assert_eq!(fr["networkTier"], "PREMIUM");
    assert_eq!(fr["loadBalancingScheme"], "EXTERNAL");
    assert_eq!(fr["labelFingerprint"], "42WmSpB8rSM=");
    let addr = api.get("global/addresses/lb-ip").await.ok();
    assert_eq!(addr["status"], "IN_USE");
    assert_eq!(addr["users"], json!([link("global/forwardingRules/fr")]));

    // Out of order: everything below the forwarding rule is in use.
    for (path, user) in [
        ("global/addresses/lb-ip", "global/forwardingRules/fr"),
        ("global/targetHttpsProxies/tps", "global/forwardingRules/fr"),
        ("global/sslCertificates/cert", "global/targetHttpsProxies/tps"),
        ("global/urlMaps/um", "global/targetHttpsProxies/tps"),
        ("global/backendServices/bs", "global/urlMaps/um"),
        ("global/healthChecks/hc", "global/backendServices/bs"),
        (ig_path.as_str(), "global/backendServices/bs"),
    ] {
        let r = api.delete(path).await;
        r.assert_error(400, "resourceInUseByAnotherResource");
        assert!(
            r.message().contains(&format!("'projects/p/{path}'")),
            "{}",
            r.message()
        );
        assert!(
            r.message()
                .contains(&format!("is already being used by 'projects/p/{user}'")),
            "{}",
            r.message()
        );
    }

    // In reverse order everything goes, and stays gone.
    for path in [
        "global/forwardingRules/fr",
        "global/targetHttpsProxies/tps",
        "global/sslCertificates/cert",
        "global/urlMaps/um",
        "global/backendServices/bs",
        "global/healthChecks/hc",
        ig_path.as_str(),
        "global/addresses/lb-ip",
    ] {
        let op = api.done(Method::DELETE, path, None).await;
        assert_eq!(op["operationType"], "delete");
        assert_eq!(op["targetLink"], link(path));
        api.get(path).await.assert_error(404, "notFound");
    }
    let state = api.gce.state();
    let left: Vec<&String> = state["resources"]
        .as_object()
        .map(|m| m.keys().filter(|k| !k.contains("/instances/")).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test]
async fn http_chain_with_ephemeral_ip_and_set_target() {
    let api = Api::start().await;
    api.create("global/backendServices", json!({"name": "default"}))
        .await;
    api.create(
        "global/urlMaps",
        json!({"name": "um", "defaultService": "global/backendServices/default"}),
    )
    .await;
    api.create(
        "global/urlMaps",
        json!({"name": "um2", "defaultService": "global/backendServices/default"}),
    )
    .await;
    api.create(
        "global/targetHttpProxies",
        json!({"name": "tp", "urlMap": "global/urlMaps/um"}),
    )
    .await;
    api.create(
        "global/targetHttpProxies",
        json!({"name": "tp2", "urlMap": "global/urlMaps/um2"}),
    )
    .await;
    let fr = api
        .create(
            "global/forwardingRules",
            json!({"name": "fr", "target": "global/targetHttpProxies/tp"}),
        )
        .await;
    let ip = fr["IPAddress"].as_str().expect("ephemeral IP").to_string();
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok());
    assert_eq!(fr["portRange"], "80-80");

    // setTarget keeps the IP; its operation type is spelled like the real one.
    let op = api
        .done(
            Method::POST,
            "global/forwardingRules/fr/setTarget",
            Some(json!({"target": link("global/targetHttpProxies/tp2")})),
        )
        .await;
    assert_eq!(op["operationType"], "SetTarget");
    let fr2 = api.get("global/forwardingRules/fr").await.ok();
    assert_eq!(fr2["IPAddress"], ip.as_str());
    assert_eq!(fr2["target"], link("global/targetHttpProxies/tp2"));
    assert_ne!(fr2["fingerprint"], fr["fingerprint"]);

    // setUrlMap at its real path, without /global/.
    api.done(
        Method::POST,
        "targetHttpProxies/tp/setUrlMap",
        Some(json!({"urlMap": "global/urlMaps/um2"})),
    )
    .await;
    assert_eq!(
        api.get("global/targetHttpProxies/tp").await.ok()["urlMap"],
        link("global/urlMaps/um2")
    );
    // um is unused now and can go; um2 is still used.
    api.done(Method::DELETE, "global/urlMaps/um", None).await;
    api.delete("global/urlMaps/um2")
        .await
        .assert_error(400, "resourceInUseByAnotherResource");
}
