//! The table of served kinds. Everything else (routing, discovery, OpenAPI, storage, watch) is
//! generic over it, so serving another kind is one more entry in [`KINDS`].

use k8s_openapi::api::{apps, coordination, core, discovery, events, networking, policy, rbac, scheduling};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{convert, defaults, pods, table, validation};

/// Index into [`KINDS`].
pub(crate) type KindId = usize;

/// Which name syntax a kind's `metadata.name` must follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// RFC 1123 subdomain (most kinds).
    Subdomain,
    /// RFC 1123 label (namespaces).
    Label,
    /// RFC 1035 label (services: must start with a letter).
    Dns1035,
}

/// How strategic merge patch and server-side apply merge a list; lists not named in
/// [`Kind::lists`] are atomic (replaced as a whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListType {
    /// A list of scalars merged as a set (`patchStrategy: merge` on a primitive list).
    Set,
    /// A list of objects merged by the named key (`patchMergeKey`).
    Map(&'static str),
}

/// A field selector label a kind supports besides `metadata.name` and `metadata.namespace`.
pub(crate) struct FieldLabel {
    /// The label clients use, e.g. `involvedObject.name`.
    pub label: &'static str,
    /// Dotted path in the object it reads.
    pub path: &'static str,
    /// Value when the field is absent.
    pub default: &'static str,
}

/// A kind served as a conversion of another kind's storage (events.k8s.io/v1 over core/v1 events).
pub(crate) struct View {
    /// `resource` of the storage kind (same resource name, core group).
    pub storage_group: &'static str,
    /// API form to storage form.
    pub to_storage: fn(Value) -> Value,
    /// Storage form to API form.
    pub from_storage: fn(Value) -> Value,
}

/// Kind-specific defaulting and allocation, run after schema normalisation.
pub(crate) type PrepareFn =
    fn(&mut Value, Option<&Value>, &mut defaults::Allocator) -> Result<(), Vec<crate::error::Cause>>;
/// Kind-specific validation: push one cause per bad field.
pub(crate) type ValidateFn = fn(&Value, Option<&Value>, &mut Vec<crate::error::Cause>);
/// Graceful deletion (`CheckGracefulDelete`): the grace period, in seconds, a DELETE of this
/// object gets, given the request's `gracePeriodSeconds`.
pub(crate) type GracePeriodFn = fn(&Value, Option<i64>) -> i64;

/// Everything the server knows about one resource.
pub(crate) struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    /// Plural resource name used in paths.
    pub resource: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Has a `/status` subresource: writes to it change only `.status`, other writes keep it.
    pub status: bool,
    /// Create drops any `.status` the client sent (controllers own it).
    pub reset_status_on_create: bool,
    /// Maintains `metadata.generation`, bumped when anything outside metadata and status changes.
    pub generation: bool,
    pub name_rule: NameRule,
    pub field_labels: &'static [FieldLabel],
    /// Merge semantics of lists, by dotted path without indices (`spec.ports`).
    pub lists: &'static [(&'static str, ListType)],
    /// Decodes into the typed k8s-openapi struct and back: rejects wrong types and drops unknown
    /// fields, as the real decoder does.
    pub schema: fn(Value) -> Result<Value, String>,
    pub prepare: Option<PrepareFn>,
    pub validate: Option<ValidateFn>,
    pub table: Option<&'static table::Printer>,
    pub view: Option<View>,
    /// Deleted gracefully: a DELETE with a grace period above 0 only sets `deletionTimestamp`
    /// (now + the period) and `deletionGracePeriodSeconds`; the object stays until a DELETE
    /// with period 0 (the kubelet's, for pods).
    pub graceful_delete: Option<GracePeriodFn>,
}

impl Kind {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The verbs the collection and items support, as discovery lists them.
    pub fn verbs(&self) -> &'static [&'static str] {
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    /// Merge semantics of the list at a dotted path.
    pub fn list_type(&self, path: &str) -> Option<ListType> {
        const COMMON: &[(&str, ListType)] = &[
            ("metadata.finalizers", ListType::Set),
            ("metadata.ownerReferences", ListType::Map("uid")),
        ];
        COMMON
            .iter()
            .chain(self.lists.iter())
            .find(|(p, _)| *p == path)
            .map(|(_, t)| *t)
    }
}

