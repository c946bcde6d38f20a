//! The `meta.k8s.io/v1 Table` representation that `kubectl get` asks for, with the columns kubectl
//! users know for the kinds we serve (`kubectl get ing` → NAME CLASS HOSTS ADDRESS PORTS AGE).
//!
//! Like a real apiserver, all columns are always computed; kubectl hides those with a priority
//! above 0 unless `-o wide` is given.

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::convert;
use crate::kinds::Kind;

/// One column of a table.
pub(crate) struct Column {
    pub name: &'static str,
    /// `string` or `integer`.
    pub ty: &'static str,
    /// `name` for the name column, else empty.
    pub format: &'static str,
    pub description: &'static str,
    /// 0 = always shown, 1 = `-o wide` only.
    pub priority: u8,
}

/// Columns and how to compute a row's cells.
pub(crate) struct Printer {
    pub columns: &'static [Column],
    pub cells: fn(&Value, Timestamp) -> Vec<Value>,
}

const fn col(name: &'static str, priority: u8, description: &'static str) -> Column {
    Column {
        name,
        ty: "string",
        format: "",
        description,
        priority,
    }
}

const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    description: "Name of the object, unique within its namespace.",
    priority: 0,
};
const AGE: Column = col("Age", 0, "Time since the object was created.");

/// Renders an age the way kubectl does: `45s`, `3m20s`, `95m`, `5h10m`, `30h`, `3d4h`, `200d`, `3y10d`.
pub(crate) fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    if s < 120 {
        return format!("{s}s");
    }
    let m = s / 60;
    if m < 10 {
        return if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        };
    }
    if m < 180 {
        return format!("{m}m");
    }
    let h = m / 60;
    if h < 8 {
        return if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        };
    }
    if h < 48 {
        return format!("{h}h");
    }
    if h < 24 * 8 {
        let (d, rh) = (h / 24, h % 24);
        return if rh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{rh}h")
        };
    }
    if h < 24 * 365 * 2 {
        return format!("{}d", h / 24);
    }
    let (y, dy) = (h / 24 / 365, (h / 24) % 365);
    if h < 24 * 365 * 8 && dy != 0 {
        format!("{y}y{dy}d")
    } else {
        format!("{y}y")
    }
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn items<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

/// Age of a timestamp field, or `<unknown>` when absent.
fn since(v: &Value, pointer: &str, now: Timestamp) -> String {
    match s(v, pointer).parse::<Timestamp>() {
        Ok(t) => human_duration(now.as_second() - t.as_second()),
        Err(_) => "<unknown>".into(),
    }
}

fn age(v: &Value, now: Timestamp) -> Value {
    json!(since(v, "/metadata/creationTimestamp", now))
}

fn name(v: &Value) -> Value {
    json!(s(v, "/metadata/name"))
}

/// Joins up to three items, then `+ N more...`.
fn join_some(list: Vec<String>, sep: &str) -> String {
    if list.len() > 3 {
        format!("{} + {} more...", list[..3].join(sep), list.len() - 3)
    } else {
        list.join(sep)
    }
}

fn generic_cells(v: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(v), age(v, now)]
}

/// Name and age, for kinds without a dedicated printer.
pub(crate) static DEFAULT: Printer = Printer {
    columns: &[NAME, AGE],
    cells: generic_cells,
};

fn lb_addresses(v: &Value, pointer: &str) -> Vec<String> {
    items(v, pointer)
        .iter()
        .filter_map(|i| {
            let ip = s(i, "/ip");
            let host = s(i, "/hostname");
            if !ip.is_empty() {
                Some(ip.to_string())
            } else if !host.is_empty() {
                Some(host.to_string())
            } else {
                None
            }
        })
        .collect()
}

fn ingress_cells(v: &Value, now: Timestamp) -> Vec<Value> {
    let class = or_none(s(v, "/spec/ingressClassName").to_string());
    let hosts: Vec<String> = items(v, "/spec/rules")
        .iter()
        .map(|r| s(r, "/host").to_string())
        .filter(|h| !h.is_empty())
        .collect();
    let hosts = if hosts.is_empty() {
        "*".to_string()
    } else {
        join_some(hosts, ",")
    };
    let ports = if items(v, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(v),
        json!(class),
        json!(hosts),
        json!(lb_addresses(v, "/status/loadBalancer/ingress").join(",")),
        json!(ports),
        age(v, now),
    ]
}

