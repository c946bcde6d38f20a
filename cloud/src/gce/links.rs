//! Building request URLs and reference links, and reading them back.
//!
//! Requests go to the configured endpoint; references inside bodies use the canonical
//! `https://www.googleapis.com/compute/v1/projects/…` form the API itself returns. Links read
//! back are compared by their `projects/…` path only, since the API accepts and may echo both
//! full URLs and partial paths.

/// The canonical prefix of the links the Compute API returns.
const CANONICAL: &str = "https://www.googleapis.com/compute/v1/";

/// A Compute API collection the provider uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Collection {
    Addresses,
    HealthChecks,
    BackendServices,
    UrlMaps,
    TargetHttpProxies,
    TargetHttpsProxies,
    SslCertificates,
    SslPolicies,
    ForwardingRules,
    InstanceGroups,
    NetworkEndpointGroups,
    Instances,
    Firewalls,
    Networks,
}

impl Collection {
    /// The collection's path segment.
    pub fn segment(self) -> &'static str {
        match self {
            Collection::Addresses => "addresses",
            Collection::HealthChecks => "healthChecks",
            Collection::BackendServices => "backendServices",
            Collection::UrlMaps => "urlMaps",
            Collection::TargetHttpProxies => "targetHttpProxies",
            Collection::TargetHttpsProxies => "targetHttpsProxies",
            Collection::SslCertificates => "sslCertificates",
            Collection::SslPolicies => "sslPolicies",
            Collection::ForwardingRules => "forwardingRules",
            Collection::InstanceGroups => "instanceGroups",
            Collection::NetworkEndpointGroups => "networkEndpointGroups",
            Collection::Instances => "instances",
            Collection::Firewalls => "firewalls",
            Collection::Networks => "networks",
        }
    }
}

/// Where a resource lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Global,
    Zone(String),
    /// Global, in another project: the Shared VPC host project that owns the network (and so
    /// the firewall rules).
    GlobalIn(String),
}

/// URL building for one project at one endpoint.
#[derive(Clone, Debug)]
pub struct Links {
    /// Ends with `/`, e.g. `https://compute.googleapis.com/compute/v1/`.
    endpoint: String,
    project: String,
}

