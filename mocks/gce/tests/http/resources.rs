//! Per-collection contracts: validation, references, fingerprints, limits and the errors the real
//! API gives for each.

use fake_gce::InstanceSeed;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Api, ZONE, cert, config, link, seed_nodes};

async fn hc(api: &Api, name: &str) {
    api.create("global/healthChecks", json!({"name": name, "type": "HTTP"}))
        .await;
}

async fn bs(api: &Api, name: &str) -> Value {
    api.create("global/backendServices", json!({"name": name})).await
}

async fn url_map(api: &Api, name: &str, service: &str) -> Value {
    api.create(
        "global/urlMaps",
        json!({"name": name, "defaultService": format!("global/backendServices/{service}")}),
    )
    .await
}

async fn certificate(api: &Api, name: &str) {
    let (pem, key) = cert("example.com");
    api.create(
        "global/sslCertificates",
        json!({"name": name, "certificate": pem, "privateKey": key}),
    )
    .await;
}

#[tokio::test]
async fn names_are_validated_and_unique() {
    let api = Api::start().await;
    for bad in ["Upper", "1abc", "a_b", "ends-", &"a".repeat(64)] {
        let r = api
            .post("global/healthChecks", json!({"name": bad, "type": "TCP"}))
            .await;
        r.assert_error(400, "invalid");
        assert_eq!(
            r.message(),
            format!(
                "Invalid value for field 'resource.name': '{bad}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'"
            )
        );
    }
    api.post("global/healthChecks", json!({"type": "TCP"}))
        .await
        .assert_error(400, "required");
    hc(&api, "hc").await;
    let r = api
        .post("global/healthChecks", json!({"name": "hc", "type": "TCP"}))
        .await;
    r.assert_error(409, "alreadyExists");
    assert_eq!(
        r.message(),
        "The resource 'projects/p/global/healthChecks/hc' already exists"
    );
    let r = api.get("global/healthChecks/nope").await;
    r.assert_error(404, "notFound");
    assert_eq!(
        r.message(),
        "The resource 'projects/p/global/healthChecks/nope' was not found"
    );
    api.delete("global/healthChecks/nope")
        .await
        .assert_error(404, "notFound");
    api.get("global/healthChecks/Bad_Name")
        .await
        .assert_error(400, "invalid");
    // A numeric id works in place of the name, as in the real API.
    let id = api.get("global/healthChecks/hc").await.ok()["id"]
        .as_str()
        .map(str::to_string);
    let by_id = api
        .get(&format!("global/healthChecks/{}", id.unwrap_or_default()))
        .await
        .ok();
    assert_eq!(by_id["name"], "hc");
}

#[tokio::test]
async fn malformed_bodies_are_400_not_panics() {
    let api = Api::start().await;
    let raw = |body: &'static str| {
        api.client
            .post(api.url("global/urlMaps"))
            .header("content-type", "application/json")
            .body(body)
    };
    for body in ["{", "[]", "\"x\"", "{\"name\": 5}"] {
        let r = api.send(raw(body)).await;
        assert_eq!(r.status, 400, "{body}: {:#}", r.body);
        assert!(
            matches!(r.reason(), "parseError" | "invalid"),
            "{body}: {:#}",
            r.body
        );
    }
    // Wrong types inside a valid object.
    for body in [
        json!({"name": "a", "type": "HTTP", "checkIntervalSec": "often"}),
        json!({"name": "a", "type": "HTTP", "httpHealthCheck": []}),
        json!({"name": "a", "type": 7}),
    ] {
        api.post("global/healthChecks", body)
            .await
            .assert_error(400, "invalid");
    }
    for body in [
        json!({"name": "b", "backends": "x"}),
        json!({"name": "b", "backends": [7]}),
        json!({"name": "b", "healthChecks": [1]}),
        json!({"name": "b", "timeoutSec": -1}),
    ] {
        api.post("global/backendServices", body)
            .await
            .assert_error(400, "invalid");
    }
    api.post("global/forwardingRules", json!({"name": "f", "target": {"x": 1}}))
        .await
        .assert_error(400, "invalid");
}

#[tokio::test]
async fn unknown_fields_round_trip_and_unknown_query_parameters_are_ignored() {
    let api = Api::start().await;
    let r = api
        .client
        .post(api.url("global/healthChecks?alt=json&prettyPrint=false&$apiVersion=x"))
        .json(&json!({"name": "hc", "type": "TCP", "futureField": {"a": [1, 2]}, "tcpHealthCheck": {"port": 80, "extra": true}}))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(r.ok(), Some(200));
    let got = api.get("global/healthChecks/hc?alt=json").await.ok();
    assert_eq!(got["futureField"], json!({"a": [1, 2]}));
    assert_eq!(got["tcpHealthCheck"]["extra"], true);
    // Output-only fields a client sends are ignored.
    let got = api
        .create(
            "global/healthChecks",
            json!({"name": "hc2", "type": "TCP", "id": "1", "selfLink": "x", "kind": "y"}),
        )
        .await;
    assert_ne!(got["id"], "1");
    assert_eq!(got["selfLink"], link("global/healthChecks/hc2"));
    assert_eq!(got["kind"], "compute#healthCheck");
}