/// networking.k8s.io/v1 Ingress.
pub(crate) static INGRESS: Printer = Printer {
    columns: &[
        NAME,
        col("Class", 0, "The IngressClass this Ingress asks for."),
        col("Hosts", 0, "Hosts the rules match."),
        col("Address", 0, "Addresses of the load balancer, from status."),
        col("Ports", 0, "Ports the load balancer serves."),
        AGE,
    ],
    cells: ingress_cells,
};

fn service_cells(v: &Value, now: Timestamp) -> Vec<Value> {
    let ty = s(v, "/spec/type");
    let ty = if ty.is_empty() { "ClusterIP" } else { ty };
    let external: Vec<String> = items(v, "/spec/externalIPs")
        .iter()
        .filter_map(|i| i.as_str().map(String::from))
        .collect();
    let external_ip = match ty {
        "ExternalName" => s(v, "/spec/externalName").to_string(),
        "LoadBalancer" => {
            let mut all = lb_addresses(v, "/status/loadBalancer/ingress");
            all.extend(external);
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        _ => or_none(external.join(",")),
    };
    let ports: Vec<String> = items(v, "/spec/ports")
        .iter()
        .map(|p| {
            let port = p.get("port").map(Value::to_string).unwrap_or_default();
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            match p.get("nodePort").and_then(Value::as_u64) {
                Some(np) => format!("{port}:{np}/{proto}"),
                None => format!("{port}/{proto}"),
            }
        })
        .collect();
    let mut selector: Vec<String> = v
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, val)| format!("{k}={}", val.as_str().unwrap_or("")))
        .collect();
    selector.sort();
    vec![
        name(v),
        json!(ty),
        json!(or_none(s(v, "/spec/clusterIP").to_string())),
        json!(external_ip),
        json!(or_none(ports.join(","))),
        age(v, now),
        json!(or_none(selector.join(","))),
    ]
}

/// core/v1 Service.
pub(crate) static SERVICE: Printer = Printer {
    columns: &[
        NAME,
        col("Type", 0, "How the service is exposed."),
        col("Cluster-IP", 0, "The virtual IP inside the cluster."),
        col("External-IP", 0, "Addresses reachable from outside the cluster."),
        col("Port(s)", 0, "Ports, with node ports, and protocols."),
        AGE,
        col("Selector", 1, "Labels of the pods the service routes to."),
    ],
    cells: service_cells,
};