impl Links {
    pub fn new(endpoint: &str, project: &str) -> Self {
        let mut endpoint = endpoint.to_owned();
        if !endpoint.ends_with('/') {
            endpoint.push('/');
        }
        Self {
            endpoint,
            project: project.to_owned(),
        }
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    /// `projects/P/global/urlMaps` or `projects/P/zones/Z/instanceGroups`.
    pub fn collection_path(&self, scope: &Scope, collection: Collection) -> String {
        match scope {
            Scope::Global => format!("projects/{}/global/{}", self.project, collection.segment()),
            Scope::Zone(zone) => format!("projects/{}/zones/{zone}/{}", self.project, collection.segment()),
            Scope::GlobalIn(project) => format!("projects/{project}/global/{}", collection.segment()),
        }
    }

    /// `projects/P/global/urlMaps/NAME`.
    pub fn resource_path(&self, scope: &Scope, collection: Collection, name: &str) -> String {
        format!("{}/{name}", self.collection_path(scope, collection))
    }

    /// The request URL of a collection.
    pub fn collection_url(&self, scope: &Scope, collection: Collection) -> String {
        format!("{}{}", self.endpoint, self.collection_path(scope, collection))
    }

    /// The request URL of the aggregated list of a zonal collection (every zone at once).
    pub fn aggregated_url(&self, collection: Collection) -> String {
        format!(
            "{}projects/{}/aggregated/{}",
            self.endpoint,
            self.project,
            collection.segment()
        )
    }

    /// The request URL of a resource.
    pub fn resource_url(&self, scope: &Scope, collection: Collection, name: &str) -> String {
        format!("{}{}", self.endpoint, self.resource_path(scope, collection, name))
    }

    /// The request URL of a method on a resource, e.g. `…/forwardingRules/NAME/setTarget`.
    pub fn method_url(&self, scope: &Scope, collection: Collection, name: &str, method: &str) -> String {
        format!("{}/{method}", self.resource_url(scope, collection, name))
    }

    /// The request URL of a method the API serves without the `/global/` segment
    /// (`targetHttpProxies.setUrlMap`, `targetHttpsProxies.setUrlMap`, `…setSslCertificates`).
    pub fn project_method_url(&self, collection: Collection, name: &str, method: &str) -> String {
        format!(
            "{}projects/{}/{}/{name}/{method}",
            self.endpoint,
            self.project,
            collection.segment()
        )
    }

    /// The request URL of an operation's `wait`, from the operation's own link (which names its
    /// project and zone), or failing that from its zone.
    pub fn operation_wait_url(&self, self_link: Option<&str>, zone: Option<&str>, operation: &str) -> String {
        if let Some(path) = self_link
            .map(path_of)
            .filter(|p| p.starts_with("projects/") && p.contains("/operations/"))
        {
            return format!("{}{path}/wait", self.endpoint);
        }
        match zone {
            Some(zone) => format!(
                "{}projects/{}/zones/{zone}/operations/{operation}/wait",
                self.endpoint, self.project
            ),
            None => format!(
                "{}projects/{}/global/operations/{operation}/wait",
                self.endpoint, self.project
            ),
        }
    }

    /// The canonical link to a resource, for references in request bodies.
    pub fn link(&self, scope: &Scope, collection: Collection, name: &str) -> String {
        format!("{CANONICAL}{}", self.resource_path(scope, collection, name))
    }
}

/// The `projects/…` part of a link or partial path, for comparing references.
pub fn path_of(link: &str) -> &str {
    match link.find("projects/") {
        Some(i) => &link[i..],
        None => link,
    }
}

/// Whether two references name the same resource.
pub fn same_resource(a: &str, b: &str) -> bool {
    path_of(a) == path_of(b)
}

/// The last segment of a link: the resource's name.
pub fn name_of(link: &str) -> &str {
    link.rsplit('/').next().unwrap_or(link)
}

/// Whether a backend's group link names a network endpoint group (not an instance group).
pub fn is_neg(link: &str) -> bool {
    path_of(link).contains("/networkEndpointGroups/")
}

/// The zone named in a link such as an operation's `zone` field, if any.
pub fn zone_of(link: &str) -> Option<&str> {
    let rest = &link[link.find("/zones/")? + "/zones/".len()..];
    rest.split('/').next().filter(|z| !z.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_request_urls_and_canonical_links() {
        let links = Links::new("http://127.0.0.1:1/compute/v1", "p");
        assert_eq!(
            links.resource_url(&Scope::Global, Collection::UrlMaps, "m"),
            "http://127.0.0.1:1/compute/v1/projects/p/global/urlMaps/m"
        );
        assert_eq!(
            links.project_method_url(Collection::TargetHttpsProxies, "t", "setSslCertificates"),
            "http://127.0.0.1:1/compute/v1/projects/p/targetHttpsProxies/t/setSslCertificates"
        );
        assert_eq!(
            links.link(&Scope::Zone("z1".into()), Collection::InstanceGroups, "ig"),
            "https://www.googleapis.com/compute/v1/projects/p/zones/z1/instanceGroups/ig"
        );
        assert_eq!(
            links.operation_wait_url(None, Some("z1"), "op-1"),
            "http://127.0.0.1:1/compute/v1/projects/p/zones/z1/operations/op-1/wait"
        );
        assert_eq!(
            links.operation_wait_url(
                Some("https://www.googleapis.com/compute/v1/projects/host/global/operations/op-2"),
                None,
                "op-2"
            ),
            "http://127.0.0.1:1/compute/v1/projects/host/global/operations/op-2/wait"
        );
    }

    #[test]
    fn compares_references_by_path() {
        assert!(same_resource(
            "https://www.googleapis.com/compute/v1/projects/p/global/urlMaps/m",
            "projects/p/global/urlMaps/m"
        ));
        assert!(!same_resource(
            "projects/p/global/urlMaps/m",
            "projects/p/global/urlMaps/n"
        ));
        assert_eq!(name_of("projects/p/global/urlMaps/m"), "m");
        assert_eq!(
            zone_of("https://x/compute/v1/projects/p/zones/us-a/operations/o"),
            Some("us-a")
        );
        assert_eq!(zone_of("projects/p/global/operations/o"), None);
    }
}
