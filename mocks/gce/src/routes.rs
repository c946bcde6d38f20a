//! Maps an HTTP method and a path under `/compute/{v1,beta,alpha}/projects/{project}/` to the
//! API method it names.

use axum::http::Method;

use crate::kinds::{CollKey, Key, Kind, Scope, ScopeType};
use crate::mutation::{CustomVerb, Verb};
use crate::operations::OpKey;
use crate::stats::Category;

/// A routed Compute request.
#[derive(Debug)]
pub(crate) struct Route {
    /// `v1`, `beta` or `alpha`: self links in the answer use the same version.
    pub version: &'static str,
    pub call: Call,
}

/// The API method a request names.
#[derive(Debug)]
pub(crate) enum Call {
    List(CollKey),
    Get(Key),
    Insert(CollKey),
    /// delete, update, patch and the custom POST verbs.
    Mutate(Key, Verb),
    GetHealth(Key),
    Validate(Key),
    ListInstances(Key),
    ListEndpoints(Key),
    ListAvailableFeatures(CollKey),
    OpGet(OpKey),
    OpWait(OpKey),
    OpList {
        project: String,
        scope: Scope,
    },
    OpDelete(OpKey),
    ZoneGet {
        project: String,
        zone: String,
    },
    ZoneList {
        project: String,
    },
    /// `GET projects/p/aggregated/{instanceGroups|instances|networkEndpointGroups}`.
    AggregatedList {
        project: String,
        kind: Kind,
    },
}

impl Call {
    pub(crate) fn category(&self) -> Category {
        match self {
            Call::Get(_)
            | Call::GetHealth(_)
            | Call::Validate(_)
            | Call::ListAvailableFeatures(_)
            | Call::ZoneGet { .. } => Category::Reads,
            Call::List(_)
            | Call::ListInstances(_)
            | Call::ListEndpoints(_)
            | Call::OpList { .. }
            | Call::ZoneList { .. }
            | Call::AggregatedList { .. } => Category::Lists,
            Call::Insert(_) | Call::Mutate(..) | Call::OpDelete(_) => Category::Mutations,
            Call::OpGet(_) | Call::OpWait(_) => Category::OperationPolls,
        }
    }

    /// The collection counted in stats (discovery names).
    pub(crate) fn api_name(&self) -> &'static str {
        match self {
            Call::List(c) | Call::Insert(c) | Call::ListAvailableFeatures(c) => c.api_name(),
            Call::Get(k)
            | Call::Mutate(k, _)
            | Call::GetHealth(k)
            | Call::Validate(k)
            | Call::ListInstances(k)
            | Call::ListEndpoints(k) => k.api_name(),
            Call::OpGet(k) | Call::OpWait(k) | Call::OpDelete(k) => {
                Kind::Operation.api_name(k.scope.scope_type())
            }
            Call::OpList { scope, .. } => Kind::Operation.api_name(scope.scope_type()),
            Call::ZoneGet { .. } | Call::ZoneList { .. } => "zones",
            Call::AggregatedList { kind, .. } => kind.collection(),
        }
    }

    /// Whether the call returns an Operation (operation faults apply only to those).
    pub(crate) fn creates_operation(&self) -> bool {
        matches!(self, Call::Insert(_) | Call::Mutate(..))
    }

    /// The zone a zonal call names, which must exist.
    pub(crate) fn zone(&self) -> Option<&str> {
        let scope = match self {
            Call::List(c) | Call::Insert(c) | Call::ListAvailableFeatures(c) => &c.scope,
            Call::Get(k)
            | Call::Mutate(k, _)
            | Call::GetHealth(k)
            | Call::Validate(k)
            | Call::ListInstances(k)
            | Call::ListEndpoints(k) => &k.scope,
            Call::OpGet(k) | Call::OpWait(k) | Call::OpDelete(k) => &k.scope,
            Call::OpList { scope, .. } => scope,
            Call::ZoneGet { .. } | Call::ZoneList { .. } | Call::AggregatedList { .. } => return None,
        };
        match scope {
            Scope::Zone(z) => Some(z),
            _ => None,
        }
    }
}

/// How a custom verb's path is spelled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `projects/p/global/{coll}/{name}/{verb}`
    Global,
    /// `projects/p/{coll}/{name}/{verb}` (no `global`), for the proxies' setUrlMap and
    /// setSslCertificates, as in the real API.
    ProjectLevel,
    Regional,
    Zonal,
}

