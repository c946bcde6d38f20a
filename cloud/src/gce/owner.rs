//! Ownership, recorded in every resource's `description` as JSON.
//!
//! The provider updates or deletes a resource only when its description parses and names this
//! cluster, whatever the resource is called: a user's resource that happens to match our naming
//! pattern is never touched. A load balancer's own resources also record which controller made
//! them when it is not the default one, so that two controllers in one cluster (a canary, a
//! shard, an internal class) never delete or adopt each other's load balancers; the resources
//! every load balancer of the cluster shares (backends, groups, firewall rule) record no
//! controller and are removed only when nothing in the cloud uses them.

use crate::model::BackendKey;
use serde::{Deserialize, Serialize};

const MANAGED_BY: &str = "cloud-lb-controller";

/// `{"managedBy":"cloud-lb-controller","cluster":"<uid>","ingress":"<ns>/<name>"|"shared",…}`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    pub managed_by: String,
    pub cluster: String,
    /// `namespace/name` of the Ingress, or `shared` for resources several Ingresses use.
    pub ingress: String,
    /// The Ingress's uid when the resource was created, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// For shared backends: the Service port, `namespace/service:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The controller that made a load balancer's resource, unless it is the default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
}

/// The `ingress` value of resources shared by several load balancers.
pub const SHARED: &str = "shared";

impl Owner {
    /// A resource of one load balancer, made by `controller` (`None`: the default one).
    pub fn load_balancer(
        cluster: &str,
        controller: Option<&str>,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Self {
        Self {
            managed_by: MANAGED_BY.to_owned(),
            cluster: cluster.to_owned(),
            ingress: format!("{namespace}/{name}"),
            uid: (!uid.is_empty()).then(|| uid.to_owned()),
            backend: None,
            controller: controller.map(str::to_owned),
        }
    }

    /// A resource shared by every load balancer of the cluster (or, with `backend`, by those
    /// using one Service port).
    pub fn shared(cluster: &str, backend: Option<String>) -> Self {
        Self {
            managed_by: MANAGED_BY.to_owned(),
            cluster: cluster.to_owned(),
            ingress: SHARED.to_owned(),
            uid: None,
            backend,
            controller: None,
        }
    }

    /// The description text.
    pub fn describe(&self) -> String {
        // Serializing plain strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a description; `None` when it is not one of ours.
    pub fn parse(description: &str) -> Option<Self> {
        serde_json::from_str::<Owner>(description)
            .ok()
            .filter(|o| o.managed_by == MANAGED_BY)
    }

    /// The Service port of a shared backend (what [`Owner::shared`] recorded with
    /// `BackendKey::to_string`), when it names one.
    pub fn backend_key(&self) -> Option<BackendKey> {
        if self.ingress != SHARED {
            return None;
        }
        parse_backend_key(self.backend.as_deref()?)
    }

    /// The `(namespace, name)` of the Ingress, unless shared.
    pub fn ingress_key(&self) -> Option<(&str, &str)> {
        if self.ingress == SHARED {
            return None;
        }
        self.ingress.split_once('/')
    }
}

/// Whether `description` says the resource belongs to `cluster`.
pub fn owned_by(description: &str, cluster: &str) -> bool {
    Owner::parse(description).is_some_and(|o| o.cluster == cluster)
}

/// Whether `description` says the resource belongs to the load balancer of `namespace/name`
/// that `controller` (`None`: the default one) made.
pub fn owned_by_lb(
    description: &str,
    cluster: &str,
    controller: Option<&str>,
    namespace: &str,
    name: &str,
) -> bool {
    Owner::parse(description).is_some_and(|o| {
        o.cluster == cluster
            && o.controller.as_deref() == controller
            && o.ingress_key() == Some((namespace, name))
    })
}

/// Reads `namespace/service:port` (the `Display` of [`BackendKey`]).
pub fn parse_backend_key(text: &str) -> Option<BackendKey> {
    let (namespace, rest) = text.split_once('/')?;
    let (service, port) = rest.rsplit_once(':')?;
    if namespace.is_empty() || service.is_empty() || service.contains('/') {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    Some(BackendKey::new(namespace, service, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_service_port_of_a_shared_backend() {
        let key = BackendKey::new("default", "echo", 80);
        let shared = Owner::shared("c1", Some(key.to_string()));
        assert_eq!(parse_backend_key(&key.to_string()), Some(key.clone()));
        let parsed = Owner::parse(&shared.describe()).expect("ours");
        assert_eq!(parsed.backend_key(), Some(key));
        assert_eq!(Owner::shared("c1", None).backend_key(), None);
        let lb = Owner::load_balancer("c1", None, "default", "test", "");
        assert_eq!(lb.backend_key(), None);
        for bad in [
            "",
            "default",
            "default/echo",
            "/echo:80",
            "default/:80",
            "default/echo:",
            "default/echo:0",
            "default/echo:http",
            "default/echo:70000",
            "a/b/c:80",
        ] {
            assert_eq!(parse_backend_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips_and_rejects_foreign_descriptions() {
        let d = Owner::load_balancer("c1", None, "default", "test", "u-1").describe();
        assert!(
            !d.contains(r#""controller""#),
            "the default controller's records are as before: {d}"
        );
        assert!(owned_by(&d, "c1"));
        assert!(!owned_by(&d, "c2"));
        assert!(owned_by_lb(&d, "c1", None, "default", "test"));
        assert!(!owned_by_lb(&d, "c1", None, "default", "other"));
        assert!(!owned_by_lb(
            &d,
            "c1",
            Some("example.com/canary"),
            "default",
            "test"
        ));
        let canary = Owner::load_balancer("c1", Some("example.com/canary"), "default", "test", "").describe();
        assert!(owned_by_lb(
            &canary,
            "c1",
            Some("example.com/canary"),
            "default",
            "test"
        ));
        assert!(!owned_by_lb(&canary, "c1", None, "default", "test"));
        assert!(owned_by(&canary, "c1"), "still the cluster's");
        let shared = Owner::shared("c1", Some("default/echo:80".into())).describe();
        assert!(owned_by(&shared, "c1"));
        assert!(!owned_by_lb(&shared, "c1", None, "default", "test"));
        for foreign in [
            "",
            "made by hand",
            "{}",
            r#"{"managedBy":"someone-else","cluster":"c1","ingress":"a/b"}"#,
        ] {
            assert!(!owned_by(foreign, "c1"), "{foreign}");
        }
    }
}