fn node_cells(v: &Value, now: Timestamp) -> Vec<Value> {
    let ready = items(v, "/status/conditions")
        .iter()
        .find(|c| s(c, "/type") == "Ready")
        .map(|c| match s(c, "/status") {
            "True" => "Ready",
            "False" => "NotReady",
            _ => "Unknown",
        })
        .unwrap_or("Unknown");
    let mut status = ready.to_string();
    if v.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = v
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, val)| {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                Some(role.to_string())
            } else if k == "kubernetes.io/role" {
                val.as_str().map(String::from)
            } else {
                None
            }
        })
        .filter(|r| !r.is_empty())
        .collect();
    roles.sort();
    roles.dedup();
    let address = |ty: &str| {
        or_none(
            items(v, "/status/addresses")
                .iter()
                .find(|a| s(a, "/type") == ty)
                .map(|a| s(a, "/address").to_string())
                .unwrap_or_default(),
        )
    };
    let info = |field: &str| {
        let value = s(v, &format!("/status/nodeInfo/{field}"));
        if value.is_empty() {
            "<unknown>".to_string()
        } else {
            value.to_string()
        }
    };
    vec![
        name(v),
        json!(status),
        json!(or_none(roles.join(","))),
        age(v, now),
        json!(s(v, "/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

/// core/v1 Node.
pub(crate) static NODE: Printer = Printer {
    columns: &[
        NAME,
        col("Status", 0, "Readiness, and whether scheduling is disabled."),
        col("Roles", 0, "Roles from node-role labels."),
        AGE,
        col("Version", 0, "Kubelet version."),
        col("Internal-IP", 1, "First internal address."),
        col("External-IP", 1, "First external address."),
        col("OS-Image", 1, "Operating system image."),
        col("Kernel-Version", 1, "Kernel version."),
        col("Container-Runtime", 1, "Container runtime and version."),
    ],
    cells: node_cells,
};

fn event_cells(v: &Value, now: Timestamp) -> Vec<Value> {
    let first = if s(v, "/firstTimestamp").is_empty() {
        since(v, "/eventTime", now)
    } else {
        since(v, "/firstTimestamp", now)
    };
    let mut last = if s(v, "/lastTimestamp").is_empty() {
        first.clone()
    } else {
        since(v, "/lastTimestamp", now)
    };
    let mut count = v.get("count").and_then(Value::as_i64).unwrap_or(0).max(1);
    if v.get("series").is_some_and(Value::is_object) {
        last = since(v, "/series/lastObservedTime", now);
        count = v
            .pointer("/series/count")
            .and_then(Value::as_i64)
            .unwrap_or(count);
    }
    let kind = s(v, "/involvedObject/kind").to_lowercase();
    let target = match s(v, "/involvedObject/name") {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = match s(v, "/source/component") {
        "" => s(v, "/reportingComponent"),
        c => c,
    };
    let host = match s(v, "/source/host") {
        "" => s(v, "/reportingInstance"),
        h => h,
    };
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        json!(last),
        json!(s(v, "/type")),
        json!(s(v, "/reason")),
        json!(target),
        json!(s(v, "/involvedObject/fieldPath")),
        json!(source),
        json!(s(v, "/message").trim()),
        json!(first),
        json!(count),
        name(v),
    ]
}

const EVENT_COLUMNS: &[Column] = &[
    col("Last Seen", 0, "Time since the event was last observed."),
    col("Type", 0, "Normal or Warning."),
    col("Reason", 0, "Short machine-readable reason."),
    col("Object", 0, "The object the event is about."),
    col("Subobject", 1, "Part of the object the event is about."),
    col("Source", 1, "Component that reported the event."),
    col("Message", 0, "Human-readable description."),
    col("First Seen", 1, "Time since the event was first observed."),
    Column {
        name: "Count",
        ty: "integer",
        format: "",
        description: "How many times the event was observed.",
        priority: 1,
    },
    Column {
        name: "Name",
        ty: "string",
        format: "name",
        description: "Name of the event object.",
        priority: 1,
    },
];

/// core/v1 Event.
pub(crate) static EVENT: Printer = Printer {
    columns: EVENT_COLUMNS,
    cells: event_cells,
};

/// events.k8s.io/v1 Event: printed through its core/v1 form.
pub(crate) static EVENT_V1: Printer = Printer {
    columns: EVENT_COLUMNS,
    cells: |v, now| event_cells(&convert::event_to_core(v.clone()), now),
};

fn count_keys(v: &Value, fields: &[&str]) -> usize {
    fields
        .iter()
        .filter_map(|f| v.get(*f).and_then(Value::as_object))
        .map(|m| m.len())
        .sum()
}

/// core/v1 Secret.
pub(crate) static SECRET: Printer = Printer {
    columns: &[
        NAME,
        col("Type", 0, "Secret type."),
        Column {
            name: "Data",
            ty: "integer",
            format: "",
            description: "Number of keys.",
            priority: 0,
        },
        AGE,
    ],
    cells: |v, now| {
        vec![
            name(v),
            json!(s(v, "/type")),
            json!(count_keys(v, &["data"])),
            age(v, now),
        ]
    },
};

/// core/v1 ConfigMap.
pub(crate) static CONFIG_MAP: Printer = Printer {
    columns: &[
        NAME,
        Column {
            name: "Data",
            ty: "integer",
            format: "",
            description: "Number of keys.",
            priority: 0,
        },
        AGE,
    ],
    cells: |v, now| {
        vec![
            name(v),
            json!(count_keys(v, &["data", "binaryData"])),
            age(v, now),
        ]
    },
};

/// core/v1 Namespace.
pub(crate) static NAMESPACE: Printer = Printer {
    columns: &[NAME, col("Status", 0, "Active or Terminating."), AGE],
    cells: |v, now| vec![name(v), json!(s(v, "/status/phase")), age(v, now)],
};

fn ingress_class_cells(v: &Value, now: Timestamp) -> Vec<Value> {
    let params = match v.pointer("/spec/parameters") {
        Some(p) if p.is_object() => {
            let group = s(p, "/apiGroup");
            let kind = if group.is_empty() {
                s(p, "/kind").to_string()
            } else {
                format!("{}.{group}", s(p, "/kind"))
            };
            format!("{kind}/{}", s(p, "/name"))
        }
        _ => "<none>".into(),
    };
    vec![
        name(v),
        json!(s(v, "/spec/controller")),
        json!(params),
        age(v, now),
    ]
}

/// networking.k8s.io/v1 IngressClass.
pub(crate) static INGRESS_CLASS: Printer = Printer {
    columns: &[
        NAME,
        col("Controller", 0, "Controller that implements this class."),
        col("Parameters", 0, "Controller-specific parameters object."),
        AGE,
    ],
    cells: ingress_class_cells,
};

/// coordination.k8s.io/v1 Lease.
pub(crate) static LEASE: Printer = Printer {
    columns: &[NAME, col("Holder", 0, "Current holder of the lease."), AGE],
    cells: |v, now| vec![name(v), json!(s(v, "/spec/holderIdentity")), age(v, now)],
};

fn endpoints_cells(v: &Value, now: Timestamp) -> Vec<Value> {
    let mut list = Vec::new();
    for subset in items(v, "/subsets") {
        let ports: Vec<String> = items(subset, "/ports")
            .iter()
            .filter_map(|p| p.get("port").map(Value::to_string))
            .collect();
        for a in items(subset, "/addresses") {
            let ip = s(a, "/ip");
            if ports.is_empty() {
                list.push(ip.to_string());
            }
            for p in &ports {
                list.push(format!("{ip}:{p}"));
            }
        }
    }
    vec![name(v), json!(or_none(join_some(list, ","))), age(v, now)]
}

/// core/v1 Endpoints.
pub(crate) static ENDPOINTS: Printer = Printer {
    columns: &[NAME, col("Endpoints", 0, "Ready addresses and ports."), AGE],
    cells: endpoints_cells,
};

fn endpoint_slice_cells(v: &Value, now: Timestamp) -> Vec<Value> {
    let ports: Vec<String> = items(v, "/ports")
        .iter()
        .filter_map(|p| p.get("port").map(Value::to_string))
        .collect();
    let addresses: Vec<String> = items(v, "/endpoints")
        .iter()
        .flat_map(|e| items(e, "/addresses").iter())
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    let unset = |s: String| if s.is_empty() { "<unset>".to_string() } else { s };
    vec![
        name(v),
        json!(s(v, "/addressType")),
        json!(unset(ports.join(","))),
        json!(unset(join_some(addresses, ","))),
        age(v, now),
    ]
}

/// discovery.k8s.io/v1 EndpointSlice.
pub(crate) static ENDPOINT_SLICE: Printer = Printer {
    columns: &[
        NAME,
        col("AddressType", 0, "IPv4, IPv6 or FQDN."),
        col("Ports", 0, "Ports of the slice."),
        col("Endpoints", 0, "Addresses of the endpoints."),
        AGE,
    ],
    cells: endpoint_slice_cells,
};

fn is_restartable_init(c: &Value) -> bool {
    c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
}

/// The STATUS, READY and RESTARTS of `kubectl get pods`, as `printPod` in
/// `pkg/printers/internalversion/printers.go` computes them: the phase (or `status.reason`),
/// replaced by the first failing or waiting init container (`Init:…`), then by the reasons of
/// waiting or terminated containers, `Terminating` once deleted (unless finished); READY counts
/// ready running containers (and started sidecars) over containers plus sidecars.
fn pod_cells(v: &Value, now: Timestamp) -> Vec<Value> {
    let phase = s(v, "/status/phase");
    let mut reason = match s(v, "/status/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if items(v, "/status/conditions")
        .iter()
        .any(|c| s(c, "/type") == "PodScheduled" && s(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }
    let init_specs = items(v, "/spec/initContainers");
    let total =
        items(v, "/spec/containers").len() + init_specs.iter().filter(|c| is_restartable_init(c)).count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut note_restart = |c: &Value, restarts: &mut i64| {
        *restarts += c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
        if let Ok(t) = s(c, "/lastState/terminated/finishedAt").parse::<Timestamp>()
            && last_restart.is_none_or(|l| t > l)
        {
            last_restart = Some(t);
        }
    };
    let init_statuses = items(v, "/status/initContainerStatuses");
    let mut initializing = false;
    for (i, c) in init_statuses.iter().enumerate() {
        note_restart(c, &mut restarts);
        let restartable = init_specs
            .iter()
            .find(|spec| s(spec, "/name") == s(c, "/name"))
            .is_some_and(is_restartable_init);
        let terminated = c.pointer("/state/terminated").filter(|t| t.is_object());
        let waiting_reason = s(c, "/state/waiting/reason");
        if restartable && c.get("started").and_then(Value::as_bool) == Some(true) {
            if c.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated
            && t.get("exitCode").and_then(Value::as_i64).unwrap_or(0) == 0
        {
            continue;
        }
        reason = if let Some(t) = terminated {
            match s(t, "/reason") {
                "" => match t.get("signal").and_then(Value::as_i64).unwrap_or(0) {
                    0 => format!(
                        "Init:ExitCode:{}",
                        t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                    ),
                    sig => format!("Init:Signal:{sig}"),
                },
                r => format!("Init:{r}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }
    if !initializing {
        restarts = 0;
        for c in init_statuses {
            let restartable = init_specs
                .iter()
                .find(|spec| s(spec, "/name") == s(c, "/name"))
                .is_some_and(is_restartable_init);
            if restartable {
                note_restart(c, &mut restarts);
            }
        }
        let mut has_running = false;
        for c in items(v, "/status/containerStatuses").iter().rev() {
            note_restart(c, &mut restarts);
            let waiting = s(c, "/state/waiting/reason");
            let terminated = c.pointer("/state/terminated").filter(|t| t.is_object());
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(t) = terminated {
                reason = match s(t, "/reason") {
                    "" => match t.get("signal").and_then(Value::as_i64).unwrap_or(0) {
                        0 => format!(
                            "ExitCode:{}",
                            t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                        ),
                        sig => format!("Signal:{sig}"),
                    },
                    r => r.to_string(),
                };
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && c.pointer("/state/running").is_some_and(Value::is_object)
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = items(v, "/status/conditions")
                .iter()
                .any(|c| s(c, "/type") == "Ready" && s(c, "/status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.into();
        }
    }
    let terminal = phase == "Succeeded" || phase == "Failed";
    if !s(v, "/metadata/deletionTimestamp").is_empty() {
        if s(v, "/status/reason") == "NodeLost" {
            reason = "Unknown".into();
        } else if !terminal {
            reason = "Terminating".into();
        }
    }
    let restarts = match last_restart {
        Some(t) if restarts != 0 => format!(
            "{restarts} ({} ago)",
            human_duration(now.as_second() - t.as_second())
        ),
        _ => restarts.to_string(),
    };
    let ip = items(v, "/status/podIPs")
        .first()
        .map(|p| s(p, "/ip").to_string())
        .unwrap_or_default();
    let gates = items(v, "/spec/readinessGates");
    let gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = items(v, "/status/conditions");
        let true_count = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .find(|c| s(c, "/type") == s(g, "/conditionType"))
                    .is_some_and(|c| s(c, "/status") == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };
    vec![
        name(v),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        age(v, now),
        json!(or_none(ip)),
        json!(or_none(s(v, "/spec/nodeName").to_string())),
        json!(or_none(s(v, "/status/nominatedNodeName").to_string())),
        json!(gates),
    ]
}

/// core/v1 Pod: `kubectl get pods` shows NAME READY STATUS RESTARTS AGE, `-o wide` adds IP NODE
/// NOMINATED NODE READINESS GATES (`podColumnDefinitions` in
/// `pkg/printers/internalversion/printers.go`).
pub(crate) static POD: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Ready",
            0,
            "The aggregate readiness state of this pod for accepting traffic.",
        ),
        col("Status", 0, "The aggregate status of the containers in this pod."),
        col(
            "Restarts",
            0,
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        AGE,
        col("IP", 1, "IP address allocated to the pod."),
        col("Node", 1, "Node the pod is bound to."),
        col(
            "Nominated Node",
            1,
            "Node the scheduler nominated for the pod while preempting others.",
        ),
        col(
            "Readiness Gates",
            1,
            "Readiness gates whose condition is True, of all the pod's gates.",
        ),
    ],
    cells: pod_cells,
};

/// What each row carries besides its cells (`includeObject=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(value: Option<&str>) -> Result<Self, crate::error::ApiError> {
        match value {
            None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
            Some("None") => Ok(IncludeObject::None),
            Some("Object") => Ok(IncludeObject::Object),
            Some(other) => Err(crate::error::ApiError::bad_request(format!(
                "includeObject must be None, Metadata or Object, not {other:?}"
            ))),
        }
    }
}

/// The `PartialObjectMetadata` form of an object.
pub(crate) fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn printer(kind: &Kind) -> &'static Printer {
    kind.table.unwrap_or(&DEFAULT)
}

/// The column definitions of a kind's table.
pub(crate) fn column_definitions(kind: &Kind) -> Value {
    Value::Array(
        printer(kind)
            .columns
            .iter()
            .map(|c| {
                json!({
                    "name": c.name, "type": c.ty, "format": c.format,
                    "description": c.description, "priority": c.priority,
                })
            })
            .collect(),
    )
}

/// One row of a kind's table.
pub(crate) fn row(kind: &Kind, object: &Value, include: IncludeObject, now: Timestamp) -> Value {
    let mut row = json!({"cells": (printer(kind).cells)(object, now)});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => row["object"] = partial_metadata(object),
        IncludeObject::Object => row["object"] = object.clone(),
    }
    row
}

/// A whole table; `columns` is false for watch events after the first, as a real server sends them.
pub(crate) fn table(kind: &Kind, rows: Vec<Value>, metadata: Value, columns: bool) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": if columns { column_definitions(kind) } else { json!([]) },
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60, "3h1m"),
            (47 * 3600, "47h"),
            (3 * 86400 + 3600, "3d1h"),
            (30 * 86400, "30d"),
            (3 * 365 * 86400 + 10 * 86400, "3y10d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn ingress_row() {
        let now: Timestamp = "2025-01-01T00:10:00Z".parse().unwrap();
        let ing = json!({
            "metadata": {"name": "web", "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"ingressClassName": "gce", "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}],
                     "tls": [{"hosts": ["a.example.com"]}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}
        });
        assert_eq!(
            ingress_cells(&ing, now),
            vec![
                json!("web"),
                json!("gce"),
                json!("a.example.com,b.example.com"),
                json!("203.0.113.7"),
                json!("80, 443"),
                json!("10m")
            ]
        );
        let bare = json!({"metadata": {"name": "x"}});
        assert_eq!(ingress_cells(&bare, now)[1], "<none>");
        assert_eq!(ingress_cells(&bare, now)[2], "*");
        assert_eq!(ingress_cells(&bare, now)[5], "<unknown>");
    }

    #[test]
    fn pod_rows() {
        let now: Timestamp = "2025-01-01T00:10:00Z".parse().unwrap();
        let running = json!({
            "metadata": {"name": "web-1", "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}],
                     "readinessGates": [{"conditionType": "cloud.google.com/load-balancer-neg-ready"}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}],
                "conditions": [{"type": "cloud.google.com/load-balancer-neg-ready", "status": "False"}],
                "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                    {"name": "b", "ready": false, "restartCount": 2, "state": {"running": {}},
                     "lastState": {"terminated": {"finishedAt": "2025-01-01T00:07:00Z"}}},
                ]}
        });
        assert_eq!(
            pod_cells(&running, now),
            vec![
                json!("web-1"),
                json!("1/2"),
                json!("Running"),
                json!("2 (3m ago)"),
                json!("10m"),
                json!("10.0.0.5"),
                json!("n1"),
                json!("<none>"),
                json!("0/1"),
            ]
        );
        let mut deleting = running.clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:11:00Z");
        assert_eq!(pod_cells(&deleting, now)[2], "Terminating");
        let pending = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Pending"}});
        let cells = pod_cells(&pending, now);
        assert_eq!(cells[1..4], [json!("0/1"), json!("Pending"), json!("0")]);
        assert_eq!(
            cells[5..],
            [json!("<none>"), json!("<none>"), json!("<none>"), json!("<none>")]
        );
    }

    #[test]
    fn service_row() {
        let now = Timestamp::now();
        let svc = json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.9",
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}], "selector": {"b": "2", "a": "1"}}});
        let cells = service_cells(&svc, now);
        assert_eq!(cells[3], "<none>");
        assert_eq!(cells[4], "80:30080/TCP");
        assert_eq!(cells[6], "a=1,b=2");
    }
}