/// The custom POST verbs each kind accepts, and at which path style.
fn custom_verb(kind: Kind, style: Style, verb: &str) -> Option<CustomVerb> {
    use CustomVerb as V;
    use Style::{Global as G, ProjectLevel as P, Regional as R, Zonal as Z};
    let v = CustomVerb::from_name(verb)?;
    let ok = match (kind, v) {
        (Kind::Address, V::SetLabels) => matches!(style, G | R),
        (Kind::ForwardingRule, V::SetLabels | V::SetTarget) => matches!(style, G | R),
        (Kind::TargetHttpProxy, V::SetUrlMap) => matches!(style, P | R),
        (Kind::TargetHttpsProxy, V::SetUrlMap | V::SetSslCertificates) => matches!(style, P | R),
        (Kind::TargetHttpsProxy, V::SetSslPolicy | V::SetQuicOverride) => style == G,
        (Kind::InstanceGroup, V::AddInstances | V::RemoveInstances | V::SetNamedPorts) => style == Z,
        (Kind::NetworkEndpointGroup, V::AttachNetworkEndpoints | V::DetachNetworkEndpoints) => style == Z,
        _ => false,
    };
    ok.then_some(v)
}

fn supports_update(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::HealthCheck | Kind::HttpHealthCheck | Kind::BackendService | Kind::UrlMap | Kind::Firewall
    )
}

fn supports_patch(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::HealthCheck
            | Kind::HttpHealthCheck
            | Kind::BackendService
            | Kind::UrlMap
            | Kind::TargetHttpProxy
            | Kind::TargetHttpsProxy
            | Kind::SslPolicy
            | Kind::ForwardingRule
            | Kind::Firewall
    )
}

/// Routes a request; `None` for a path or method the API does not have.
pub(crate) fn parse(method: &Method, path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    let ["compute", version, "projects", project, rest @ ..] = segs.as_slice() else {
        return None;
    };
    let version = match *version {
        "v1" => "v1",
        "beta" => "beta",
        "alpha" => "alpha",
        _ => return None,
    };
    let project = (*project).to_string();
    let call = match rest {
        ["zones"] if method == Method::GET => Call::ZoneList { project },
        ["zones", zone] if method == Method::GET => Call::ZoneGet {
            project,
            zone: (*zone).to_string(),
        },
        [
            "aggregated",
            coll @ ("instanceGroups" | "instances" | "networkEndpointGroups"),
        ] if method == Method::GET => Call::AggregatedList {
            project,
            kind: Kind::from_collection(coll)?,
        },
        [coll @ ("targetHttpProxies" | "targetHttpsProxies"), name, verb] => {
            let kind = Kind::from_collection(coll)?;
            let v = custom_verb(kind, Style::ProjectLevel, verb)?;
            if method != Method::POST {
                return None;
            }
            let key = Key {
                project,
                scope: Scope::Global,
                kind,
                name: (*name).to_string(),
            };
            Call::Mutate(key, Verb::Custom(v))
        }
        ["global", coll, tail @ ..] => scoped(method, project, Scope::Global, Style::Global, coll, tail)?,
        ["regions", region, coll, tail @ ..] => scoped(
            method,
            project,
            Scope::Region((*region).to_string()),
            Style::Regional,
            coll,
            tail,
        )?,
        ["zones", zone, coll, tail @ ..] => scoped(
            method,
            project,
            Scope::Zone((*zone).to_string()),
            Style::Zonal,
            coll,
            tail,
        )?,
        _ => return None,
    };
    Some(Route { version, call })
}

