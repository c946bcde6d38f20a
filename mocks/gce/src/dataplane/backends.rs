//! The members of a backend service as the store holds them: each instance of its instance
//! groups (or endpoint of its NEGs), with the port traffic goes to.

use serde_json::Value;

use crate::json::Obj;
use crate::kinds::{Key, Kind, parse_ref};
use crate::resources::{forced_down, instance, serving_port};
use crate::store::{Members, Store};

/// One backend of a backend service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Member {
    /// The instance (of a group, or behind a NEG endpoint).
    pub instance: Key,
    /// Its primary IP (a NEG endpoint's IP).
    pub ip: String,
    /// Where traffic goes: the group's named port called the service's `portName` (default
    /// `http`), else the service's `port`; a NEG endpoint's port.
    pub port: u16,
    /// The group's named ports (none for a NEG), for a health check's `USE_NAMED_PORT`.
    pub named_ports: Vec<(String, u16)>,
    /// Whether the group's `capacityScaler` is 0: the backend is drained, no traffic.
    pub drained: bool,
    /// Whether the admin API forced it UNHEALTHY (its instance, or this NEG endpoint): no
    /// traffic, whatever its probes say.
    pub forced_down: bool,
}

/// The members of the backend service stored as `service`, in the order of its `backends[]`,
/// then of the group's members.
pub(super) fn members(store: &Store, service: &Key, obj: &Obj) -> Vec<Member> {
    let mut out = Vec::new();
    let backends = obj.get("backends").and_then(Value::as_array);
    for b in backends.into_iter().flatten() {
        let Some(group) = b
            .get("group")
            .and_then(Value::as_str)
            .and_then(|g| parse_ref(g, &service.project))
        else {
            continue;
        };
        let Some(gentry) = store.get(&group) else {
            continue;
        };
        let drained = b.get("capacityScaler").and_then(Value::as_f64) == Some(0.0);
        match (&gentry.members, group.kind) {
            (Members::Instances(names), Kind::InstanceGroup) => {
                let port = u16::try_from(serving_port(obj, &gentry.obj)).unwrap_or(80);
                let named_ports = named_ports(&gentry.obj);
                for name in names {
                    let ik = group.sibling(Kind::Instance, name);
                    let ip = store
                        .get(&ik)
                        .map(|e| instance::primary_ip(&e.obj))
                        .unwrap_or_default();
                    out.push(Member {
                        forced_down: forced_down(store, &group, &ik, &ip, i64::from(port)),
                        instance: ik,
                        ip,
                        port,
                        named_ports: named_ports.clone(),
                        drained,
                    });
                }
            }
            (Members::Endpoints(endpoints), _) => {
                for ep in endpoints {
                    let Ok(port) = u16::try_from(ep.port) else {
                        continue;
                    };
                    let instance = group.sibling(Kind::Instance, &ep.instance);
                    out.push(Member {
                        forced_down: forced_down(store, &group, &instance, &ep.ip, i64::from(port)),
                        instance,
                        ip: ep.ip.clone(),
                        port,
                        named_ports: Vec::new(),
                        drained,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// `namedPorts[]` of an instance group.
fn named_ports(group: &Obj) -> Vec<(String, u16)> {
    group
        .get("namedPorts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|np| {
            let name = np.get("name")?.as_str()?.to_string();
            let port = u16::try_from(np.get("port")?.as_i64()?).ok()?;
            Some((name, port))
        })
        .collect()
}
