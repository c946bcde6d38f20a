//! A fake kube-apiserver that speaks the real Kubernetes REST protocol, for tests, benchmarks and
//! the sandbox. kube-rs clients (including `kube::runtime::watcher` and `Controller`) and the real
//! `kubectl` both work against it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let kube = fake_kube::FakeKube::start(fake_kube::Config::default()).await?; // 127.0.0.1:0
//! kube.write_kubeconfig("kc.yaml")?; // KUBECONFIG=kc.yaml kubectl get ing
//! let client_url = kube.url(); // http://127.0.0.1:PORT
//! # let _ = client_url;
//! for r in kube.requests() {
//!     println!("{} {} {:?}", r.verb, r.resource, r.subresource);
//! }
//! # Ok(()) }
//! ```
//!
//! # Transport
//! Plain HTTP/1.1 on loopback, no TLS and no authentication: the kubeconfig names an `http://`
//! server and an empty user, which both kube-rs 5 and kubectl 1.32 accept. There is no
//! certificate to generate, trust or rotate, and nothing leaves the machine.
//!
//! # What is modelled
//! - **Kinds** (one table entry each, see `kinds.rs`): core/v1 namespaces, services, pods
//!   (below), secrets, configmaps, nodes, events, endpoints; networking.k8s.io/v1 ingresses and ingressclasses;
//!   coordination.k8s.io/v1 leases; events.k8s.io/v1 events (a view of core/v1 events, as in a real
//!   cluster, so `kubectl describe` shows Events recorded through it); discovery.k8s.io/v1
//!   endpointslices. For installing a controller (`kubectl apply -k deploy/`), also core/v1
//!   serviceaccounts, rbac.authorization.k8s.io/v1 clusterroles, clusterrolebindings, roles and
//!   rolebindings, apps/v1 deployments, policy/v1 poddisruptionbudgets and scheduling.k8s.io/v1
//!   priorityclasses: stored and served only (a Deployment makes no pods, RBAC is not enforced).
//!   Objects are stored as JSON keyed by kind, namespace and name.
//! - **Object semantics**: one global resourceVersion; uid, creationTimestamp; generation (Ingress,
//!   IngressClass, EndpointSlice, Pod, …) bumped only when something outside metadata and status
//!   changes, and by the first deletion mark;
//!   writes that change nothing do not bump the resourceVersion and emit no event.
//!   Create → 409 AlreadyExists, get → 404 NotFound, update with a stale resourceVersion →
//!   409 Conflict (an empty resourceVersion updates unconditionally), `generateName`, `dryRun=All`.
//! - **Patches**: JSON patch (with Kubernetes' rule that `test` of `null` matches a missing path),
//!   JSON merge patch, strategic merge patch (merge keys and set lists per kind; `$patch`,
//!   `$retainKeys`, `$deleteFromPrimitiveList`, `$setElementOrder`), and server-side apply (below).
//!   A resourceVersion in a patch is a precondition.
//! - **Status subresource** (ingresses, services, pods, nodes, namespaces): writes to `/status`
//!   change only `.status`; other writes keep it; create drops a client-sent status for ingresses,
//!   services and pods.
//! - **Finalizers**: delete sets `deletionTimestamp`; the object goes when the last finalizer is
//!   removed (for a pod: once its grace period is over, see below); no finalizer may be added
//!   while deleting. Deleting a namespace deletes its contents
//!   and the namespace leaves once empty; nothing can be created in it meanwhile.
//! - **Defaulting**: Services get a cluster IP (from 10.96.0.0/12) and unique node ports from
//!   [`Config::node_port_range`], protocol and targetPort defaults; Secret `stringData` is folded
//!   into `data`; Namespaces get phase and the `kubernetes.io/metadata.name` label.
//! - **Validation**: names, labels, annotations and finalizers for every kind; Ingress rules,
//!   backends, paths, hosts and TLS; Service types, ports and protocols; TLS Secret keys;
//!   IngressClass controller. Bad objects get 422 `Invalid` with `details.causes[]` naming each
//!   field; malformed bodies 400; unknown kinds or paths 404. Bodies are decoded through the
//!   k8s-openapi types, so wrong types are rejected and unknown fields are dropped, reported in a
//!   `Warning` header, or rejected with `fieldValidation=Strict` (what kubectl sends). A rejected
//!   request changes nothing.
//! - **Lists**: label selectors (`=`, `!=`, `in`, `notin`, exists, `!`), field selectors
//!   (`metadata.name`, `metadata.namespace` and per-kind labels such as `involvedObject.name`),
//!   paging with `limit`/`continue` (tokens keep the first page's resourceVersion; later pages read
//!   current data, which a following watch from that resourceVersion reconciles), and the
//!   `PartialObjectMetadata` and `Table` renderings.
//! - **Watch**: `watch=true` streams ADDED/MODIFIED/DELETED from `resourceVersion` (unset or `0`
//!   first sends the current state as ADDED), selector-aware (an object leaving a label selection
//!   is seen as DELETED), `allowWatchBookmarks` (a BOOKMARK every [`Config::bookmark_interval`]),
//!   `timeoutSeconds`, and streaming lists (`sendInitialEvents=true` ends the initial events with a
//!   bookmark annotated `k8s.io/initial-events-end`). The last [`Config::watch_history`] changes
//!   are kept; a watch from an older resourceVersion (or a lagging watch that falls out of the
//!   window, or any watch after [`FakeKube::compact_history`]) gets an `ERROR` event with a 410
//!   `Expired` Status, so kube-rs's watcher re-lists.
//! - **kubectl**: `/version`; legacy and aggregated (`apidiscovery.k8s.io/v2`) discovery; a minimal
//!   OpenAPI v3 that declares `fieldValidation` on every PATCH path, so kubectl's
//!   `--validate=strict` defers to the server instead of needing schemas (`/openapi/v2` is 404, so
//!   `kubectl apply` computes strategic merge patches from its built-in types); server-side `Table`
//!   output for `kubectl get` with kubectl's usual columns (`kubectl get ing` shows NAME CLASS
//!   HOSTS ADDRESS PORTS AGE). `create`, `apply` (client- and server-side), `get`, `get -w`,
//!   `describe`, `patch`, `label`, `delete` (which waits with a watch) work.
//! - **Records**: every request is recorded as a [`RequestRecord`] (RBAC verb, group, resource,
//!   subresource, namespace, name, user agent, status).
//!
//! - **Server-side apply** (`application/apply-patch+yaml`, JSON or YAML body, `fieldManager`
//!   required): the configuration is merged into the live object (maps recursively, keyed lists by
//!   key, other lists replaced), fields the same manager applied before and no longer lists are
//!   removed, and a missing object is created. Good for kube-rs `Patch::Apply` (also on `/status`)
//!   and `kubectl apply --server-side`.
//!
//! # Pods
//! core/v1 `pods` (short name `po`) and `pods/{name}/status`, through the same machinery as the
//! other kinds, plus what the apiserver's pod strategy does (`pods.rs`, sources there:
//! `pkg/registry/core/pod/strategy.go`, `pkg/apis/core/v1/defaults.go`,
//! `pkg/apis/core/validation/validation.go`):
//! - **Create** replaces any client-sent status with `{phase: Pending, qosClass}`, the QoS class
//!   computed as `ComputePodQOS` does; `generation` starts at 1 and follows spec changes.
//! - **Defaults** as the decoder sets them: `restartPolicy`, `dnsPolicy`, `schedulerName`,
//!   `terminationGracePeriodSeconds: 30`, `securityContext: {}`, `enableServiceLinks`; per
//!   container `imagePullPolicy` (from the tag), `terminationMessagePath`/`Policy`, port
//!   `protocol: TCP` (`hostPort` for host-network pods), probe timings (`timeoutSeconds: 1`,
//!   `periodSeconds: 10`, thresholds 1 and 3) and `httpGet` `path: /`, `scheme: HTTP`, requests
//!   from limits; volume default modes.
//! - **Updates**: the spec may change only as `ValidatePodUpdate` allows (images,
//!   `activeDeadlineSeconds` downwards, added tolerations, removed scheduling gates); anything
//!   else — `readinessGates`, ports, `nodeName` — is 422 with `spec: Forbidden: pod updates may
//!   not change fields other than …` (the diff after it is the fake's, in JSON). A status write
//!   keeps the spec and an empty `qosClass`, which may not change; `podIP` and `podIPs[0]` (and
//!   `hostIP`/`hostIPs`) are kept equal as the v1 conversion does; custom condition types must be
//!   qualified names.
//! - **Strategic merge patch** keys from the k8s types: `spec.containers` (and init/ephemeral
//!   containers, volumes, `imagePullSecrets`, `schedulingGates`) by `name`, container `ports` by
//!   `containerPort`, `env` by `name`, `volumeMounts` by `mountPath`, `status.conditions` by
//!   `type`, `status.podIPs` and `hostIPs` by `ip`; lists without a patch strategy
//!   (`readinessGates`, `tolerations`, `containerStatuses`) are replaced.
//! - **Field selectors** of `PodToSelectableFields`: `spec.nodeName` (also as `spec.host`),
//!   `spec.restartPolicy`, `spec.schedulerName`, `spec.serviceAccountName`, `spec.hostNetwork`,
//!   `status.phase`, `status.podIP`, `status.nominatedNodeName`; `status.podIPs` is accepted but,
//!   as in Kubernetes, never has a value.
//! - **Validation**: containers required, names DNS-1123 labels and unique, images required,
//!   ports 1–65535 with unique IANA names and known protocols, probes with exactly one handler
//!   and sane numbers, requests within limits, `restartPolicy`/`dnsPolicy` values, readiness-gate
//!   condition types qualified names, `nodeName`, `hostname`, `subdomain`,
//!   `activeDeadlineSeconds`, no ephemeral containers on create.
//! - **Graceful deletion** (`CheckGracefulDelete`, `rest.BeforeDelete`; docs "Termination of
//!   Pods"): deleting a pod with a `spec.nodeName` sets `deletionTimestamp` to now + the grace
//!   period (`gracePeriodSeconds` of the request, else `spec.terminationGracePeriodSeconds`) and
//!   `deletionGracePeriodSeconds`, bumps `generation`, and keeps the pod (a MODIFIED event) until
//!   someone — the kubelet, [`FakeKube::finish_termination`], `kubectl delete --grace-period=0
//!   --force` — deletes it with period 0 (MODIFIED, then DELETED). A later DELETE may only
//!   shorten the period. An unscheduled or finished pod goes at once. Finalizers hold a pod past
//!   its period; the last one removed then deletes it.
//! - **kubectl**: `kubectl get pods` shows NAME READY STATUS RESTARTS AGE (STATUS as `printPod`
//!   computes it, `Terminating` once deleted); `-o wide` adds IP NODE NOMINATED NODE READINESS
//!   GATES.
//!
//! # Pod simulation
//! Nothing runs pods unless [`Config::simulate_pods`] is set (binary: `--simulate-pods`). Then a
//! background task (`sim/`) plays two controllers, writing through the API's own rules, after
//! the writes it reacts to, so watchers see its writes as separate events:
//! - **A kubelet on every Node** (`sim/kubelet.rs`). Nothing is scheduled: a pod names its
//!   `spec.nodeName`, and runs once a Node of that name exists (a pod on a missing Node stays
//!   Pending, and is in no EndpointSlice). It gets `podIP`/`podIPs` from its Node's
//!   `spec.podCIDR` when the Node has one (the host addresses of the range, as node IPAM gives
//!   each node a range; on GCE the VM's alias IP range, which NEG endpoints must fall in), else
//!   from [`PodSimulation::pod_ips`] ([`PodIpRange`], e.g. a loopback block `127.A.B.1`–`.253`
//!   for tests with a data plane); a host-network pod the Node's `InternalIP`; `hostIP` from the
//!   Node, `phase: Running`, container statuses, and the conditions `PodReadyToStartContainers`,
//!   `Initialized`, `ContainersReady` (True unless [`FakeKube::set_containers_ready`] said
//!   otherwise — readiness probes are not run), `Ready` and `PodScheduled`. `Ready` is
//!   `ContainersReady` ∧ every `spec.readinessGates[].conditionType` condition `True`, with the
//!   kubelet's reasons (`ReadinessGatesNotReady`, `ContainersNotReady`) and messages (docs "Pod
//!   readiness gate", `pkg/kubelet/status/generate.go`); it is evaluated again whenever the pod
//!   changes, e.g. when a load balancer controller sets `cloud.google.com/load-balancer-neg-ready`
//!   through `pods/{name}/status`. A deleted pod keeps running (and keeps its readiness) until
//!   its [`Termination`]: its grace period by default, [`Termination::After`] a set time, or
//!   [`Termination::Manual`] ([`FakeKube::finish_termination`]); then the kubelet deletes it with
//!   period 0, preconditioned on its uid.
//! - **The EndpointSlice controller** (`sim/endpointslices.rs`, after `k8s.io/endpointslice`;
//!   docs "EndpointSlices"). Every Service with a selector (not `ExternalName`) gets slices
//!   `<service>-<random>` (`discovery.k8s.io/v1`, `addressType: IPv4`, owned by the Service,
//!   labels `kubernetes.io/service-name`, `endpointslice.kubernetes.io/managed-by:
//!   endpointslice-controller.k8s.io` and the Service's own), with one endpoint per pod of its
//!   namespace matching the selector that has an IP and has not finished: `addresses`,
//!   `conditions` (`serving` = the pod is Ready; `terminating` = being deleted; `ready` =
//!   serving and not terminating — so a terminating pod shows `ready: false, serving: true`),
//!   `nodeName`, `zone` (the Node's `topology.kubernetes.io/zone`), `targetRef` to the pod. Ports
//!   come from the Service, a named `targetPort` resolved against each pod's container ports of
//!   that name and protocol; pods resolving differently get separate slices, as do more than
//!   [`PodSimulation::max_endpoints_per_slice`] endpoints; a Service without endpoints has one
//!   empty placeholder slice. Slices follow pod, Service, Node and slice changes, and go with
//!   their Service.
//!
//! If the change history the simulator follows is dropped ([`FakeKube::compact_history`]), it
//! syncs everything again. Its writes are not requests, so they are not in [`FakeKube::requests`].
//!
//! # What is not modelled
//! Authentication and RBAC enforcement; admission webhooks; owner-reference garbage collection;
//! field ownership conflicts in server-side apply (every apply behaves as if forced;
//! `managedFields` are not kept); protobuf request bodies, which kubectl's `create <kind>`
//! generators send (`kubectl create secret tls …` gets 415 with a hint: pipe
//! `--dry-run=client -o yaml` into `kubectl apply -f -` instead; responses are always JSON, which
//! every client accepts); OpenAPI schemas (`kubectl explain`); Event TTL; kinds not listed
//! above; consistent snapshots for paged lists, and `resourceVersionMatch=Exact` on an old
//! resourceVersion (answered 410); cluster-IP uniqueness for explicitly requested IPs.
//!
//! For pods: admission plugins (no `serviceAccountName: default` and token volume, no default
//! tolerations, no `priority`, no LimitRanger defaults); the subresources `binding`, `eviction`,
//! `log`, `exec`, `attach`, `portforward`, `ephemeralcontainers` and `resize` (404); a scheduler
//! (pods name their node); label and annotation changes sent to `pods/{name}/status` (ignored
//! here, applied by Kubernetes); the create warning for names that are not DNS labels; the
//! remaining pod validation (volumes, security contexts, affinity, resources beyond requests ≤
//! limits, …); server-side apply's list types where they differ from the patch strategies
//! (`hostIPs` is atomic, container ports are keyed by port and protocol); a dry-run DELETE
//! returns the object unchanged. The simulator does not run probes, images or containers: no
//! restarts, init containers complete at once, and a terminating pod is removed without first
//! reaching `Succeeded`/`Failed`; no pod garbage collection (pods of a deleted Node stay);
//! IPv4 only (no IPv6 or dual-stack pods or slices); no core/v1 Endpoints (the endpoints
//! controller), EndpointSlice mirroring, topology hints, `trafficDistribution` or
//! `endpoints.kubernetes.io/last-change-trigger-time`; endpoint and port order is the fake's
//! (pod names, Service port order), where the real controller's is arbitrary; and, as in
//! Kubernetes, a Service whose selector is removed keeps its last slices.
//!
//! # Library API
//! [`FakeKube::start`] binds (port 0 picks one), seeds the namespaces `default`, `kube-system`
//! (uid [`Config::kube_system_uid`], stable across runs), `kube-public`, `kube-node-lease` and the
//! `default/kubernetes` Service, and serves in a background task until [`FakeKube::shutdown`] or
//! drop. [`FakeKube::kubeconfig_yaml`] / [`FakeKube::write_kubeconfig`] point clients at it.
//! [`FakeKube::requests`] returns the [`RequestRecord`]s. For test setup and assertions without a
//! client there are [`FakeKube::create`], [`FakeKube::apply_yaml`], [`FakeKube::get`] and
//! [`FakeKube::list`]; [`FakeKube::compact_history`] forces 410s. With pod simulation,
//! [`FakeKube::set_containers_ready`] and [`FakeKube::finish_termination`] play what probes and
//! stopping containers would.
//!
//! # Binary
//! `fake-kube --listen 127.0.0.1:6443 --kubeconfig-out kc.yaml [--apply manifest.yaml]…` serves
//! until Ctrl-C (`--help` lists the rest). Then `KUBECONFIG=kc.yaml kubectl apply -f …`.
//! `--simulate-pods [--pod-ips 127.0.42.1+253] [--pod-termination SECONDS|manual]` turns the pod
//! simulation on (default range `10.244.0.1+65534`, termination after the grace period).
//!
//! # Layout
//! `kinds` (the table) · `store` (objects, resourceVersions, history, write rules) · `watch` ·
//! `patch` (merge, strategic, JSON patch, apply) · `selectors` · `validation` · `defaults`
//! (allocation and defaulting) · `pods` (the pod strategy) · `sim` (pod simulation: `kubelet`,
//! `endpointslices`) · `convert` (events.k8s.io view) · `discovery` · `openapi` · `table` ·
//! `records` · `server` (routing and negotiation) · `kubeconfig` · `error` (`Status`).

