//! Ownership, recorded in every resource's `description` as JSON.
//!
//! The provider updates or deletes a resource only when its description parses and names this
//! cluster, whatever the resource is called: a user's resource that happens to match our naming
//! pattern is never touched.

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
}

/// The `ingress` value of resources shared by several load balancers.
pub const SHARED: &str = "shared";

impl Owner {
    /// A resource of one load balancer.
    pub fn load_balancer(cluster: &str, namespace: &str, name: &str, uid: &str) -> Self {
        Self {
            managed_by: MANAGED_BY.to_owned(),
            cluster: cluster.to_owned(),
            ingress: format!("{namespace}/{name}"),
            uid: (!uid.is_empty()).then(|| uid.to_owned()),
            backend: None,
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

/// Whether `description` says the resource belongs to the load balancer of `namespace/name`.
pub fn owned_by_lb(description: &str, cluster: &str, namespace: &str, name: &str) -> bool {
    Owner::parse(description)
        .is_some_and(|o| o.cluster == cluster && o.ingress_key() == Some((namespace, name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_foreign_descriptions() {
        let d = Owner::load_balancer("c1", "default", "test", "u-1").describe();
        assert!(owned_by(&d, "c1"));
        assert!(!owned_by(&d, "c2"));
        assert!(owned_by_lb(&d, "c1", "default", "test"));
        assert!(!owned_by_lb(&d, "c1", "default", "other"));
        let shared = Owner::shared("c1", Some("default/echo:80".into())).describe();
        assert!(owned_by(&shared, "c1"));
        assert!(!owned_by_lb(&shared, "c1", "default", "test"));
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