#[tokio::test]
async fn health_checks_update_patch_and_validation() {
    let api = Api::start().await;
    let r = api
        .post(
            "global/healthChecks",
            json!({"name": "hc", "type": "HTTP", "checkIntervalSec": 5, "timeoutSec": 10}),
        )
        .await;
    r.assert_error(400, "invalid");
    assert!(
        r.message()
            .contains("Timeout sec must be less than or equal to check interval sec"),
        "{}",
        r.message()
    );
    api.post("global/healthChecks", json!({"name": "hc", "type": "NOPE"}))
        .await
        .assert_error(400, "invalid");
    api.post(
        "global/healthChecks",
        json!({"name": "hc", "type": "HTTP", "tcpHealthCheck": {}}),
    )
    .await
    .assert_error(400, "invalid");
    // The type is inferred from the one settings block given.
    let got = api
        .create(
            "global/healthChecks",
            json!({"name": "hc", "httpsHealthCheck": {"requestPath": "/h"}}),
        )
        .await;
    assert_eq!(got["type"], "HTTPS");
    assert_eq!(got["httpsHealthCheck"]["port"], 443);
    // PATCH merges, PUT replaces (defaults come back).
    api.done(
        Method::PATCH,
        "global/healthChecks/hc",
        Some(json!({"checkIntervalSec": 60, "timeoutSec": 60})),
    )
    .await;
    let got = api.get("global/healthChecks/hc").await.ok();
    assert_eq!(got["checkIntervalSec"], 60);
    assert_eq!(got["httpsHealthCheck"]["requestPath"], "/h");
    api.done(
        Method::PUT,
        "global/healthChecks/hc",
        Some(json!({"name": "hc", "type": "TCP", "tcpHealthCheck": {"port": 9000}})),
    )
    .await;
    let got = api.get("global/healthChecks/hc").await.ok();
    assert_eq!(got["type"], "TCP");
    assert_eq!(got["checkIntervalSec"], 5);
    assert!(got.get("httpsHealthCheck").is_none());
    api.put("global/healthChecks/hc", json!({"name": "other", "type": "TCP"}))
        .await
        .assert_error(400, "invalid");
    // USE_SERVING_PORT takes no port.
    let got = api
        .create(
            "global/healthChecks",
            json!({"name": "neg", "type": "HTTP", "httpHealthCheck": {"portSpecification": "USE_SERVING_PORT"}}),
        )
        .await;
    assert!(got["httpHealthCheck"].get("port").is_none());
    // The legacy collection works too.
    let legacy = api
        .create("global/httpHealthChecks", json!({"name": "legacy"}))
        .await;
    assert_eq!(legacy["kind"], "compute#httpHealthCheck");
    assert_eq!(legacy["port"], 80);
}

#[tokio::test]
async fn backend_services_references_and_fingerprints() {
    let api = Api::start().await;
    seed_nodes(&api, 1);
    hc(&api, "hc").await;
    let ig = format!("zones/{ZONE}/instanceGroups/ig");
    api.create(&format!("zones/{ZONE}/instanceGroups"), json!({"name": "ig"}))
        .await;

    // No backends, no health check: fine (the empty default backend).
    let empty = bs(&api, "empty").await;
    assert!(empty.get("backends").is_none() && empty.get("healthChecks").is_none());
    // Backends need a health check.
    api.post(
        "global/backendServices",
        json!({"name": "b", "backends": [{"group": link(&ig)}]}),
    )
    .await
    .assert_error(400, "invalid");
    // The group must be a group (any reference form: see `references`), and must exist.
    api.post(
        "global/backendServices",
        json!({"name": "b", "healthChecks": ["global/healthChecks/hc"], "backends": [{"group": "global/healthChecks/hc"}]}),
    )
    .await
    .assert_error(400, "invalid");
    let r = api
        .post(
            "global/backendServices",
            json!({"name": "b", "healthChecks": ["global/healthChecks/hc"],
                   "backends": [{"group": link(&format!("zones/{ZONE}/instanceGroups/missing"))}]}),
        )
        .await;
    r.assert_error(404, "notFound");
    assert_eq!(
        r.message(),
        format!("The resource 'projects/p/zones/{ZONE}/instanceGroups/missing' was not found")
    );
    api.post(
        "global/backendServices",
        json!({"name": "b", "healthChecks": ["global/healthChecks/missing"]}),
    )
    .await
    .assert_error(404, "notFound");
    api.post(
        "global/backendServices",
        json!({"name": "b", "healthChecks": ["global/healthChecks/hc", "global/healthChecks/hc"]}),
    )
    .await
    .assert_error(400, "invalid");
    api.post(
        "global/backendServices",
        json!({"name": "b", "healthChecks": ["global/urlMaps/x"]}),
    )
    .await
    .assert_error(400, "invalid");
    api.post(
        "global/backendServices",
        json!({"name": "b", "healthChecks": ["global/healthChecks/hc"],
               "backends": [{"group": link(&ig)}, {"group": link(&ig)}]}),
    )
    .await
    .assert_error(400, "invalid");
    api.post(
        "global/backendServices",
        json!({"name": "b", "healthChecks": ["global/healthChecks/hc"],
               "backends": [{"group": link(&ig), "balancingMode": "RATE"}]}),
    )
    .await
    .assert_error(400, "invalid");
    let b = api
        .create(
            "global/backendServices",
            json!({"name": "b", "healthChecks": [link("global/healthChecks/hc")],
                   "backends": [{"group": link(&ig)}]}),
        )
        .await;
    assert_eq!(b["backends"][0]["balancingMode"], "UTILIZATION");

    // update/patch need the current fingerprint.
    let r = api
        .patch("global/backendServices/b", json!({"timeoutSec": 60}))
        .await;
    r.assert_error(412, "conditionNotMet");
    assert_eq!(r.message(), "Invalid fingerprint.");
    api.patch(
        "global/backendServices/b",
        json!({"timeoutSec": 60, "fingerprint": "AAAAAAAAAAA="}),
    )
    .await
    .assert_error(412, "conditionNotMet");
    api.done(
        Method::PATCH,
        "global/backendServices/b",
        Some(json!({"timeoutSec": 60, "fingerprint": b["fingerprint"]})),
    )
    .await;
    let b2 = api.get("global/backendServices/b").await.ok();
    assert_eq!(b2["timeoutSec"], 60);
    assert_eq!(b2["backends"], b["backends"], "patch keeps what it does not name");
    assert_ne!(b2["fingerprint"], b["fingerprint"]);
    // The old fingerprint is now stale.
    api.put(
        "global/backendServices/b",
        json!({"name": "b", "fingerprint": b["fingerprint"]}),
    )
    .await
    .assert_error(412, "conditionNotMet");
    // PUT replaces: dropping the backends and the health check is allowed.
    api.done(
        Method::PUT,
        "global/backendServices/b",
        Some(json!({"name": "b", "fingerprint": b2["fingerprint"]})),
    )
    .await;
    let b3 = api.get("global/backendServices/b").await.ok();
    assert!(b3.get("backends").is_none());
    assert_eq!(b3["timeoutSec"], 30);
    // Now neither the group nor the health check is in use.
    api.done(Method::DELETE, &ig, None).await;
    api.done(Method::DELETE, "global/healthChecks/hc", None).await;
    // The scheme cannot change.
    api.put(
        "global/backendServices/b",
        json!({"name": "b", "fingerprint": b3["fingerprint"], "loadBalancingScheme": "EXTERNAL_MANAGED"}),
    )
    .await
    .assert_error(400, "invalid");
}