#![forbid(unsafe_code)]

mod convert;
mod defaults;
mod discovery;
mod error;
mod kinds;
mod kubeconfig;
mod openapi;
mod patch;
mod pods;
mod records;
mod selectors;
mod server;
mod sim;
mod store;
mod table;
mod validation;
mod watch;

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

pub use error::{ApiError, Cause, StatusDetails};
pub use records::RequestRecord;
pub use sim::{PodIpRange, PodSimulation, Termination};

use server::Shared;
use store::{FieldValidation, Filter, Store, StoreConfig, WriteOptions};

/// The uid the seeded `kube-system` namespace gets unless configured otherwise. Controllers derive
/// a cluster id from it, so keeping it stable keeps cloud resource names stable across runs.
pub const DEFAULT_KUBE_SYSTEM_UID: &str = "4f2d7c1e-9a3b-4c5d-8e6f-0a1b2c3d4e5f";

/// How to start a [`FakeKube`].
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port. Keep it on loopback.
    pub listen: SocketAddr,
    /// How many changes are kept for watches to resume from (see the crate docs on 410 Gone).
    pub watch_history: usize,
    /// How often a watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
    /// The uid of the seeded `kube-system` namespace.
    pub kube_system_uid: String,
    /// Node ports Services may use (the apiserver's `--service-node-port-range`).
    pub node_port_range: RangeInclusive<u16>,
    /// Keep a [`RequestRecord`] of every request (turn off for long benchmarks).
    pub record_requests: bool,
    /// Name of the cluster, context and user in the kubeconfig.
    pub context_name: String,
    /// Play the kubelets and the EndpointSlice controller (see the crate docs); off by default.
    pub simulate_pods: Option<PodSimulation>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            watch_history: 20_000,
            bookmark_interval: Duration::from_secs(10),
            kube_system_uid: DEFAULT_KUBE_SYSTEM_UID.to_string(),
            node_port_range: 30000..=32767,
            record_requests: true,
            context_name: "fake-kube".to_string(),
            simulate_pods: None,
        }
    }
}

