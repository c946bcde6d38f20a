//! The cloud's limits on one load balancer, told as problems of the Ingress: the provider
//! measures what it would build ([`cloud::Provider::check`]), and this names the Ingress fields
//! behind each limit, so an Ingress over a limit is invalid input like any other.

use super::Problem;
use cloud::{LimitKind, LimitViolation};
use k8s_openapi::api::networking::v1::Ingress;

/// One problem per violation, at the field that holds what is over the limit.
pub fn limit_problems(ingress: &Ingress, violations: &[LimitViolation]) -> Vec<Problem> {
    let namespace = ingress.metadata.namespace.as_deref().unwrap_or("default");
    let name = ingress.metadata.name.as_deref().unwrap_or_default();
    violations
        .iter()
        .map(|v| Problem {
            ingress: format!("{namespace}/{name}"),
            field: field_of(ingress, v),
            message: v.message.clone(),
        })
        .collect()
}

fn field_of(ingress: &Ingress, violation: &LimitViolation) -> String {
    match violation.limit {
        LimitKind::Certificates => "spec.tls".to_owned(),
        LimitKind::PathsPerHost | LimitKind::PathPatternsPerHost => {
            let rules = ingress
                .spec
                .as_ref()
                .and_then(|s| s.rules.as_deref())
                .unwrap_or_default();
            let host = violation.host.as_deref();
            // The first rule of that host (`*`: rules without a host) holds its paths.
            rules
                .iter()
                .position(|r| match (r.host.as_deref(), host) {
                    (Some(h), Some(want)) => h == want,
                    (None, Some("*")) | (None, None) => true,
                    _ => false,
                })
                .map_or_else(
                    || "spec.rules".to_owned(),
                    |i| format!("spec.rules[{i}].http.paths"),
                )
        }
        LimitKind::Hosts | LimitKind::Backends | LimitKind::RoutingTableSize => "spec.rules".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::networking::v1::{IngressRule, IngressSpec};

    fn violation(limit: LimitKind, host: Option<&str>) -> LimitViolation {
        LimitViolation {
            limit,
            host: host.map(str::to_owned),
            actual: 2,
            max: 1,
            message: "over".into(),
        }
    }

    #[test]
    fn each_limit_names_the_field_behind_it() {
        let rule = |host: Option<&str>| IngressRule {
            host: host.map(str::to_owned),
            http: None,
        };
        let mut ingress = Ingress::default();
        ingress.metadata.name = Some("web".into());
        ingress.spec = Some(IngressSpec {
            rules: Some(vec![
                rule(Some("a.example.com")),
                rule(None),
                rule(Some("b.example.com")),
            ]),
            ..Default::default()
        });
        let cases = [
            (
                LimitKind::PathsPerHost,
                Some("b.example.com"),
                "spec.rules[2].http.paths",
            ),
            (
                LimitKind::PathPatternsPerHost,
                Some("a.example.com"),
                "spec.rules[0].http.paths",
            ),
            (LimitKind::PathsPerHost, Some("*"), "spec.rules[1].http.paths"),
            (
                LimitKind::PathsPerHost,
                Some("elsewhere.example.com"),
                "spec.rules",
            ),
            (LimitKind::Hosts, None, "spec.rules"),
            (LimitKind::Backends, None, "spec.rules"),
            (LimitKind::RoutingTableSize, None, "spec.rules"),
            (LimitKind::Certificates, None, "spec.tls"),
        ];
        for (limit, host, field) in cases {
            let problems = limit_problems(&ingress, &[violation(limit, host)]);
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].field, field, "{limit} {host:?}");
            assert_eq!(problems[0].to_string(), format!("default/web: {field}: over"));
        }
    }
}