#[tokio::test]
async fn get_health_reports_each_instance_and_the_knob() {
    let api = Api::start().await;
    let nodes = seed_nodes(&api, 3);
    hc(&api, "hc").await;
    let ig = format!("zones/{ZONE}/instanceGroups/ig");
    api.create(&format!("zones/{ZONE}/instanceGroups"), json!({"name": "ig"}))
        .await;
    let members: Vec<Value> = nodes.iter().map(|n| json!({"instance": n})).collect();
    api.done(
        Method::POST,
        &format!("{ig}/addInstances"),
        Some(json!({"instances": members})),
    )
    .await;
    api.create(
        "global/backendServices",
        json!({"name": "b", "port": 8080, "healthChecks": ["global/healthChecks/hc"], "backends": [{"group": link(&ig)}]}),
    )
    .await;
    assert!(api.gce.set_instance_health(ZONE, "node-1", false));
    let h = api
        .post("global/backendServices/b/getHealth", json!({"group": link(&ig)}))
        .await
        .ok();
    let states: Vec<&str> = h["healthStatus"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["healthState"].as_str())
        .collect();
    assert_eq!(states, ["HEALTHY", "UNHEALTHY", "HEALTHY"]);
    assert_eq!(
        h["healthStatus"][0]["port"], 8080,
        "no named port: the service port"
    );
    assert!(
        h["healthStatus"][0]["ipAddress"]
            .as_str()
            .is_some_and(|s| s.starts_with("10."))
    );
    // The admin API does the same.
    let r = api
        .call(
            Method::PUT,
            &format!("/_fake/instances/{ZONE}/node-1/health?project=p"),
            Some(json!({"healthState": "HEALTHY"})),
        )
        .await;
    assert_eq!(r.status, 200);
    let h = api
        .post("global/backendServices/b/getHealth", json!({"group": link(&ig)}))
        .await
        .ok();
    assert_eq!(h["healthStatus"][1]["healthState"], "HEALTHY");
    // A group that is not a backend of the service.
    api.post(
        "global/backendServices/b/getHealth",
        json!({"group": link("zones/us-central1-a/instanceGroups/x")}),
    )
    .await
    .assert_error(400, "invalid");
    api.post(
        "global/backendServices/nope/getHealth",
        json!({"group": link(&ig)}),
    )
    .await
    .assert_error(404, "notFound");
}