fn scoped(
    method: &Method,
    project: String,
    scope: Scope,
    style: Style,
    coll: &str,
    tail: &[&str],
) -> Option<Call> {
    let kind = Kind::from_collection(coll)?;
    if !kind.allows(scope.scope_type()) {
        return None;
    }
    let coll_key = CollKey { project, scope, kind };
    if kind == Kind::Operation {
        let op = |name: &str| OpKey {
            project: coll_key.project.clone(),
            scope: coll_key.scope.clone(),
            name: name.to_string(),
        };
        return match (tail, method.as_str()) {
            ([], "GET") => Some(Call::OpList {
                project: coll_key.project.clone(),
                scope: coll_key.scope.clone(),
            }),
            ([name], "GET") => Some(Call::OpGet(op(name))),
            ([name], "DELETE") => Some(Call::OpDelete(op(name))),
            ([name, "wait"], "POST") => Some(Call::OpWait(op(name))),
            _ => None,
        };
    }
    let read_only = kind == Kind::Instance;
    match tail {
        [] => match method.as_str() {
            "GET" => Some(Call::List(coll_key)),
            "POST" if !read_only => Some(Call::Insert(coll_key)),
            _ => None,
        },
        ["listAvailableFeatures"]
            if kind == Kind::SslPolicy
                && coll_key.scope.scope_type() == ScopeType::Global
                && method == Method::GET =>
        {
            Some(Call::ListAvailableFeatures(coll_key))
        }
        [name] => {
            let key = coll_key.key(name);
            match method.as_str() {
                "GET" => Some(Call::Get(key)),
                _ if read_only => None,
                "DELETE" => Some(Call::Mutate(key, Verb::Delete)),
                "PUT" if supports_update(kind) => Some(Call::Mutate(key, Verb::Update)),
                "PATCH" if supports_patch(kind) => Some(Call::Mutate(key, Verb::Patch)),
                _ => None,
            }
        }
        [name, verb] if method == Method::POST => {
            let key = coll_key.key(name);
            match (kind, *verb) {
                (Kind::BackendService, "getHealth") => Some(Call::GetHealth(key)),
                (Kind::UrlMap, "validate") => Some(Call::Validate(key)),
                (Kind::InstanceGroup, "listInstances") => Some(Call::ListInstances(key)),
                (Kind::NetworkEndpointGroup, "listNetworkEndpoints") => Some(Call::ListEndpoints(key)),
                _ => custom_verb(kind, style, verb).map(|v| Call::Mutate(key, Verb::Custom(v))),
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(m: Method, p: &str) -> Option<String> {
        parse(&m, p).map(|r| format!("{:?}/{}", r.call.category(), r.call.api_name()))
    }

    #[test]
    fn the_odd_paths_are_where_the_real_api_has_them() {
        let p = "/compute/v1/projects/p";
        assert_eq!(
            call(
                Method::POST,
                &format!("{p}/targetHttpsProxies/t/setSslCertificates")
            )
            .as_deref(),
            Some("Mutations/targetHttpsProxies")
        );
        assert!(
            call(
                Method::POST,
                &format!("{p}/global/targetHttpsProxies/t/setSslCertificates")
            )
            .is_none()
        );
        assert!(call(Method::POST, &format!("{p}/global/targetHttpProxies/t/setUrlMap")).is_none());
        assert!(
            call(
                Method::POST,
                &format!("{p}/global/targetHttpsProxies/t/setSslPolicy")
            )
            .is_some()
        );
        assert!(call(Method::POST, &format!("{p}/targetHttpsProxies/t/setSslPolicy")).is_none());
        assert_eq!(
            call(
                Method::POST,
                &format!("{p}/zones/z/instanceGroups/g/listInstances")
            )
            .as_deref(),
            Some("Lists/instanceGroups")
        );
        assert_eq!(
            call(Method::POST, &format!("{p}/global/operations/op/wait")).as_deref(),
            Some("OperationPolls/globalOperations")
        );
        assert_eq!(
            call(Method::GET, &format!("{p}/aggregated/networkEndpointGroups")).as_deref(),
            Some("Lists/networkEndpointGroups")
        );
        assert!(call(Method::GET, &format!("{p}/aggregated/urlMaps")).is_none());
        assert_eq!(
            call(Method::GET, &format!("{p}/global/forwardingRules")).as_deref(),
            Some("Lists/globalForwardingRules")
        );
        assert_eq!(
            call(Method::GET, "/compute/beta/projects/p/regions/r/urlMaps/u").as_deref(),
            Some("Reads/regionUrlMaps")
        );
    }

    #[test]
    fn unknown_paths_and_methods_are_not_routed() {
        for (m, p) in [
            (Method::GET, "/compute/v2/projects/p/global/urlMaps"),
            (Method::GET, "/compute/v1/projects/p/global/nope"),
            (Method::PUT, "/compute/v1/projects/p/global/targetHttpsProxies/t"),
            (Method::PATCH, "/compute/v1/projects/p/global/sslCertificates/c"),
            (Method::POST, "/compute/v1/projects/p/zones/z/instances"),
            (Method::GET, "/compute/v1/projects/p/global/instanceGroups"),
            (Method::GET, "/compute/v1/projects/p/global/urlMaps/"),
        ] {
            assert!(parse(&m, p).is_none(), "{m} {p}");
        }
    }
}
