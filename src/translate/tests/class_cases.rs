//! Which Ingresses are ours: the legacy annotation, `spec.ingressClassName`, the default class.

use super::*;
use crate::translate::{DEFAULT_CONTROLLER_NAME, is_ours};

const NGINX: &str = "k8s.io/ingress-nginx";

struct Row {
    name: &'static str,
    legacy: Option<&'static str>,
    class_name: Option<&'static str>,
    /// IngressClasses as (name, controller, is default).
    classes: &'static [(&'static str, &'static str, bool)],
    legacy_class: &'static str,
    ours: bool,
}

const fn row(
    name: &'static str,
    legacy: Option<&'static str>,
    class_name: Option<&'static str>,
    classes: &'static [(&'static str, &'static str, bool)],
    ours: bool,
) -> Row {
    Row {
        name,
        legacy,
        class_name,
        classes,
        legacy_class: "gce",
        ours,
    }
}

#[test]
fn class_cases() {
    let rows = [
        row("legacy annotation gce", Some("gce"), None, &[], true),
        row(
            "legacy annotation of another controller",
            Some("nginx"),
            None,
            &[],
            false,
        ),
        row(
            "legacy annotation wins over ingressClassName",
            Some("gce"),
            Some("nginx"),
            &[("nginx", NGINX, false)],
            true,
        ),
        row(
            "legacy annotation of another controller wins over ours",
            Some("nginx"),
            Some("ours"),
            &[("ours", DEFAULT_CONTROLLER_NAME, false)],
            false,
        ),
        row(
            "empty legacy annotation counts as absent",
            Some(""),
            Some("ours"),
            &[("ours", DEFAULT_CONTROLLER_NAME, false)],
            true,
        ),
        row(
            "ingressClassName of our IngressClass",
            None,
            Some("ours"),
            &[("ours", DEFAULT_CONTROLLER_NAME, false)],
            true,
        ),
        row(
            "ingressClassName of another controller",
            None,
            Some("nginx"),
            &[("nginx", NGINX, false)],
            false,
        ),
        row(
            "ingressClassName gce without an IngressClass",
            None,
            Some("gce"),
            &[],
            true,
        ),
        row(
            "ingressClassName gce whose IngressClass is another controller's",
            None,
            Some("gce"),
            &[("gce", NGINX, false)],
            false,
        ),
        row(
            "ingressClassName naming nothing",
            None,
            Some("missing"),
            &[],
            false,
        ),
        row(
            "no class, our default IngressClass",
            None,
            None,
            &[("ours", DEFAULT_CONTROLLER_NAME, true)],
            true,
        ),
        row(
            "no class, another controller's default",
            None,
            None,
            &[("nginx", NGINX, true)],
            false,
        ),
        row(
            "no class, ours not the default",
            None,
            None,
            &[("ours", DEFAULT_CONTROLLER_NAME, false)],
            false,
        ),
        Row {
            legacy_class: "custom",
            ..row("configured legacy class", Some("custom"), None, &[], true)
        },
        Row {
            legacy_class: "custom",
            ..row(
                "gce when the legacy class is configured otherwise",
                Some("gce"),
                None,
                &[],
                false,
            )
        },
    ];
    let mut failures = Vec::new();
    for row in &rows {
        let mut snapshot = Snapshot::new();
        for (name, controller, default) in row.classes {
            snapshot.insert_ingress_class(ingress_class(name, controller, *default));
        }
        let mut value = ingress(default_only());
        if let Some(class) = row.legacy {
            value["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": class});
        }
        if let Some(name) = row.class_name {
            value["spec"]["ingressClassName"] = json!(name);
        }
        let ingress: Ingress = from_json(value);
        let config = Config {
            legacy_class: row.legacy_class.to_owned(),
            ..config()
        };
        if is_ours(&ingress, &snapshot, &config) != row.ours {
            failures.push(format!("{}: expected ours = {}", row.name, row.ours));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