#[tokio::test]
async fn url_maps_validation_limits_and_tests() {
    let mut cfg = config();
    cfg.url_map_limits.max_host_rules = 2;
    cfg.url_map_limits.max_path_rules_per_matcher = 2;
    cfg.url_map_limits.max_size_bytes = 4096;
    let api = Api::with(cfg).await;
    bs(&api, "a").await;
    bs(&api, "b").await;
    let base = |extra: Value| {
        let mut m = json!({"name": "um", "defaultService": "global/backendServices/a"});
        if let (Some(m), Some(e)) = (m.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        m
    };
    // Missing default, missing reference, two defaults.
    api.post("global/urlMaps", json!({"name": "um"}))
        .await
        .assert_error(400, "invalid");
    api.post(
        "global/urlMaps",
        json!({"name": "um", "defaultService": "global/backendServices/zz"}),
    )
    .await
    .assert_error(404, "notFound");
    api.post(
        "global/urlMaps",
        base(json!({"defaultUrlRedirect": {"httpsRedirect": true}})),
    )
    .await
    .assert_error(400, "invalid");
    // A host rule must name an existing path matcher; hosts are unique; paths are well formed.
    api.post(
        "global/urlMaps",
        base(json!({"hostRules": [{"hosts": ["x.com"], "pathMatcher": "nope"}]})),
    )
    .await
    .assert_error(400, "invalid");
    let pm = |paths: Value| {
        json!([{"name": "pm", "defaultService": "global/backendServices/a",
                                   "pathRules": [{"paths": paths, "service": "global/backendServices/b"}]}])
    };
    api.post(
        "global/urlMaps",
        base(json!({"hostRules": [{"hosts": ["x.com"], "pathMatcher": "pm"}, {"hosts": ["x.com"], "pathMatcher": "pm"}],
                    "pathMatchers": pm(json!(["/"]))})),
    )
    .await
    .assert_error(400, "invalid");
    for bad in [
        json!(["no-slash"]),
        json!(["/a*"]),
        json!(["/a", "/a"]),
        json!(["/a?b"]),
    ] {
        api.post(
            "global/urlMaps",
            base(json!({"hostRules": [{"hosts": ["x.com"], "pathMatcher": "pm"}], "pathMatchers": pm(bad.clone())})),
        )
        .await
        .assert_error(400, "invalid");
    }
    // Limits give 413 fieldSizeTooLarge.
    let r = api
        .post(
            "global/urlMaps",
            base(json!({"hostRules": [
                {"hosts": ["a.com"], "pathMatcher": "pm"},
                {"hosts": ["b.com"], "pathMatcher": "pm"},
                {"hosts": ["c.com"], "pathMatcher": "pm"}],
                "pathMatchers": pm(json!(["/"]))})),
        )
        .await;
    r.assert_error(413, "fieldSizeTooLarge");
    assert_eq!(
        r.message(),
        "Value for field 'resource.hostRules' is too large: maximum size 2 element(s); actual size 3."
    );
    let rules: Vec<Value> = (0..3)
        .map(|i| json!({"paths": [format!("/p{i}")], "service": "global/backendServices/b"}))
        .collect();
    api.post(
        "global/urlMaps",
        base(json!({"hostRules": [{"hosts": ["a.com"], "pathMatcher": "pm"}],
                    "pathMatchers": [{"name": "pm", "defaultService": "global/backendServices/a", "pathRules": rules}]})),
    )
    .await
    .assert_error(413, "fieldSizeTooLarge");
    api.post("global/urlMaps", base(json!({"description": "x".repeat(5000)})))
        .await
        .assert_error(413, "fieldSizeTooLarge");
    // tests[] are evaluated.
    let good = base(json!({
        "hostRules": [{"hosts": ["x.com"], "pathMatcher": "pm"}],
        "pathMatchers": pm(json!(["/api/*"])),
        "tests": [{"host": "x.com", "path": "/api/v1", "service": "global/backendServices/b"},
                  {"host": "y.com", "path": "/api/v1", "service": "global/backendServices/a"}]}));
    let mut failing = good.clone();
    failing["tests"][0]["service"] = json!("global/backendServices/a");
    api.post("global/urlMaps", failing.clone())
        .await
        .assert_error(400, "invalid");
    let um = api.create("global/urlMaps", good).await;
    assert_eq!(um["tests"][0]["service"], link("global/backendServices/b"));
    // Tests reference services too.
    api.delete("global/backendServices/b")
        .await
        .assert_error(400, "resourceInUseByAnotherResource");
    // validate checks without storing.
    let v = api
        .post("global/urlMaps/um/validate", json!({"resource": failing}))
        .await
        .ok();
    assert_eq!(v["result"]["loadSucceeded"], false);
    let v = api
        .post("global/urlMaps/um/validate", json!({"resource": um}))
        .await
        .ok();
    assert_eq!(v["result"]["loadSucceeded"], true, "{v:#}");
    // update needs the fingerprint.
    let mut next = um.clone();
    next["defaultService"] = json!(link("global/backendServices/b"));
    // The second test follows the new default, or the update is refused.
    api.put("global/urlMaps/um", next.clone())
        .await
        .assert_error(400, "invalid");
    next["tests"][1]["service"] = json!(link("global/backendServices/b"));
    next.as_object_mut().map(|o| o.remove("fingerprint"));
    api.put("global/urlMaps/um", next.clone())
        .await
        .assert_error(412, "conditionNotMet");
    next["fingerprint"] = um["fingerprint"].clone();
    api.done(Method::PUT, "global/urlMaps/um", Some(next)).await;
    assert_eq!(
        api.get("global/urlMaps/um").await.ok()["defaultService"],
        link("global/backendServices/b")
    );
    // A redirect-only map is fine.
    let r = api
        .create("global/urlMaps", json!({"name": "redirect", "defaultUrlRedirect": {"httpsRedirect": true, "redirectResponseCode": "MOVED_PERMANENTLY_DEFAULT"}}))
        .await;
    assert!(r.get("defaultService").is_none());
}

#[tokio::test]
async fn target_proxies_certificates_and_policies() {
    let api = Api::start().await;
    bs(&api, "b").await;
    url_map(&api, "um", "b").await;
    url_map(&api, "um2", "b").await;
    // A proxy before its URL map: 404 at request time.
    let r = api
        .post(
            "global/targetHttpProxies",
            json!({"name": "tp", "urlMap": "global/urlMaps/missing"}),
        )
        .await;
    r.assert_error(404, "notFound");
    assert_eq!(
        r.message(),
        "The resource 'projects/p/global/urlMaps/missing' was not found"
    );
    api.post("global/targetHttpProxies", json!({"name": "tp"}))
        .await
        .assert_error(400, "invalid");
    let tp = api
        .create(
            "global/targetHttpProxies",
            json!({"name": "tp", "urlMap": link("global/urlMaps/um")}),
        )
        .await;
    // patch needs the fingerprint; setUrlMap does not.
    api.patch("global/targetHttpProxies/tp", json!({"description": "x"}))
        .await
        .assert_error(412, "conditionNotMet");
    api.done(
        Method::PATCH,
        "global/targetHttpProxies/tp",
        Some(json!({"description": "x", "fingerprint": tp["fingerprint"]})),
    )
    .await;
    api.post(
        "targetHttpProxies/tp/setUrlMap",
        json!({"urlMap": "global/urlMaps/missing"}),
    )
    .await
    .assert_error(404, "notFound");
    api.done(
        Method::POST,
        "targetHttpProxies/tp/setUrlMap",
        Some(json!({"urlMap": "global/urlMaps/um2"})),
    )
    .await;
    // HTTPS: at least one and at most 15 certificates.
    let r = api
        .post(
            "global/targetHttpsProxies",
            json!({"name": "tps", "urlMap": "global/urlMaps/um"}),
        )
        .await;
    r.assert_error(400, "invalid");
    assert_eq!(
        r.message(),
        "At least 1 SSL certificate must be specified for setting SSL certificates in TargetHttpsProxy"
    );
    for i in 0..16 {
        certificate(&api, &format!("c{i}")).await;
    }
    let certs = |n: usize| {
        (0..n)
            .map(|i| json!(format!("global/sslCertificates/c{i}")))
            .collect::<Vec<_>>()
    };
    api.post(
        "global/targetHttpsProxies",
        json!({"name": "tps", "urlMap": "global/urlMaps/um", "sslCertificates": certs(16)}),
    )
    .await
    .assert_error(400, "invalid");
    api.create(
        "global/targetHttpsProxies",
        json!({"name": "tps", "urlMap": "global/urlMaps/um", "sslCertificates": certs(15)}),
    )
    .await;
    api.post(
        "targetHttpsProxies/tps/setSslCertificates",
        json!({"sslCertificates": []}),
    )
    .await
    .assert_error(400, "invalid");
    api.post(
        "targetHttpsProxies/tps/setSslCertificates",
        json!({"sslCertificates": certs(16)}),
    )
    .await
    .assert_error(400, "invalid");
    // Rotation: switch the proxy to the new certificate, then the old one can go.
    api.delete("global/sslCertificates/c0")
        .await
        .assert_error(400, "resourceInUseByAnotherResource");
    api.done(
        Method::POST,
        "targetHttpsProxies/tps/setSslCertificates",
        Some(json!({"sslCertificates": [link("global/sslCertificates/c15")]})),
    )
    .await;
    api.done(Method::DELETE, "global/sslCertificates/c0", None).await;
    api.done(
        Method::POST,
        "targetHttpsProxies/tps/setUrlMap",
        Some(json!({"urlMap": "global/urlMaps/um2"})),
    )
    .await;
    api.done(Method::DELETE, "global/urlMaps/um", None).await;
    // SSL policy: attach via setSslPolicy (with /global/), clear with an empty value.
    let policy = api
        .create(
            "global/sslPolicies",
            json!({"name": "modern", "profile": "MODERN", "minTlsVersion": "TLS_1_2"}),
        )
        .await;
    assert!(
        policy["enabledFeatures"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    );
    api.post(
        "global/targetHttpsProxies/tps/setSslPolicy",
        json!({"sslPolicy": "global/sslPolicies/nope"}),
    )
    .await
    .assert_error(404, "notFound");
    api.done(
        Method::POST,
        "global/targetHttpsProxies/tps/setSslPolicy",
        Some(json!({"sslPolicy": "global/sslPolicies/modern"})),
    )
    .await;
    assert_eq!(
        api.get("global/targetHttpsProxies/tps").await.ok()["sslPolicy"],
        link("global/sslPolicies/modern")
    );
    api.delete("global/sslPolicies/modern")
        .await
        .assert_error(400, "resourceInUseByAnotherResource");
    api.done(
        Method::POST,
        "global/targetHttpsProxies/tps/setSslPolicy",
        Some(json!({"sslPolicy": null})),
    )
    .await;
    assert!(
        api.get("global/targetHttpsProxies/tps")
            .await
            .ok()
            .get("sslPolicy")
            .is_none()
    );
    api.done(
        Method::POST,
        "global/targetHttpsProxies/tps/setQuicOverride",
        Some(json!({"quicOverride": "ENABLE"})),
    )
    .await;
    assert_eq!(
        api.get("global/targetHttpsProxies/tps").await.ok()["quicOverride"],
        "ENABLE"
    );
    // The set* paths are where the real API has them, and only there.
    let r = api
        .post(
            "global/targetHttpsProxies/tps/setSslCertificates",
            json!({"sslCertificates": certs(1)}),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, Value::Null, "unknown routes answer HTML, not JSON");
    assert_eq!(
        api.put("global/targetHttpsProxies/tps", json!({"name": "tps"}))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn ssl_certificates_must_be_valid_and_are_immutable() {
    let api = Api::start().await;
    let (pem, key) = cert("a.example.com");
    let (_, other_key) = cert("b.example.com");
    for body in [
        json!({"name": "c", "certificate": "not pem", "privateKey": key}),
        json!({"name": "c", "certificate": pem, "privateKey": "not pem"}),
        json!({"name": "c", "certificate": pem, "privateKey": other_key}),
        json!({"name": "c", "certificate": pem}),
        json!({"name": "c", "privateKey": key}),
    ] {
        api.post("global/sslCertificates", body)
            .await
            .assert_error(400, "invalid");
    }
    let chain = std::iter::repeat_n(pem.as_str(), 6).collect::<String>();
    api.post(
        "global/sslCertificates",
        json!({"name": "c", "certificate": chain, "privateKey": key}),
    )
    .await
    .assert_error(400, "invalid");
    // The selfManaged form works too; the key is dropped from both places.
    let c = api
        .create(
            "global/sslCertificates",
            json!({"name": "c", "selfManaged": {"certificate": pem, "privateKey": key}}),
        )
        .await;
    assert!(c["selfManaged"].get("privateKey").is_none());
    assert_eq!(c["subjectAlternativeNames"], json!(["a.example.com"]));
    let state = api.gce.state().to_string();
    assert!(!state.contains("PRIVATE KEY"), "the key is not stored");
    assert_eq!(
        api.patch("global/sslCertificates/c", json!({"description": "x"}))
            .await
            .status,
        404
    );
    assert_eq!(
        api.put("global/sslCertificates/c", json!({"name": "c"}))
            .await
            .status,
        404
    );
    let managed = api
        .create(
            "global/sslCertificates",
            json!({"name": "m", "type": "MANAGED", "managed": {"domains": ["x.example.com"]}}),
        )
        .await;
    assert_eq!(managed["managed"]["status"], "ACTIVE");
    assert_eq!(managed["managed"]["domainStatus"]["x.example.com"], "ACTIVE");
    api.post(
        "global/sslCertificates",
        json!({"name": "m2", "type": "MANAGED", "managed": {"domains": []}}),
    )
    .await
    .assert_error(400, "invalid");
}

#[tokio::test]
async fn ssl_policies_patch_and_features() {
    let api = Api::start().await;
    let p = api.create("global/sslPolicies", json!({"name": "pol"})).await;
    assert_eq!(p["profile"], "COMPATIBLE");
    assert_eq!(p["minTlsVersion"], "TLS_1_0");
    api.post(
        "global/sslPolicies",
        json!({"name": "bad", "customFeatures": ["TLS_RSA_WITH_AES_128_CBC_SHA"]}),
    )
    .await
    .assert_error(400, "invalid");
    api.patch("global/sslPolicies/pol", json!({"minTlsVersion": "TLS_1_2"}))
        .await
        .assert_error(412, "conditionNotMet");
    api.done(
        Method::PATCH,
        "global/sslPolicies/pol",
        Some(json!({"profile": "CUSTOM", "customFeatures": ["TLS_RSA_WITH_AES_128_CBC_SHA"], "fingerprint": p["fingerprint"]})),
    )
    .await;
    let p2 = api.get("global/sslPolicies/pol").await.ok();
    assert_eq!(p2["enabledFeatures"], json!(["TLS_RSA_WITH_AES_128_CBC_SHA"]));
    let f = api.get("global/sslPolicies/listAvailableFeatures").await.ok();
    assert!(f["features"].as_array().is_some_and(|a| a.len() > 5));
}

#[tokio::test]
async fn forwarding_rules_addresses_and_labels() {
    let api = Api::start().await;
    bs(&api, "b").await;
    url_map(&api, "um", "b").await;
    api.create(
        "global/targetHttpProxies",
        json!({"name": "tp", "urlMap": "global/urlMaps/um"}),
    )
    .await;
    certificate(&api, "c").await;
    api.create(
        "global/targetHttpsProxies",
        json!({"name": "tps", "urlMap": "global/urlMaps/um", "sslCertificates": ["global/sslCertificates/c"]}),
    )
    .await;
    let addr = api.create("global/addresses", json!({"name": "ip"})).await;
    let ip = addr["address"].as_str().unwrap_or_default().to_string();

    let r = api.post("global/forwardingRules", json!({"name": "fr"})).await;
    r.assert_error(400, "invalid");
    assert_eq!(
        r.message(),
        "Invalid value for field 'resource.target': ''. No target or backend service specified for forwarding rule."
    );
    api.post(
        "global/forwardingRules",
        json!({"name": "fr", "target": "global/targetHttpProxies/nope"}),
    )
    .await
    .assert_error(404, "notFound");
    api.post(
        "global/forwardingRules",
        json!({"name": "fr", "target": "global/targetHttpProxies/tp", "portRange": "eighty"}),
    )
    .await
    .assert_error(400, "invalid");
    api.post(
        "global/forwardingRules",
        json!({"name": "fr", "target": "global/targetHttpProxies/tp", "IPAddress": "1.2.3.4"}),
    )
    .await
    .assert_error(400, "invalid");
    api.post(
        "global/forwardingRules",
        json!({"name": "fr", "target": "global/targetHttpProxies/tp", "IPAddress": "global/addresses/none"}),
    )
    .await
    .assert_error(404, "notFound");
    api.post(
        "global/forwardingRules",
        json!({"name": "fr", "target": "global/targetHttpProxies/tp", "networkTier": "STANDARD"}),
    )
    .await
    .assert_error(400, "invalid");
    // Two rules share the address on different ports: the usual HTTP + HTTPS pair. The IP may be
    // given as the number itself.
    let http = api
        .create("global/forwardingRules", json!({"name": "http", "target": "global/targetHttpProxies/tp", "IPAddress": ip, "portRange": "80"}))
        .await;
    let https = api
        .create("global/forwardingRules", json!({"name": "https", "target": "global/targetHttpsProxies/tps", "IPAddress": "global/addresses/ip", "portRange": "443-443"}))
        .await;
    assert_eq!(http["IPAddress"], https["IPAddress"]);
    let users = api.get("global/addresses/ip").await.ok()["users"].clone();
    assert_eq!(
        users,
        json!([
            link("global/forwardingRules/http"),
            link("global/forwardingRules/https")
        ])
    );
    // A third on an overlapping port of the same IP is refused.
    api.post(
        "global/forwardingRules",
        json!({"name": "dup", "target": "global/targetHttpProxies/tp", "IPAddress": ip, "portRange": "80"}),
    )
    .await
    .assert_error(400, "invalid");
    // setTarget must keep the proxy type.
    api.post(
        "global/forwardingRules/http/setTarget",
        json!({"target": "global/targetHttpsProxies/tps"}),
    )
    .await
    .assert_error(400, "invalid");
    // setLabels needs the label fingerprint.
    api.post(
        "global/forwardingRules/http/setLabels",
        json!({"labels": {"a": "b"}}),
    )
    .await
    .assert_error(412, "conditionNotMet");
    let op = api
        .done(
            Method::POST,
            "global/forwardingRules/http/setLabels",
            Some(json!({"labels": {"owner": "me"}, "labelFingerprint": http["labelFingerprint"]})),
        )
        .await;
    assert_eq!(op["operationType"], "setLabels");
    let http2 = api.get("global/forwardingRules/http").await.ok();
    assert_eq!(http2["labels"], json!({"owner": "me"}));
    assert_ne!(http2["labelFingerprint"], http["labelFingerprint"]);
    // patch: fingerprint optional but checked when sent; fixed fields cannot change.
    api.patch(
        "global/forwardingRules/http",
        json!({"fingerprint": "AAAAAAAAAAA=", "description": "x"}),
    )
    .await
    .assert_error(412, "conditionNotMet");
    api.patch("global/forwardingRules/http", json!({"portRange": "8080"}))
        .await
        .assert_error(400, "invalid");
    api.done(
        Method::PATCH,
        "global/forwardingRules/http",
        Some(json!({"description": "x"})),
    )
    .await;
    // Address labels.
    api.done(
        Method::POST,
        "global/addresses/ip/setLabels",
        Some(json!({"labels": {"k": "v"}, "labelFingerprint": addr["labelFingerprint"]})),
    )
    .await;
    // Deleting the rules frees the address.
    api.done(Method::DELETE, "global/forwardingRules/http", None)
        .await;
    api.done(Method::DELETE, "global/forwardingRules/https", None)
        .await;
    let addr = api.get("global/addresses/ip").await.ok();
    assert_eq!(addr["status"], "RESERVED");
    assert!(addr.get("users").is_none());
    api.done(Method::DELETE, "global/addresses/ip", None).await;
    // Reserved addresses may be given explicitly, and must be IPs.
    api.post("global/addresses", json!({"name": "x", "address": "nope"}))
        .await
        .assert_error(400, "invalid");
    let fixed = api
        .create(
            "global/addresses",
            json!({"name": "fixed", "address": "34.1.2.3"}),
        )
        .await;
    assert_eq!(fixed["address"], "34.1.2.3");
}

#[tokio::test]
async fn instance_groups_membership_and_named_ports() {
    let api = Api::start().await;
    let nodes = seed_nodes(&api, 2);
    api.gce.seed_instance("us-central1-b", "elsewhere").ok();
    let ig = format!("zones/{ZONE}/instanceGroups/ig");
    api.post("zones/nowhere-1/instanceGroups", json!({"name": "ig"}))
        .await
        .assert_error(400, "invalid");
    let g = api
        .create(
            &format!("zones/{ZONE}/instanceGroups"),
            json!({"name": "ig", "network": "global/networks/default"}),
        )
        .await;
    assert_eq!(g["network"], link("global/networks/default"));
    let add = |who: Value| json!({"instances": [{"instance": who}]});
    api.post(
        &format!("{ig}/addInstances"),
        add(json!(link(&format!("zones/{ZONE}/instances/ghost")))),
    )
    .await
    .assert_error(404, "notFound");
    api.post(
        &format!("{ig}/addInstances"),
        add(json!(link("zones/us-central1-b/instances/elsewhere"))),
    )
    .await
    .assert_error(400, "invalid");
    api.done(
        Method::POST,
        &format!("{ig}/addInstances"),
        Some(add(json!(nodes[0]))),
    )
    .await;
    api.post(&format!("{ig}/addInstances"), add(json!(nodes[0])))
        .await
        .assert_error(400, "memberAlreadyExists");
    api.post(&format!("{ig}/removeInstances"), add(json!(nodes[1])))
        .await
        .assert_error(400, "memberNotFound");
    // Partial paths name instances too.
    api.done(
        Method::POST,
        &format!("{ig}/addInstances"),
        Some(add(json!(format!("zones/{ZONE}/instances/node-1")))),
    )
    .await;
    let list = api.post(&format!("{ig}/listInstances"), json!({})).await.ok();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    let page = api
        .post(
            &format!("{ig}/listInstances?maxResults=1"),
            json!({"instanceState": "RUNNING"}),
        )
        .await
        .ok();
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    assert!(page["nextPageToken"].is_string());
    api.done(
        Method::POST,
        &format!("{ig}/removeInstances"),
        Some(add(json!(nodes[0]))),
    )
    .await;
    assert_eq!(api.get(&ig).await.ok()["size"], 1);
    // Named ports: the fingerprint is optional, checked when sent.
    let fp = api.get(&ig).await.ok()["fingerprint"].clone();
    api.post(
        &format!("{ig}/setNamedPorts"),
        json!({"namedPorts": [{"name": "http", "port": 80}], "fingerprint": "AAAAAAAAAAA="}),
    )
    .await
    .assert_error(412, "conditionNotMet");
    api.post(
        &format!("{ig}/setNamedPorts"),
        json!({"namedPorts": [{"name": "Bad", "port": 80}]}),
    )
    .await
    .assert_error(400, "invalid");
    api.done(
        Method::POST,
        &format!("{ig}/setNamedPorts"),
        Some(json!({"namedPorts": [{"name": "http", "port": 80}], "fingerprint": fp})),
    )
    .await;
    api.done(
        Method::POST,
        &format!("{ig}/setNamedPorts"),
        Some(json!({"namedPorts": [{"name": "http", "port": 81}]})),
    )
    .await;
    assert_eq!(
        api.get(&ig).await.ok()["namedPorts"],
        json!([{"name": "http", "port": 81}])
    );
    // A deleted VM leaves its group.
    assert!(api.gce.remove_instance(ZONE, "node-1"));
    assert_eq!(api.get(&ig).await.ok()["size"], 0);
    // Zonal operations live in the zone.
    let op = api
        .post(&format!("{ig}/setNamedPorts"), json!({"namedPorts": []}))
        .await
        .ok();
    assert_eq!(op["zone"], link(&format!("zones/{ZONE}")));
    assert!(
        op["selfLink"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("/zones/{ZONE}/operations/")))
    );
}

#[tokio::test]
async fn network_endpoint_groups() {
    let api = Api::start().await;
    seed_nodes(&api, 2);
    // node-1's pods are in its alias IP range.
    api.gce
        .seed_instance_with(&InstanceSeed {
            alias_ip_ranges: vec!["10.4.0.0/24".into()],
            ..InstanceSeed::new(ZONE, "node-1")
        })
        .expect("seeded");
    let neg = format!("zones/{ZONE}/networkEndpointGroups/neg");
    let n = api
        .create(
            &format!("zones/{ZONE}/networkEndpointGroups"),
            json!({"name": "neg", "defaultPort": 8080}),
        )
        .await;
    assert_eq!(n["networkEndpointType"], "GCE_VM_IP_PORT");
    assert_eq!(n["network"], link("global/networks/default"));
    api.post(
        &format!("{neg}/attachNetworkEndpoints"),
        json!({"networkEndpoints": [{"instance": "ghost"}]}),
    )
    .await
    .assert_error(404, "notFound");
    api.done(
        Method::POST,
        &format!("{neg}/attachNetworkEndpoints"),
        Some(json!({"networkEndpoints": [{"instance": "node-0"}, {"instance": "node-1", "ipAddress": "10.4.0.7", "port": 9000}]})),
    )
    .await;
    assert_eq!(api.get(&neg).await.ok()["size"], 2);
    let list = api
        .post(
            &format!("{neg}/listNetworkEndpoints"),
            json!({"healthStatus": "SHOW"}),
        )
        .await
        .ok();
    assert_eq!(list["kind"], "compute#networkEndpointGroupsListNetworkEndpoints");
    assert_eq!(list["items"][0]["networkEndpoint"]["instance"], "node-0");
    assert_eq!(list["items"][0]["networkEndpoint"]["port"], 8080);
    assert_eq!(list["items"][1]["networkEndpoint"]["ipAddress"], "10.4.0.7");
    // NEG backends need RATE or CONNECTION.
    hc(&api, "hc").await;
    api.post(
        "global/backendServices",
        json!({"name": "b", "healthChecks": ["global/healthChecks/hc"], "backends": [{"group": link(&neg), "balancingMode": "UTILIZATION"}]}),
    )
    .await
    .assert_error(400, "invalid");
    api.create(
        "global/backendServices",
        json!({"name": "b", "healthChecks": ["global/healthChecks/hc"], "backends": [{"group": link(&neg), "balancingMode": "RATE", "maxRatePerEndpoint": 5}]}),
    )
    .await;
    let h = api
        .post("global/backendServices/b/getHealth", json!({"group": link(&neg)}))
        .await
        .ok();
    assert_eq!(h["healthStatus"].as_array().map(Vec::len), Some(2));
    api.delete(&neg)
        .await
        .assert_error(400, "resourceInUseByAnotherResource");
    api.done(
        Method::POST,
        &format!("{neg}/detachNetworkEndpoints"),
        Some(json!({"networkEndpoints": [{"instance": "node-0"}]})),
    )
    .await;
    assert_eq!(api.get(&neg).await.ok()["size"], 1);
    let too_many: Vec<Value> = (0..501).map(|_| json!({"instance": "node-0"})).collect();
    api.post(
        &format!("{neg}/attachNetworkEndpoints"),
        json!({"networkEndpoints": too_many}),
    )
    .await
    .assert_error(400, "invalid");
}

#[tokio::test]
async fn firewalls_crud() {
    let api = Api::start().await;
    let fw = api
        .create(
            "global/firewalls",
            json!({"name": "fw", "sourceRanges": ["130.211.0.0/22", "35.191.0.0/16"], "targetTags": ["node"],
                   "allowed": [{"IPProtocol": "tcp", "ports": ["30000-32767"]}]}),
        )
        .await;
    assert_eq!(fw["kind"], "compute#firewall");
    assert_eq!(fw["direction"], "INGRESS");
    assert_eq!(fw["priority"], 1000);
    assert_eq!(fw["network"], link("global/networks/default"));
    assert!(fw.get("fingerprint").is_none());
    for bad in [
        json!({"name": "x", "allowed": [{"IPProtocol": "tcp"}], "sourceRanges": ["nope"]}),
        json!({"name": "x"}),
        json!({"name": "x", "allowed": [{"IPProtocol": "tcp"}], "denied": [{"IPProtocol": "udp"}]}),
        json!({"name": "x", "allowed": [{"IPProtocol": "icmp", "ports": ["80"]}]}),
        json!({"name": "x", "allowed": [{"IPProtocol": "tcp", "ports": ["99999"]}]}),
    ] {
        api.post("global/firewalls", bad)
            .await
            .assert_error(400, "invalid");
    }
    api.done(
        Method::PATCH,
        "global/firewalls/fw",
        Some(json!({"allowed": [{"IPProtocol": "tcp", "ports": ["30080"]}]})),
    )
    .await;
    let got = api.get("global/firewalls/fw").await.ok();
    assert_eq!(got["allowed"], json!([{"IPProtocol": "tcp", "ports": ["30080"]}]));
    assert_eq!(got["targetTags"], json!(["node"]));
    api.done(
        Method::PUT,
        "global/firewalls/fw",
        Some(json!({"name": "fw", "allowed": [{"IPProtocol": "tcp"}]})),
    )
    .await;
    let got = api.get("global/firewalls/fw").await.ok();
    assert!(got.get("targetTags").is_none(), "PUT resets what it omits");
    assert_eq!(got["sourceRanges"], json!(["0.0.0.0/0"]));
    assert_eq!(
        api.get("global/firewalls").await.ok()["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    api.done(Method::DELETE, "global/firewalls/fw", None).await;
}

#[tokio::test]
async fn zones_instances_and_regional_collections() {
    let api = Api::start().await;
    seed_nodes(&api, 1);
    let z = api.get(&format!("zones/{ZONE}")).await.ok();
    assert_eq!(z["kind"], "compute#zone");
    assert_eq!(z["status"], "UP");
    assert_eq!(z["region"], link("regions/us-central1"));
    api.get("zones/nowhere-1").await.assert_error(404, "notFound");
    let zones = api.get("zones").await.ok();
    assert_eq!(zones["kind"], "compute#zoneList");
    assert!(
        zones["items"]
            .as_array()
            .is_some_and(|a| a.iter().any(|z| z["name"] == ZONE))
    );
    let inst = api.get(&format!("zones/{ZONE}/instances/node-0")).await.ok();
    assert_eq!(inst["kind"], "compute#instance");
    assert_eq!(inst["status"], "RUNNING");
    assert!(inst["networkInterfaces"][0]["networkIP"].is_string());
    let list = api.get(&format!("zones/{ZONE}/instances")).await.ok();
    assert_eq!(list["kind"], "compute#instanceList");
    assert_eq!(
        api.post(&format!("zones/{ZONE}/instances"), json!({"name": "x"}))
            .await
            .status,
        404
    );
    api.get("zones/nowhere-1/instances")
        .await
        .assert_error(400, "invalid");
    // Regional collections: sweeping clients list them; they work like the global ones.
    for coll in [
        "addresses",
        "healthChecks",
        "backendServices",
        "urlMaps",
        "targetHttpProxies",
        "targetHttpsProxies",
        "sslCertificates",
        "sslPolicies",
        "forwardingRules",
        "networkEndpointGroups",
    ] {
        let list = api.get(&format!("regions/us-central1/{coll}")).await.ok();
        assert!(
            list["kind"].as_str().is_some_and(|k| k.ends_with("List")),
            "{coll}: {list:#}"
        );
        assert!(list.get("items").is_none());
    }
    let hc = api
        .create(
            "regions/us-central1/healthChecks",
            json!({"name": "rhc", "type": "TCP"}),
        )
        .await;
    assert_eq!(hc["region"], link("regions/us-central1"));
    let op = api
        .post(
            "regions/us-central1/backendServices",
            json!({"name": "rbs", "healthChecks": ["regions/us-central1/healthChecks/rhc"]}),
        )
        .await
        .ok();
    assert_eq!(op["region"], link("regions/us-central1"));
    api.wait(&op).await;
    api.delete("regions/us-central1/healthChecks/rhc")
        .await
        .assert_error(400, "resourceInUseByAnotherResource");
    assert_eq!(
        api.stats().await["byKind"]["regionBackendServices"]["mutations"],
        1
    );
}

#[tokio::test]
async fn beta_and_alpha_paths_answer_with_their_own_links() {
    let api = Api::start().await;
    let beta = format!(
        "{}/compute/beta/projects/p/global/healthChecks",
        api.gce.endpoint()
    );
    let r = api
        .send(api.client.post(&beta).json(&json!({"name": "hc", "type": "TCP"})))
        .await
        .ok();
    assert!(r["selfLink"].as_str().is_some_and(|s| {
        s.starts_with("https://www.googleapis.com/compute/beta/projects/p/global/operations/")
    }));
    let got = api.send(api.client.get(format!("{beta}/hc"))).await.ok();
    assert_eq!(
        got["selfLink"],
        "https://www.googleapis.com/compute/beta/projects/p/global/healthChecks/hc"
    );
    // Same store: v1 sees it with v1 links.
    assert_eq!(
        api.get("global/healthChecks/hc").await.ok()["selfLink"],
        link("global/healthChecks/hc")
    );
    let alpha = format!(
        "{}/compute/alpha/projects/p/global/healthChecks/hc",
        api.gce.endpoint()
    );
    assert_eq!(api.send(api.client.get(alpha)).await.status, 200);
    // A beta reference is accepted by v1.
    api.create(
        "global/backendServices",
        json!({"name": "b", "healthChecks": ["https://www.googleapis.com/compute/beta/projects/p/global/healthChecks/hc"]}),
    )
    .await;
}
