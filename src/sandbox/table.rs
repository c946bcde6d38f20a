//! A `kubectl get ing`-style table.

use k8s_openapi::api::networking::v1::Ingress;

/// NAME CLASS HOSTS ADDRESS PORTS AGE, as kubectl prints them.
pub fn ingresses(items: &[Ingress], now: jiff::Timestamp) -> String {
    let mut rows = vec![
        ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for ing in items {
        let spec = ing.spec.clone().unwrap_or_default();
        let class = spec
            .ingress_class_name
            .clone()
            .or_else(|| {
                ing.metadata
                    .annotations
                    .as_ref()?
                    .get(crate::annotations::INGRESS_CLASS)
                    .cloned()
            })
            .unwrap_or_else(|| "<none>".to_owned());
        let hosts: Vec<String> = spec
            .rules
            .iter()
            .flatten()
            .filter_map(|r| r.host.clone())
            .collect();
        let hosts = if hosts.is_empty() {
            "*".to_owned()
        } else {
            hosts.join(",")
        };
        let ports = if spec.tls.as_ref().is_some_and(|t| !t.is_empty()) {
            "80, 443"
        } else {
            "80"
        };
        let age = ing
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| age(now.duration_since(t.0).as_secs()))
            .unwrap_or_else(|| "<unknown>".to_owned());
        rows.push(vec![
            ing.metadata.name.clone().unwrap_or_default(),
            class,
            hosts,
            crate::controller::report::status_ips(ing).join(","),
            ports.to_owned(),
            age,
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(c, cell)| format!("{cell:<w$}", w = widths[c] + 3))
                .collect::<String>()
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// kubectl's short age: `42s`, `5m`, `3h`, `2d`.
fn age(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_kubectl() {
        let ing: Ingress = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "test", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"ingressClassName": "gce", "tls": [{"secretName": "tls"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "34.120.0.1"}]}}
        }))
        .unwrap();
        let now: jiff::Timestamp = "2026-01-01T00:00:05Z".parse().unwrap();
        let table = ingresses(&[ing], now);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "NAME   CLASS   HOSTS   ADDRESS      PORTS     AGE");
        assert_eq!(lines[1], "test   gce     *       34.120.0.1   80, 443   5s");
        assert_eq!(age(7300), "2h");
    }
}