/// Why [`FakeKube::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Seeding the initial namespaces failed (a bug, or a bad [`Config::kube_system_uid`]).
    #[error("cannot seed the initial objects: {0}")]
    Seed(#[source] ApiError),
}

/// A running fake apiserver. Dropping it stops the server and ends open watches.
pub struct FakeKube {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: signal::Sender<bool>,
    server: Option<JoinHandle<()>>,
    config: Config,
    sim: Option<Arc<sim::Simulator>>,
}

impl std::fmt::Debug for FakeKube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKube")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

fn seed(store: &mut Store, config: &Config) -> Result<(), ApiError> {
    let opts = WriteOptions::default();
    let namespaces =
        kinds::find("", "v1", "namespaces").ok_or_else(|| ApiError::internal("no namespaces kind"))?;
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        store.create(namespaces, None, ns, &opts)?;
    }
    // The uid is server-owned, so set the configured one by replacing the created object's.
    store.set_uid(namespaces, None, "kube-system", &config.kube_system_uid)?;
    let services = kinds::find("", "v1", "services").ok_or_else(|| ApiError::internal("no services kind"))?;
    let kubernetes = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "ports": [{"name": "https", "port": 443, "targetPort": 6443}]},
    });
    store.create(services, Some("default"), kubernetes, &opts)?;
    // The seeds are the initial state, not history a watch could replay.
    store.compact();
    Ok(())
}