fn typed<T: DeserializeOwned + Serialize>(value: Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(value).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

const fn label(label: &'static str, path: &'static str) -> FieldLabel {
    FieldLabel {
        label,
        path,
        default: "",
    }
}

/// Field labels of core/v1 events.
const CORE_EVENT_FIELDS: &[FieldLabel] = &[
    label("involvedObject.kind", "involvedObject.kind"),
    label("involvedObject.namespace", "involvedObject.namespace"),
    label("involvedObject.name", "involvedObject.name"),
    label("involvedObject.uid", "involvedObject.uid"),
    label("involvedObject.apiVersion", "involvedObject.apiVersion"),
    label("involvedObject.resourceVersion", "involvedObject.resourceVersion"),
    label("involvedObject.fieldPath", "involvedObject.fieldPath"),
    label("reason", "reason"),
    label("reportingComponent", "reportingComponent"),
    label("source", "source.component"),
    label("type", "type"),
];

/// Field labels of events.k8s.io/v1 events.
const EVENTS_V1_FIELDS: &[FieldLabel] = &[
    label("regarding.kind", "regarding.kind"),
    label("regarding.namespace", "regarding.namespace"),
    label("regarding.name", "regarding.name"),
    label("regarding.uid", "regarding.uid"),
    label("regarding.apiVersion", "regarding.apiVersion"),
    label("reason", "reason"),
    label("reportingController", "reportingController"),
    label("type", "type"),
];

/// Field labels of core/v1 pods: `ToSelectableFields` in `pkg/registry/core/pod/strategy.go`,
/// and the labels `pkg/apis/core/v1/conversion.go` accepts for Pods. `status.podIPs` is accepted
/// there but is not a selectable field, so it reads as empty (`status.podIPs=` matches every
/// pod, any other value none); `spec.host` is the old name of `spec.nodeName`; `status.podIP`
/// reads `podIPs[0]`, which `status.podIP` is kept equal to.
const POD_FIELDS: &[FieldLabel] = &[
    label("spec.nodeName", "spec.nodeName"),
    label("spec.host", "spec.nodeName"),
    label("spec.restartPolicy", "spec.restartPolicy"),
    label("spec.schedulerName", "spec.schedulerName"),
    label("spec.serviceAccountName", "spec.serviceAccountName"),
    FieldLabel {
        label: "spec.hostNetwork",
        path: "spec.hostNetwork",
        default: "false",
    },
    label("status.phase", "status.phase"),
    label("status.podIP", "status.podIP"),
    label("status.podIPs", "status.podIPs"),
    label("status.nominatedNodeName", "status.nominatedNodeName"),
];

/// Merge keys of core/v1 Pod lists (`patchStrategy`/`patchMergeKey` tags in
/// `k8s.io/api/core/v1/types.go`); unlisted lists such as `spec.readinessGates`,
/// `spec.tolerations` and `status.containerStatuses` have no patch strategy and are replaced.
const POD_LISTS: &[(&str, ListType)] = &[
    ("spec.containers", ListType::Map("name")),
    ("spec.containers.ports", ListType::Map("containerPort")),
    ("spec.containers.env", ListType::Map("name")),
    ("spec.containers.volumeMounts", ListType::Map("mountPath")),
    ("spec.containers.volumeDevices", ListType::Map("devicePath")),
    ("spec.initContainers", ListType::Map("name")),
    ("spec.initContainers.ports", ListType::Map("containerPort")),
    ("spec.initContainers.env", ListType::Map("name")),
    ("spec.initContainers.volumeMounts", ListType::Map("mountPath")),
    ("spec.initContainers.volumeDevices", ListType::Map("devicePath")),
    ("spec.ephemeralContainers", ListType::Map("name")),
    ("spec.ephemeralContainers.env", ListType::Map("name")),
    (
        "spec.ephemeralContainers.volumeMounts",
        ListType::Map("mountPath"),
    ),
    ("spec.volumes", ListType::Map("name")),
    ("spec.imagePullSecrets", ListType::Map("name")),
    ("spec.hostAliases", ListType::Map("ip")),
    ("spec.topologySpreadConstraints", ListType::Map("topologyKey")),
    ("spec.schedulingGates", ListType::Map("name")),
    ("spec.resourceClaims", ListType::Map("name")),
    ("status.conditions", ListType::Map("type")),
    ("status.podIPs", ListType::Map("ip")),
    ("status.hostIPs", ListType::Map("ip")),
    ("status.resourceClaimStatuses", ListType::Map("name")),
];

/// A kind with the common defaults; entries below override what differs.
const fn base(
    group: &'static str,
    resource: &'static str,
    singular: &'static str,
    kind: &'static str,
    schema: fn(Value) -> Result<Value, String>,
) -> Kind {
    Kind {
        group,
        version: "v1",
        resource,
        singular,
        kind,
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        reset_status_on_create: false,
        generation: false,
        name_rule: NameRule::Subdomain,
        field_labels: &[],
        lists: &[],
        schema,
        prepare: None,
        validate: None,
        table: None,
        view: None,
        graceful_delete: None,
    }
}

/// The served kinds. Order is the order of discovery documents.
pub(crate) static KINDS: &[Kind] = &[
    Kind {
        namespaced: false,
        short_names: &["ns"],
        status: true,
        name_rule: NameRule::Label,
        field_labels: &[label("status.phase", "status.phase")],
        lists: &[("status.conditions", ListType::Map("type"))],
        prepare: Some(defaults::namespace),
        table: Some(&table::NAMESPACE),
        ..base(
            "",
            "namespaces",
            "namespace",
            "Namespace",
            typed::<core::v1::Namespace>,
        )
    },
    Kind {
        short_names: &["svc"],
        categories: &["all"],
        status: true,
        reset_status_on_create: true,
        name_rule: NameRule::Dns1035,
        field_labels: &[
            label("spec.clusterIP", "spec.clusterIP"),
            label("spec.type", "spec.type"),
        ],
        lists: &[
            ("spec.ports", ListType::Map("port")),
            ("status.conditions", ListType::Map("type")),
        ],
        prepare: Some(defaults::service),
        validate: Some(validation::service),
        table: Some(&table::SERVICE),
        ..base("", "services", "service", "Service", typed::<core::v1::Service>)
    },
    Kind {
        field_labels: &[label("type", "type")],
        prepare: Some(defaults::secret),
        validate: Some(validation::secret),
        table: Some(&table::SECRET),
        ..base("", "secrets", "secret", "Secret", typed::<core::v1::Secret>)
    },
    Kind {
        validate: Some(validation::config_map),
        short_names: &["cm"],
        table: Some(&table::CONFIG_MAP),
        ..base(
            "",
            "configmaps",
            "configmap",
            "ConfigMap",
            typed::<core::v1::ConfigMap>,
        )
    },
    Kind {
        namespaced: false,
        short_names: &["no"],
        status: true,
        field_labels: &[FieldLabel {
            label: "spec.unschedulable",
            path: "spec.unschedulable",
            default: "false",
        }],
        lists: &[
            ("spec.podCIDRs", ListType::Set),
            ("status.addresses", ListType::Map("type")),
            ("status.conditions", ListType::Map("type")),
        ],
        table: Some(&table::NODE),
        ..base("", "nodes", "node", "Node", typed::<core::v1::Node>)
    },
    Kind {
        short_names: &["ev"],
        field_labels: CORE_EVENT_FIELDS,
        table: Some(&table::EVENT),
        ..base("", "events", "event", "Event", typed::<core::v1::Event>)
    },
    Kind {
        short_names: &["po"],
        categories: &["all"],
        status: true,
        reset_status_on_create: true,
        generation: true,
        field_labels: POD_FIELDS,
        lists: POD_LISTS,
        prepare: Some(pods::prepare),
        validate: Some(pods::validate),
        table: Some(&table::POD),
        graceful_delete: Some(pods::grace_period),
        ..base("", "pods", "pod", "Pod", typed::<core::v1::Pod>)
    },
    Kind {
        short_names: &["ep"],
        table: Some(&table::ENDPOINTS),
        ..base(
            "",
            "endpoints",
            "endpoints",
            "Endpoints",
            typed::<core::v1::Endpoints>,
        )
    },
    Kind {
        short_names: &["ing"],
        status: true,
        reset_status_on_create: true,
        generation: true,
        validate: Some(validation::ingress),
        table: Some(&table::INGRESS),
        ..base(
            "networking.k8s.io",
            "ingresses",
            "ingress",
            "Ingress",
            typed::<networking::v1::Ingress>,
        )
    },
    Kind {
        namespaced: false,
        generation: true,
        validate: Some(validation::ingress_class),
        table: Some(&table::INGRESS_CLASS),
        ..base(
            "networking.k8s.io",
            "ingressclasses",
            "ingressclass",
            "IngressClass",
            typed::<networking::v1::IngressClass>,
        )
    },
    Kind {
        table: Some(&table::LEASE),
        ..base(
            "coordination.k8s.io",
            "leases",
            "lease",
            "Lease",
            typed::<coordination::v1::Lease>,
        )
    },
    Kind {
        field_labels: EVENTS_V1_FIELDS,
        validate: Some(validation::event_v1),
        table: Some(&table::EVENT_V1),
        view: Some(View {
            storage_group: "",
            to_storage: convert::event_to_core,
            from_storage: convert::event_from_core,
        }),
        ..base(
            "events.k8s.io",
            "events",
            "event",
            "Event",
            typed::<events::v1::Event>,
        )
    },
    Kind {
        generation: true,
        field_labels: &[label("addressType", "addressType")],
        table: Some(&table::ENDPOINT_SLICE),
        ..base(
            "discovery.k8s.io",
            "endpointslices",
            "endpointslice",
            "EndpointSlice",
            typed::<discovery::v1::EndpointSlice>,
        )
    },
    // Kinds a controller's own installation is made of, so `kubectl apply -k deploy/` (and its
    // client-side dry run) works against the fake. Stored and served; nothing acts on them (no
    // pods are started, no RBAC is enforced).
    Kind {
        short_names: &["sa"],
        ..base(
            "",
            "serviceaccounts",
            "serviceaccount",
            "ServiceAccount",
            typed::<core::v1::ServiceAccount>,
        )
    },
    Kind {
        namespaced: false,
        ..base(
            "rbac.authorization.k8s.io",
            "clusterroles",
            "clusterrole",
            "ClusterRole",
            typed::<rbac::v1::ClusterRole>,
        )
    },
    Kind {
        namespaced: false,
        ..base(
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "clusterrolebinding",
            "ClusterRoleBinding",
            typed::<rbac::v1::ClusterRoleBinding>,
        )
    },
    base(
        "rbac.authorization.k8s.io",
        "roles",
        "role",
        "Role",
        typed::<rbac::v1::Role>,
    ),
    base(
        "rbac.authorization.k8s.io",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        typed::<rbac::v1::RoleBinding>,
    ),
    Kind {
        short_names: &["deploy"],
        categories: &["all"],
        status: true,
        reset_status_on_create: true,
        generation: true,
        lists: &[
            ("spec.template.spec.containers", ListType::Map("name")),
            ("spec.template.spec.volumes", ListType::Map("name")),
            ("status.conditions", ListType::Map("type")),
        ],
        ..base(
            "apps",
            "deployments",
            "deployment",
            "Deployment",
            typed::<apps::v1::Deployment>,
        )
    },
    Kind {
        short_names: &["pdb"],
        status: true,
        reset_status_on_create: true,
        generation: true,
        ..base(
            "policy",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            "PodDisruptionBudget",
            typed::<policy::v1::PodDisruptionBudget>,
        )
    },
    Kind {
        namespaced: false,
        short_names: &["pc"],
        ..base(
            "scheduling.k8s.io",
            "priorityclasses",
            "priorityclass",
            "PriorityClass",
            typed::<scheduling::v1::PriorityClass>,
        )
    },
];

/// The kind served at `group/version/resource`.
pub(crate) fn find(group: &str, version: &str, resource: &str) -> Option<KindId> {
    KINDS
        .iter()
        .position(|k| k.group == group && k.version == version && k.resource == resource)
}

/// The kind with this `apiVersion` and `kind`.
pub(crate) fn by_kind(api_version: &str, kind: &str) -> Option<KindId> {
    KINDS
        .iter()
        .position(|k| k.kind == kind && k.api_version() == api_version)
}

/// The kind whose objects hold the data: itself, or the storage of a view.
pub(crate) fn storage_of(id: KindId) -> KindId {
    match &KINDS[id].view {
        Some(view) => find(view.storage_group, KINDS[id].version, KINDS[id].resource).unwrap_or(id),
        None => id,
    }
}

/// The group/versions served, in discovery order (core first).
pub(crate) fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for k in KINDS {
        if !out.contains(&(k.group, k.version)) {
            out.push((k.group, k.version));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_unique_per_group_version() {
        for (i, a) in KINDS.iter().enumerate() {
            for b in &KINDS[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.resource == b.resource),
                    "{} served twice",
                    a.resource
                );
            }
        }
    }

    #[test]
    fn views_have_storage() {
        for (id, k) in KINDS.iter().enumerate() {
            if k.view.is_some() {
                let s = storage_of(id);
                assert_ne!(s, id, "{} has no storage kind", k.resource);
                assert!(KINDS[s].view.is_none());
            }
        }
    }
}