impl FakeKube {
    /// Binds, seeds the namespaces `default`, `kube-system` (uid [`Config::kube_system_uid`]),
    /// `kube-public`, `kube-node-lease` and the `default/kubernetes` Service, and serves in a
    /// background task.
    pub async fn start(config: Config) -> Result<FakeKube, StartError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let (notify_tx, notify_rx) = signal::channel(0);
        let (stop, stop_rx) = signal::channel(false);
        let mut store = Store::new(
            &StoreConfig {
                history_limit: config.watch_history,
                node_ports: config.node_port_range.clone(),
            },
            notify_tx,
        );
        seed(&mut store, &config).map_err(StartError::Seed)?;
        let shared = Arc::new(Shared::new(
            store,
            notify_rx,
            stop_rx.clone(),
            config.bookmark_interval,
            config.record_requests,
            format!("{addr}"),
        ));
        let app = server::router(shared.clone());
        let mut shutdown = stop_rx;
        // Watch events are small writes; without TCP_NODELAY Nagle's algorithm can hold them back.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "fake-kube server failed");
            }
        });
        let sim = config.simulate_pods.clone().and_then(sim::Simulator::new);
        if let Some(sim) = &sim {
            tokio::spawn(sim::run(shared.clone(), sim.clone()));
        }
        tracing::debug!(%addr, "fake-kube listening");
        Ok(FakeKube {
            addr,
            shared,
            stop,
            server: Some(server),
            config,
            sim,
        })
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig whose current context points at this server (namespace `default`).
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig::render(&self.config.context_name, &self.url())
    }

    /// Writes [`Self::kubeconfig_yaml`] to a file.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// The uid of the `kube-system` namespace.
    pub fn kube_system_uid(&self) -> &str {
        &self.config.kube_system_uid
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.records().clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.records().clear();
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().resource_version()
    }

    /// Drops the watch history and expires open watches: every open watch, and every watch
    /// resuming from a resourceVersion before now, gets an `ERROR` event with a 410 `Expired`
    /// Status, forcing clients such as kube-rs's watcher to re-list.
    pub fn compact_history(&self) {
        self.shared.store().compact();
    }

    /// Creates an object as a POST would (apiVersion and kind pick the resource; a namespaced
    /// object without a namespace goes to `default`), with strict field validation.
    pub fn create(&self, object: Value) -> Result<Value, ApiError> {
        let kind = kind_of(&object)?;
        let ns = namespace_of(kind, &object);
        let opts = WriteOptions {
            field_validation: FieldValidation::Strict,
            ..WriteOptions::default()
        };
        let written = self.shared.store().create(kind, ns.as_deref(), object, &opts)?;
        Ok((*written.object).clone())
    }

    /// Creates or updates every object of a (multi-document) YAML or JSON manifest with
    /// server-side apply, field manager `fake-kube`, and returns the stored objects.
    pub fn apply_yaml(&self, manifest: &str) -> Result<Vec<Value>, ApiError> {
        let docs: Vec<Value> = serde_saphyr::from_multiple(manifest)
            .map_err(|e| ApiError::bad_request(format!("the manifest is not valid YAML: {e}")))?;
        let opts = WriteOptions {
            field_validation: FieldValidation::Strict,
            field_manager: Some("fake-kube".into()),
            ..WriteOptions::default()
        };
        let mut out = Vec::new();
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            let kind = kind_of(&doc)?;
            let ns = namespace_of(kind, &doc);
            let name = doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::bad_request("every object in the manifest needs metadata.name"))?
                .to_string();
            let written = self.shared.store().patch(
                kind,
                ns.as_deref(),
                &name,
                store::Sub::Main,
                patch::PatchType::Apply,
                &doc,
                &opts,
            )?;
            out.push((*written.object).clone());
        }
        Ok(out)
    }

    /// Reads one object by apiVersion, kind, namespace and name.
    pub fn get(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let kind = kinds::by_kind(api_version, kind)?;
        self.shared
            .store()
            .get(kind, namespace, name)
            .ok()
            .map(|o| (*o).clone())
    }

    /// Lists the objects of a kind, in one namespace or (with `None`) all of them.
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(kind) = kinds::by_kind(api_version, kind) else {
            return Vec::new();
        };
        let filter = Filter {
            namespace: namespace.map(String::from),
            ..Filter::default()
        };
        self.shared
            .store()
            .list(kind, &filter, None, None)
            .map(|page| page.items.iter().map(|o| (**o).clone()).collect())
            .unwrap_or_default()
    }

    /// Pod simulation: makes the containers of a pod ready or not, as its readiness probes
    /// would, and has its kubelet report that at once (`ContainersReady`, `Ready`, the container
    /// statuses; the EndpointSlices follow). Holds for this pod (by uid) until changed. Fails
    /// with 404 for a missing pod, and with 400 when [`Config::simulate_pods`] is off.
    pub fn set_containers_ready(&self, namespace: &str, pod: &str, ready: bool) -> Result<(), ApiError> {
        let sim = self.simulator()?;
        sim.set_ready(&mut self.shared.store(), namespace, pod, ready)
    }

    /// Pod simulation: the kubelet finishes a pod being deleted (its containers have stopped):
    /// it deletes the pod with no grace period, which removes it unless finalizers remain.
    /// Fails with 404 for a missing pod, 409 for a pod not being deleted, and 400 when
    /// [`Config::simulate_pods`] is off.
    pub fn finish_termination(&self, namespace: &str, pod: &str) -> Result<(), ApiError> {
        let sim = self.simulator()?;
        sim.finish(&mut self.shared.store(), namespace, pod)
    }

    fn simulator(&self) -> Result<&sim::Simulator, ApiError> {
        self.sim
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("pod simulation is off (Config::simulate_pods is None)"))
    }

    /// Stops serving and waits for the server task; open watches end.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

fn kind_of(object: &Value) -> Result<kinds::KindId, ApiError> {
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    kinds::by_kind(api_version, kind).ok_or_else(|| {
        ApiError::bad_request(format!("no kind {kind:?} is served in version {api_version:?}"))
    })
}

fn namespace_of(kind: kinds::KindId, object: &Value) -> Option<String> {
    kinds::KINDS[kind].namespaced.then(|| {
        object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .unwrap_or("default")
            .to_string()
    })
}
