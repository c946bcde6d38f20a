//! A fake of the Google Compute Engine REST API (v1, and the same semantics under `beta` and
//! `alpha`), for the resources a global external HTTP(S) load balancer is made of, plus the
//! metadata-server endpoints Google's client libraries use for credentials. It speaks the real
//! wire protocol — paths, JSON shapes, operations, both error shapes, fingerprints, reference
//! checks — so that the same client code runs against it and against Google, and it has knobs
//! for latency, faults, quotas and rate limits, and call counters for assertions.
//!
//! # Library
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use fake_gce::{Config, FakeGce, FaultAction, FaultRule, Latency};
//!
//! let gce = FakeGce::start(Config::default()).await?; // binds 127.0.0.1:0
//! let base = gce.base_url(); // "http://127.0.0.1:PORT/compute/v1/"
//! gce.set_latency(Latency::uniform(Duration::from_millis(100)));
//! gce.add_fault(FaultRule::new("POST", "/global/urlMaps$", FaultAction::NeverFinish).times(1))?;
//! gce.set_quota("backendServices", Some(5));
//! gce.seed_instance("us-central1-a", "node-1")?; // instances that groups may hold
//! // ... drive a client against `base` ...
//! let stats = gce.stats();
//! assert_eq!(stats.kind("urlMaps").mutations, 1);
//! # Ok(()) }
//! ```
//!
//! [`FakeGce::endpoint`] is the root (`http://127.0.0.1:PORT`) for the admin API and the metadata
//! server; [`FakeGce::metadata_host`] is the value for `GCE_METADATA_HOST`. Every knob is also
//! reachable over HTTP (below). Dropping the handle stops the server.
//!
//! # Routes
//!
//! Under `/compute/{v1|beta|alpha}/projects/{project}/` (any project exists; answers to `beta`
//! and `alpha` carry `beta`/`alpha` self links, the store is shared):
//!
//! | collection | scopes | methods |
//! |---|---|---|
//! | `addresses` | global, regional | get, list, insert, delete, `setLabels` |
//! | `healthChecks` | global, regional | get, list, insert, delete, update (PUT), patch |
//! | `httpHealthChecks` (legacy) | global | get, list, insert, delete, update, patch |
//! | `backendServices` | global, regional | get, list, insert, delete, update, patch, `getHealth` |
//! | `urlMaps` | global, regional | get, list, insert, delete, update, patch, `validate` |
//! | `targetHttpProxies` | global, regional | get, list, insert, delete, patch, `setUrlMap` |
//! | `targetHttpsProxies` | global, regional | get, list, insert, delete, patch, `setUrlMap`, `setSslCertificates`, `setSslPolicy`, `setQuicOverride` |
//! | `sslCertificates` | global, regional | get, list, insert, delete (immutable) |
//! | `sslPolicies` | global, regional | get, list, insert, delete, patch, `listAvailableFeatures` |
//! | `forwardingRules` | global, regional | get, list, insert, delete, patch, `setTarget`, `setLabels` |
//! | `firewalls` | global | get, list, insert, delete, update, patch |
//! | `instanceGroups` | zonal | get, list, insert, delete, `addInstances`, `removeInstances`, `listInstances` (POST), `setNamedPorts` |
//! | `networkEndpointGroups` | zonal (regional: get, list, insert, delete, `listNetworkEndpoints`) | get, list, insert, delete, `attachNetworkEndpoints`, `detachNetworkEndpoints`, `listNetworkEndpoints` (POST) |
//! | `instances` | zonal | get, list (created by seeding only) |
//! | `networks` | global | get, list, insert, delete |
//! | `operations` | global, regional, zonal | get, list, `wait` (POST), delete |
//! | `zones` | — | `projects/p/zones`, `projects/p/zones/{zone}` |
//! | `aggregated` | — | `projects/p/aggregated/instanceGroups`, `…/aggregated/instances`, `…/aggregated/networkEndpointGroups` (GET) |
//!
//! As in the real API, `setUrlMap` and `setSslCertificates` of global proxies live at
//! `projects/p/targetHttp(s)Proxies/{name}/...` (no `global/`), while `setSslPolicy` and
//! `setQuicOverride` are under `global/`. A path or method the API does not have gets Google's
//! HTML 404, not JSON. Unknown query parameters (`alt`, `prettyPrint`, `$apiVersion`, ...) are
//! ignored; a numeric id works in place of a name in a path.
//!
//! # Wire fidelity
//!
//! `kind` values (`compute#urlMap`, `compute#urlMapList`, ...), ids as 19-digit decimal strings,
//! RFC 3339 timestamps with milliseconds, self links on `https://www.googleapis.com/compute/v1/`
//! whatever host was called, references accepted in every form Compute accepts and stored and
//! answered as full links (below), unknown JSON fields kept on round trip, output-only fields sent by a client ignored, server defaults
//! written on create so reads show them (health-check timing and ports, backend-service
//! defaults, forwarding rule `IPProtocol`/`networkTier`/`loadBalancingScheme`, `portRange` "80" →
//! "80-80", `IPAddress` always numeric, firewall direction/priority/source ranges, ...). Lists:
//! `{kind, id, items, nextPageToken, selfLink}` with `items` omitted when empty, `maxResults`
//! 0–500 (default 500), opaque `pageToken`, `orderBy` `name` (default) or
//! `creationTimestamp desc`, and `filter` in both dialects (`name eq REGEX`, `name ne REGEX`,
//! `(a eq x)(b eq y)`; `name = "x"`, `!=`, `:`, `:*`, `<`, `>`, `AND`, `OR`, `NOT`, wildcards).
//!
//! ## References, with their sources
//!
//! - **Forms.** Every reference field takes a full URL `https://www.googleapis.com/compute/v1/…`
//!   or `https://compute.googleapis.com/compute/v1/…` (any host, API version `v1`, `beta` or
//!   `alpha`), a partial path `projects/P/global/healthChecks/H`,
//!   `projects/P/zones/Z/instanceGroups/G`, and a path relative to the project of the request
//!   (`global/…`, `regions/R/…`, `zones/Z/…`). Sources: the discovery document's
//!   `Firewall.network` ("you can specify the network as a full or partial URL. For example,
//!   the following are all valid URLs: `https://www.googleapis.com/compute/v1/projects/myproject/global/networks/my-network`,
//!   `projects/myproject/global/networks/my-network`, `global/networks/default`", as quoted by
//!   the generated pulumi-google-native docs), the same document for `urlMap`, `service`,
//!   `target` and the other reference fields, and recorded traffic (Config Connector's
//!   `_http.log` golden files). Fields: backend services' `healthChecks[]` and
//!   `backends[].group` (instance group or NEG), `getHealth`'s `group`; URL maps'
//!   `defaultService`, path matchers' `defaultService`, path rules' `service`, route rules,
//!   `weightedBackendServices`, `tests[].service`; proxies' `urlMap`, `sslCertificates[]`,
//!   `sslPolicy` and the `setUrlMap` / `setSslCertificates` / `setSslPolicy` bodies; forwarding
//!   rules' `target` (and `setTarget`), `IPAddress` when it is a link, `network`, `subnetwork`;
//!   instance groups' `network`, `subnetwork` and `addInstances`/`removeInstances` instance
//!   links; firewall rules' `network`; NEGs' `network`, `subnetwork` and endpoints' `instance`.
//! - **`backends[].group` too.** Its documentation says "You must use the fully-qualified URL
//!   … Partial URLs are not supported", but Compute takes partial paths there: Terraform sends
//!   the field verbatim (`expandComputeBackendServiceBackendGroup` returns its input) and its
//!   acceptance tests, run against Compute, pass a NEG's `id`
//!   (`projects/P/zones/Z/networkEndpointGroups/N`) as the group
//!   (hashicorp/terraform-provider-google `resource_compute_backend_service_test.go`, and the
//!   tested Cloud Run sample of terraform-google-modules/terraform-docs-samples
//!   `run/multiple_regions/main.tf` with regional NEG ids); Terraform's diff suppression
//!   `CompareSelfLinkRelativePaths` on the field is there because Compute answers the full URL.
//!   The project-relative form (`zones/Z/instanceGroups/G`) in this field is accepted by
//!   analogy, not seen in recorded traffic.
//! - **Canonical answers.** Whatever form was sent, the stored object and every answer carry
//!   `https://www.googleapis.com/compute/v1/projects/P/…` (rewritten to `beta`/`alpha` when the
//!   request used those paths), and in-use and reference checks compare those keys. Source:
//!   every response of Config Connector's recordings, Terraform's diff suppression above.
//! - **Other projects.** `projects/H/…` keeps project `H` (a Shared VPC host project's network
//!   in a firewall rule or instance group of a service project); only the relative forms take
//!   the project of the request.
//! - **Bad references** are 400 `invalid` in Compute's wording: `Invalid value for field
//!   'resource.healthChecks[0]': 'x'. The URL is malformed.` for what is not a reference (a bare
//!   name, another API's URL, another API version, a collection Compute does not have, a
//!   collection in a scope it does not live in), and `… 'global/urlMaps/m'. Unexpected resource
//!   collection 'urlMaps'.` for a real collection the field does not take (a URL map where a
//!   backend service is expected, a subnetwork where a network is). Sources: "The URL is
//!   malformed." in hashicorp/terraform#22083; "Unexpected resource collection 'licenses'" for
//!   `resource.sourceImage` in users' notes. A reference to a missing resource is 404
//!   `notFound`, `The resource 'projects/P/global/healthChecks/H' was not found`.
//!
//! ## Networks, with their sources
//!
//! - **A project has the networks created in it.** [`Config::networks`] (default `["default"]`)
//!   lists the networks every project starts with, as a new Google Cloud project starts with
//!   its auto-mode `default` network (unless an organization policy skips it): every project
//!   has them without a request creating them (reads show them, always with the same id and
//!   creation time, and references find them), so a Shared VPC host project
//!   (`projects/host/global/networks/default`) needs no setup. They are stored, and shown in
//!   `/_fake/state`, for [`Config::project_id`] from the start and for another project once one
//!   of them is deleted there; reads never change the state. A path in the list (`projects/host/global/networks/shared`) is one network of one
//!   project; `networks.insert` creates more in any project; `[]` means no project has a
//!   network until one is inserted. `default` is auto mode (`autoCreateSubnetworks: true`,
//!   `subnetworks` one per region of the known zones, named like the network), `routingConfig.
//!   routingMode` `REGIONAL`, `mtu` 1460, `networkFirewallPolicyEnforcementOrder`
//!   `AFTER_CLASSIC_FIREWALL`; inserted networks get the same defaults. Subnetworks are not a
//!   collection: their links are checked for shape only.
//! - **Unknown networks are refused** where a resource names one: firewall rules (no `network`
//!   means `global/networks/default`, discovery document `Firewall.network`), NEGs (same
//!   default, `NetworkEndpointGroup.network`), instance groups and forwarding rules (when they
//!   name one), seeded instances (admin error): 404 `notFound`, `The resource
//!   'projects/P/global/networks/N' was not found`.
//! - **Instances of a group share its network.** A group may name its `network` (and
//!   `subnetwork`) at insert; without one it takes those of the first instance added (Terraform's
//!   `google_compute_instance_group.network`: "If this is different from the network where the
//!   instances are in, the creation fails. Defaults to the network where the instances are in";
//!   hashicorp/terraform#13493). `addInstances` of an instance whose `nic0` is on another
//!   subnetwork is 400 `wrongSubnetwork`, `Resource 'projects/P/zones/Z/instances/I' is
//!   expected to be in the subnetwork 'projects/P/regions/R/subnetworks/A' but is in the
//!   subnetwork 'projects/P/regions/R/subnetworks/B'.` (kubernetes/ingress-gce#282); on another
//!   network, 400 `wrongNetwork` with the same sentence for the network (reason and words by
//!   analogy: Google's are not public). Seeded instances are on `default` of their project
//!   unless [`InstanceSeed::network`] says otherwise, on the auto-mode subnetwork of their
//!   region. Removing the last instance leaves the group's network as it is.
//! - **A network in use cannot be deleted**: the delete is accepted and its operation fails
//!   `RESOURCE_IN_USE_BY_ANOTHER_RESOURCE`, `The network resource 'projects/P/global/networks/N'
//!   is already being used by 'projects/P/global/firewalls/F'` (users: firewall rules, instance
//!   groups, NEGs, forwarding rules, instances). Source: Terraform's "Error waiting for Deleting
//!   Network: The network resource '…' is already being used by '…/firewalls/…'" and
//!   "'…/networkEndpointGroups/…'" in many users' reports (the "waiting" is the operation).
//!
//! ## Aggregated lists and operations
//!
//! `GET projects/P/aggregated/instanceGroups`, `…/aggregated/instances` and
//! `…/aggregated/networkEndpointGroups` answer `{kind: compute#instanceGroupAggregatedList |
//! compute#instanceAggregatedList | compute#networkEndpointGroupAggregatedList, id:
//! "projects/P/aggregated/…", items: {SCOPE: {instanceGroups | instances |
//! networkEndpointGroups: […]}}, nextPageToken, selfLink}` with a key per zone (`zones/Z`) and,
//! for instance groups and NEGs, per region (`regions/R`, where regional managed groups and
//! regional NEGs live); a scope with nothing on the page has `{warning: {code:
//! "NO_RESULTS_ON_PAGE", message: "There are no results for scope 'zones/Z' on this page.", data:
//! [{key: "scope", value: "zones/Z"}]}}` (the shape of responses recorded in
//! forseti-security's `tests/common/gcp_api/test_data/fake_compute_responses.py`; the NEG list's
//! kind and `NetworkEndpointGroupsScopedList` items from the API reference's
//! `networkEndpointGroups.aggregatedList`). `filter`, `maxResults` (counting resources across
//! scopes), `pageToken` and `orderBy` work as in a list; `returnPartialSuccess` is accepted
//! (nothing is ever unreachable). Counted as lists of `instanceGroups` / `instances` /
//! `networkEndpointGroups`. Operations live in the scope of their target (global, `regions/R`,
//! `zones/Z`), each with get, list, delete and `wait`. `getHealth` answers from the health the
//! admin API sets per instance or NEG endpoint (HEALTHY by default), or with the data plane on
//! from its probes (see "Data plane"); `listNetworkEndpoints` with `healthStatus: SHOW` reports
//! the same states (see "Network endpoint groups").
//!
//! # Operations
//!
//! Every mutation is checked when requested — a failed check is a synchronous error and nothing
//! happens (except the checks Compute makes inside the operation: resource quotas, one
//! load-balanced group per instance, a network in use) — and answers with a RUNNING operation (global, regional or zonal, like its target).
//! Its change is applied when the operation becomes DONE, after the configured latency; with
//! latency 0 (the default) the operation completes before the response is sent, although the
//! response still shows it RUNNING. Operations run in parallel, each on its own timer. At
//! completion the mutation is checked again against the state of that moment; if it no longer
//! holds (its reference was deleted meanwhile, its fingerprint went stale, ...) the operation
//! ends DONE with `error.errors[{code, message}]`, `httpErrorStatusCode` and `httpErrorMessage`
//! (e.g. `RESOURCE_IN_USE_BY_ANOTHER_RESOURCE`, 400, `BAD REQUEST`) and nothing is applied.
//! While an insert runs its name is reserved (a second insert gets 409), references to it and
//! mutations of it get 400 `resourceNotReady`, and reads get 404. `operations/wait` blocks until
//! DONE or [`Config::operation_wait_cap`] (default 120 s), then answers the operation as it is.
//! A `requestId` query parameter makes a mutation idempotent: a repeat returns the first
//! operation (`clientOperationId`) and does nothing. Operation types follow the real spelling
//! (`insert`, `SetTarget`, `compute.instanceGroups.addInstances`, ...). Finished operations are
//! kept up to [`Config::operation_retention`].
//!
//! # Semantics and errors
//!
//! Synchronous errors have the real shape
//! `{"error":{"code","message","errors":[{"message","domain":"global","reason"}]}}`:
//! - 400 `invalid`: malformed names (the real regex in the message), wrong field types or values
//!   (including a health check's `timeoutSec > checkIntervalSec`, a forwarding rule without a
//!   target, unparsable PEM, a key that does not match its certificate, a certificate chain of
//!   more than 5, more than [`Config::max_ssl_certificates_per_proxy`] (15) certificates or none,
//!   a URL map whose host rule names a missing path matcher, duplicate hosts or paths, a failing
//!   `tests[]` entry, `setTarget` to another proxy type, overlapping port ranges on one IP,
//!   changing immutable fields, backends without a health check, an unknown zone);
//!   400 `required` for a missing name; 400 `parseError` for a body that is not a JSON object.
//! - 404 `notFound` (`The resource 'projects/p/global/urlMaps/x' was not found`) for a missing
//!   resource, also when an insert or update references one.
//! - 409 `alreadyExists` for a taken name (including names reserved by a running insert).
//! - 400 `resourceInUseByAnotherResource` (`The urlMap resource '...' is already being used by
//!   '...'`) when deleting anything still referenced: address by forwarding rule, proxy by
//!   forwarding rule, URL map and certificate and SSL policy by proxy, backend service by URL map,
//!   health check and instance group and NEG by backend service; a network fails in its
//!   operation instead (below).
//! - 400 `resourceNotReady`, 400 `memberAlreadyExists` / `memberNotFound` (instance groups).
//! - 400 `invalid` for a NEG endpoint Compute would not take and for a backend service mixing
//!   backend kinds (see "Network endpoint groups").
//! - 412 `conditionNotMet` (`Invalid fingerprint.`) for a missing or stale fingerprint on
//!   backend-service and URL-map update/patch, proxy and SSL-policy patch, and label fingerprint
//!   on `setLabels`; a fingerprint sent to forwarding-rule patch or `setNamedPorts` must match.
//!   Fingerprints change on every write (an instance group's only when its named ports change).
//! - 413 `fieldSizeTooLarge` for URL maps over [`UrlMapLimits`].
//! - 400 `invalid` for a load-balancing scheme that differs along the chain (below).
//! - 403/429 `rateLimitExceeded`, 401 `required`/`authError`, and injected errors.
//!
//! Resource quotas (`QUOTA_EXCEEDED`) and an instance in two load-balanced groups
//! (`INSTANCE_IN_MULTIPLE_LOAD_BALANCED_IGS`) fail the operation instead, as on Compute (below).
//!
//! Addresses track their users (`status` RESERVED/IN_USE, `users[]`); forwarding rules without
//! `IPAddress` get an ephemeral IP; `setTarget` keeps the IP. Instance groups and NEGs hold only
//! instances that exist in their zone; deleting an instance removes it from them. `getHealth`
//! answers per instance (group) or endpoint (NEG), HEALTHY unless set otherwise
//! ([`FakeGce::set_instance_health`], [`FakeGce::set_endpoint_health`]; with the data plane on:
//! as probed, UNHEALTHY until probes pass); the port is the
//! group's named port matching the service's `portName`, else the service's `port`. Managed
//! certificates are ACTIVE at once.
//!
//! ## Network endpoint groups, with their sources
//!
//! Zonal NEGs of type `GCE_VM_IP_PORT` (the default), as GKE's container-native load balancing
//! uses them (pod IP, port, node), are modelled through; `GCE_VM_IP` and
//! `NON_GCP_PRIVATE_IP_PORT` endpoints are checked and stored. Sources: the Compute API
//! reference (`NetworkEndpoint`, `NetworkEndpointGroup`, `NetworkEndpointWithHealthStatus`,
//! `HealthStatusForNetworkEndpoint`), "Zonal network endpoint groups overview"
//! (<https://cloud.google.com/load-balancing/docs/negs/zonal-neg-concepts>) and its earlier
//! "Network endpoint groups overview", "Backend services overview"
//! (<https://cloud.google.com/load-balancing/docs/backend-service>), and recorded traffic.
//!
//! - **The endpoint's IP is its instance's.** `instance` (a name or a URL) is required for
//!   `GCE_VM_IP_PORT` and `GCE_VM_IP` endpoints ("This field is required for network endpoints
//!   of type GCE_VM_IP and GCE_VM_IP_PORT"), must exist (404) in the NEG's zone. `ipAddress`
//!   defaults to its primary IP; a given one must be that IP or within an alias IP range of its
//!   interface ("either the primary IP or as part of an aliased IP range"; seeded instances
//!   declare ranges with [`InstanceSeed::alias_ip_ranges`], reads show them as
//!   `networkInterfaces[0].aliasIpRanges[].ipCidrRange`), and the interface must be on the
//!   NEG's network (and subnetwork, when both name one). Otherwise 400 `invalid` in Compute's
//!   words, as a GKE cluster without alias IPs recorded them (kubernetes/ingress-gce#1463):
//!   `Invalid value for field 'resource.ipAddress': '10.0.0.13'. Specified IP address 10.0.0.13
//!   doesn't belong to the (sub)network default or to the instance gke-….` A `GCE_VM_IP`
//!   endpoint is the primary IP, without a port. Hybrid (`NON_GCP_PRIVATE_IP_PORT`) endpoints
//!   are an address and a port without an instance (magic-modules#5684); refusing an instance
//!   there is an inference.
//! - **Ports.** An endpoint's `port` defaults to the NEG's `defaultPort`; with neither, 400
//!   (gcloud: without a default port "every network endpoint … must have a port specified").
//!   `defaultPort` is refused for NEGs of type `GCE_VM_IP`, `SERVERLESS` and
//!   `PRIVATE_SERVICE_CONNECT` ("this field must not be specified").
//! - **One endpoint per IP in a NEG** ("A single IP address cannot be referenced by more than
//!   one endpoint in a NEG. However, a single IP address can be referenced by endpoints in
//!   different NEGs", zonal NEG overview): another port at an attached endpoint's IP is 400.
//! - **Limits.** At most 500 endpoints per attach or detach call (Terraform's
//!   `google_compute_network_endpoints`: "API only accepts 500 endpoints at a time"; ingress-gce's
//!   `MAX_NETWORK_ENDPOINTS_PER_BATCH = 500`), at most 10,000 endpoints per NEG ("You can have up
//!   to 10,000 endpoints in a NEG"): 400 `invalid` beyond, the fake's words (Google's are not
//!   public), as are those of the other refusals above unless quoted.
//! - **Attaching an attached endpoint, detaching an absent one** changes nothing and is not an
//!   error. Google does not say; Google's mock of Compute in Config Connector
//!   (`mockgcp/mockcompute/networkendpointgroupsv1.go`) treats both as no-ops, ingress-gce's
//!   (`pkg/neg/types/fakes.go`) only the attach (404 for an unknown detach), and both clients
//!   only ever send the difference from `listNetworkEndpoints`: do not rely on either answer.
//! - **Health in `listNetworkEndpoints`.** With `healthStatus: SHOW` each item carries
//!   `healths`: one `{backendService: {backendService}, healthCheck: {healthCheck},
//!   healthState}` per backend service using the NEG, in the state `getHealth` reports for that
//!   endpoint (HEALTHY; with the data plane on, as probed, UNHEALTHY until the check's
//!   `healthyThreshold` is met; UNHEALTHY when forced by the admin API); no `healths` with
//!   `SKIP` (the default) or while no backend service uses the NEG. ingress-gce's readiness
//!   poller reads `healths[].backendService.backendService` and `healthState` (`HEALTHY`), and
//!   `networkEndpoint.instance` as the node's name (items carry the instance's name).
//! - **A backend service's backends are of one kind**: instance groups, or zonal
//!   (`GCE_VM_IP_PORT`) and hybrid (`NON_GCP_PRIVATE_IP_PORT`) NEGs, or NEGs of one other type
//!   ("Backend services overview", table of supported backend combinations: "all instance
//!   group backends", "all zonal NEGs", "a combination of zonal and hybrid NEGs", …; its earlier
//!   wording: "you cannot associate instance groups and network endpoint groups with the same
//!   backend service"). Insert, update or patch mixing them is 400 `invalid` on the first
//!   backend that differs (`Invalid value for field 'resource.backends[1].group': '…'. A backend
//!   service cannot mix backends of different types: …`, the fake's words; Google's are not
//!   public).
//! - **A NEG in use cannot be deleted**: 400 `resourceInUseByAnotherResource` naming the
//!   backend service (see "Semantics and errors").
//!
//! ## Rules across resources, limits and quotas, with their sources
//!
//! Compute does not document, rule by rule, which checks it makes at the request and which
//! inside the operation; the fake follows what Compute's users see today, and says where
//! Google's exact words are not public (then the fake keeps Compute's shape and takes the
//! strict reading).
//!
//! - **An instance in at most one load-balanced instance group.** A group is load-balanced when
//!   some backend service (global or regional) has it in `backends[]`; several backend services
//!   may share one group. A backend-service insert, update or patch that would put an instance
//!   in two load-balanced groups (two of its own groups, or one of them and a group another
//!   backend service uses), and an `addInstances` to a load-balanced group of an instance that
//!   is in another load-balanced group, are accepted and their operation fails (nothing
//!   changes): code `INSTANCE_IN_MULTIPLE_LOAD_BALANCED_IGS`, `httpErrorStatusCode` 400,
//!   message `Validation failed for instance 'projects/P/zones/Z/instances/I': instance may
//!   belong to at most one load-balanced instance group` (it names the instance, never the
//!   other group). Sources: Google's backend-service restrictions ("Don't put a VM in more than
//!   one load-balanced instance group", quoted in kubernetes-sigs/cluster-api-provider-gcp#1195)
//!   and "Creating groups of unmanaged instances", #addinstances (cited for "an instance can
//!   only belong to one load balanced instance group" in kubernetes/cloud-provider-gcp#313); the
//!   operation form: terraform-google-modules/terraform-google-lb-http#322 (2023, "Error
//!   waiting for Creating BackendService: Validation failed for instance '…': instance may
//!   belong to at most one load-balanced instance group") and kubernetes/ingress-gce#2215 (the
//!   code). Older reports show the same words synchronously, 400 reason
//!   `instanceInMultipleLoadBalancedIgs`, with a final period
//!   (GoogleCloudPlatform/continuous-deployment-on-kubernetes#49, 2016; kubernetes/kubernetes#58500,
//!   2018): a client should accept both. Google's words for the `addInstances` case are not
//!   public: the fake gives the same code and message.
//! - **One load-balancing scheme along the chain** (`EXTERNAL`, `EXTERNAL_MANAGED`; other
//!   schemes are compared the same way). A URL map reaches backend services of one scheme
//!   (through `defaultService`, path matchers' `defaultService`, path rules' `service`, route
//!   rules, `weightedBackendServices`, `tests[]`); a redirect-only map reaches none and goes with
//!   any scheme. A forwarding rule's `loadBalancingScheme` (default `EXTERNAL`) must be the
//!   scheme its proxy's map reaches. Refused synchronously, 400 `invalid`: a forwarding-rule
//!   insert or `setTarget` that breaks it, in Compute's words `Invalid value for field
//!   'resource.backendService': ''. Load balancing scheme EXTERNAL_MANAGED does not match the
//!   backend service load balancing scheme EXTERNAL.` (a global forwarding-rule insert,
//!   GoogleCloudPlatform/cloud-foundation-fabric#1065); a URL map (insert, update, patch) that
//!   mixes schemes (`Invalid value for field 'resource': 'projects/P/global/urlMaps/M'. A URL
//!   map cannot reference backend services of different load balancing schemes: …`) or that
//!   would give a forwarding rule using it the other scheme, and a proxy insert, patch or
//!   `setUrlMap` to such a map (`Invalid value for field 'resource'` / `'resource.urlMap'` /
//!   `'urlMap'`: `'…'. Load balancing scheme EXTERNAL of forwarding rule
//!   'projects/P/global/forwardingRules/F' does not match the backend service load balancing
//!   scheme EXTERNAL_MANAGED.`). Sources of the rule: the discovery document's
//!   `BackendService.loadBalancingScheme` ("A backend service created for one type of load
//!   balancer cannot be used with another") and `UrlMapsValidateRequest.loadBalancingSchemes`
//!   (the scheme "will be inferred from the backend service resources this URL map references"
//!   and "must not conflict" with them; a map for "rewrites and redirects only" has none).
//!   Google's words for the URL-map and proxy cases are not public: they keep the sentence
//!   "does not match the backend service load balancing scheme". A backend service's scheme
//!   never changes (400 `invalid`); Compute's staged migration between the two schemes
//!   (`externalManagedMigrationState`) is not modelled.
//! - **URL-map limits** ([`UrlMapLimits`]; the values of "Quotas and limits | Cloud Load
//!   Balancing", <https://docs.cloud.google.com/load-balancing/docs/quotas>, "URL maps" table,
//!   as in `cloud/src/gce/limits.rs`): host rules 1,000, path matchers 1,000, path rules per
//!   path matcher 1,000, path patterns across the path rules of one path matcher ("predicates")
//!   1,000, distinct backend services referenced 2,500, tests 100, size 64 KB. Over one: 413
//!   `fieldSizeTooLarge`, `Value for field 'resource.hostRules' is too large: maximum size 1000
//!   element(s); actual size 1001.`, Compute's shape (kubernetes/kubernetes#46098, when the
//!   limit was 50). The fields for patterns (`resource.pathMatchers[i].pathRules[].paths`),
//!   services (`resource`, `backend service(s)`) and size (`resource`, `byte(s)`) are the fake's:
//!   Google's are not public. Size: the compact JSON of the map as stored (server fields and
//!   written defaults included) without `selfLink` and `fingerprint`, the same on insert,
//!   update and patch; `cloud::gce::limits::stored_size` counts that object with both added at
//!   their longest, so the provider never lets through a map the fake refuses. How Google counts
//!   the bytes is not documented.
//! - **Certificates per target HTTPS proxy**: 15 ([`Config::max_ssl_certificates_per_proxy`];
//!   quotas page, "Target proxies" table, "Compute Engine SSL certificates per target proxy"),
//!   on insert, patch and `setSslCertificates`; over it 400 `invalid` (`A target HTTPS proxy can
//!   have at most 15 SSL certificates.`, the fake's words: Google's are not public).
//! - **Resource quotas** ([`FakeGce::set_quota`], keyed by discovery collection name:
//!   `backendServices`, `globalForwardingRules`, `globalAddresses`, `instanceGroups`, …),
//!   counted per project and, for regional and zonal collections, per region (a zone counts in
//!   its region); the limit applies to each project. An insert over it is accepted and its
//!   operation fails: code `QUOTA_EXCEEDED`, `httpErrorStatusCode` 403 (`FORBIDDEN`), message
//!   `Quota 'BACKEND_SERVICES' exceeded.  Limit: 5.0 globally.` (two spaces; `in region
//!   us-central1` for regional and zonal collections, e.g. `INSTANCE_GROUPS`), and
//!   `errorDetails[{quotaInfo: {metricName: "compute.googleapis.com/backend_services",
//!   limitName: "BACKEND-SERVICES-per-project", limit, dimensions: {region}}}]` (regional:
//!   `…-per-project-region`). Metric: the collection in UPPER_SNAKE (`URL_MAPS`,
//!   `TARGET_HTTPS_PROXIES`, `FORWARDING_RULES`, `NETWORK_ENDPOINT_GROUPS`, …), addresses
//!   `STATIC_ADDRESSES`. Sources: failed operations in users' reports —
//!   `QUOTA_EXCEEDED - Quota 'IN_USE_ADDRESSES' exceeded.  Limit: 4.0 globally.` on a
//!   forwarding-rule insert (k8s-cloud-provider's rendering of a failed operation), Terraform's
//!   "Error waiting for Creating Disk: Quota 'SSD_TOTAL_GB' exceeded.  Limit: 500.0 in region
//!   asia-southeast1." with `metric name = compute.googleapis.com/ssd_total_storage`, `limit
//!   name = SSD-TOTAL-GB-per-project-region`, `dimensions = map[region:…]`, and `Quota
//!   'BACKEND_SERVICES' exceeded.  Limit: 3.0` without a reason (kubernetes/kubernetes#17464,
//!   as the GCE cloud provider of 2015 rendered an operation error); metric names from the
//!   discovery document's `Quota.metric` and a `projects.get` quota list. The `quotaInfo` names
//!   are derived from that pattern, not seen for each metric.
//!
//! # Knobs
//!
//! - Latency ([`Latency`]): `default_ms` plus `per_operation` keyed `<collection>.<method>` with
//!   the discovery collection names used by the counters (`urlMaps.insert`,
//!   `targetHttpsProxies.setSslCertificates`, `globalForwardingRules.*`, `*.delete`).
//! - Faults ([`FaultRule`]): method + path regex, `after`/`times`/`probability` (seeded), action
//!   `error` (synchronous), `failOperation` (accepted, DONE with the error, not applied), `delay`
//!   (the answer is held), `neverFinish` (RUNNING forever, not applied, name stays reserved).
//!   JSON: `{"method":"POST","path":"/global/urlMaps$","times":1,"action":{"type":"error","status":503}}`.
//! - Quotas per collection (discovery names), per project and per region: checked when the
//!   insert's operation completes, against the resources stored then (see above).
//! - A token-bucket [`RateLimit`] over all or some request categories (403 by default, or 429).
//! - Instances: [`FakeGce::seed_instance`], [`FakeGce::seed_instance_with`] (IP, network,
//!   subnetwork, alias IP ranges for NEG endpoints), [`Config::instances`]; health with
//!   [`FakeGce::set_instance_health`], and per NEG endpoint with
//!   [`FakeGce::set_endpoint_health`] (another endpoint of the same instance is unaffected).
//! - [`Config::require_token`]: every Compute request needs `Authorization: Bearer <token>`.
//! - [`Config::journal_capacity`] (200 000): entries the [`Journal`] keeps.
//!
//! # Counters
//!
//! [`Stats`] (`GET /_fake/stats`) counts every request under `/compute/` that reaches an API
//! method once, in one [`Category`] — reads (get, `getHealth`, `validate`,
//! `listAvailableFeatures`, zone get), lists (list, `listInstances`, `listNetworkEndpoints`, zone
//! list, operation list), mutations (everything that returns an operation, whether it then
//! succeeds or fails, `requestId` replays included; and operation delete), operation polls
//! (operation get and wait) — per collection (`byKind`, discovery names: `urlMaps`,
//! `globalForwardingRules`, `globalAddresses`, `regionBackendServices`, `instanceGroups`,
//! `globalOperations`, `zoneOperations`, `zones`, ...) and in `total`. Requests refused before
//! reaching a method are counted only under `rejected` (`unauthenticated`, `rateLimited`,
//! `injected` synchronous faults, `unknownRoute`). `operations` counts operations created,
//! succeeded and failed; `metadata` counts metadata-server requests. Admin requests are not
//! counted.
//!
//! The [`Journal`] ([`FakeGce::journal`], `GET /_fake/journal`) is the ordered record behind
//! them: one list of [`JournalEntry`], each with a `seq` (from 1, never reused, not even after
//! a clear), `at` (the system clock; RFC 3339 UTC with microseconds in JSON) and
//! `elapsedMicros` (monotonic, since the server started). Entries are appended under the state
//! lock, so `seq` order is the order of arrival and of application. Two types:
//! - `request` ([`RequestEntry`]): every request under `/compute/`, rejected or not, recorded
//!   on arrival (once admitted or rejected, before its method runs): `method`, `path` (no
//!   query), `requestId`, `userAgent`, `category` (of the route, also when rejected; null for
//!   an unknown route), `rejected` (the reason, as in `rejected` above), and, filled in when
//!   answered, `status` and `answeredElapsedMicros` (null while held by a `delay` fault or an
//!   `operations/wait`, or if the client went away).
//! - `applied` ([`AppliedEntry`]): every operation completion: `operation` (name),
//!   `operationType`, `targetLink`, `status` `done`/`failed`, `errorCode` when failed, and
//!   `change` to the target: `created`, `updated` (also member and endpoint changes),
//!   `deleted`, or `none` (failed). Synchronous errors, `requestId` replays and operations that
//!   never finish have none; admin changes (seeding instances) are not journaled.
//!
//! At most [`Config::journal_capacity`] entries are kept; the oldest go first and are counted
//! in `dropped`.
//!
//! # Data plane
//!
//! Off by default: external addresses are `34.120.x.y` and nothing listens or connects. With
//! [`Config::data_plane`] (`Some(DataPlane::default())`; binary: `--data-plane`) the load
//! balancers clients configure serve traffic, on loopback only. The data plane reads the same
//! store the API writes: a listener looks its forwarding rule, proxy, URL map, backend service,
//! groups and instances up at each request (certificates at each TLS handshake), so edits apply
//! to the next request (the next connection, for certificates), and what a client configured is
//! exactly what serves.
//!
//! - **Addresses.** The fake uses a [`LoopbackBlock`], a `/24` of `127.0.0.0/8` (never
//!   `127.0.0.0/24`), claimed at start ([`DataPlane::block`] / `--data-plane-block 127.A.B.0`
//!   to choose one; a chosen block someone already claimed is used on the word of whoever
//!   chose it — the caller holding the claim, presumably — and logged at info). External IPv4 addresses — ephemeral forwarding-rule IPs and reserved
//!   addresses without an `address` — are its free `.1`–`.253`
//!   ([`FakeGce::data_plane_block`]). Blocks are claimed exclusively between processes by a
//!   listener on the block's `.254`, port [`LoopbackBlock::CLAIM_PORT`], so many fakes and test
//!   processes can each bind ports 80 and 443 on their own addresses; tests and the sandbox
//!   claim other blocks for instance IPs ([`LoopbackBlock::claim`], [`LoopbackBlock::ip`]) and
//!   seed instances there ([`InstanceSeed::ip`]). Linux routes all of `127.0.0.0/8` to the
//!   loopback interface; elsewhere claiming fails and the fake does not start.
//! - **Listeners.** A global forwarding rule whose target is a target HTTP or HTTPS proxy
//!   listens on its `IPAddress`, on each port of its `portRange` (the first 100 at most). The
//!   socket is bound in the critical section that applies the operation (insert, `setTarget`,
//!   delete, reset), so an operation seen DONE has its listener open (or closed: connections
//!   are refused at once, open connections are dropped). A port below 1024 that the process may
//!   not bind (not root) is served on `port + `[`DataPlane::privileged_port_offset`] (default
//!   10000: 80 → 10080, 443 → 10443; `--data-plane-port-offset N`).
//!   [`FakeGce::serving_address`] tells where `IP:port` is actually served. Dropping the fake
//!   (or [`FakeGce::shutdown`]) closes every listener for good and stops the probes: an
//!   operation still pending then applies when its latency passes, but opens nothing. Only
//!   addresses of the fake's own block are bound: a forwarding-rule address outside it — a
//!   public one, `127.0.0.1`, another process's block, given as `IPAddress` or as a reserved
//!   address's `address` — is refused (the block's claim would mean nothing otherwise):
//!   nothing binds it, `GET /_fake/dataplane` says why. A listener whose address and port
//!   someone else holds is tried again at each forwarding-rule change (logged once); other
//!   failures stay until the rule changes. Regional forwarding rules are not served.
//! - **Routing.** The URL map decides, per request, in `dataplane/route.rs` (host rules by the
//!   `Host` header, exact before wildcard; path rules longest first; path-matcher and map
//!   defaults; `defaultUrlRedirect` / `urlRedirect`; minimal `routeRules`; the rules and their
//!   sources are written there). A redirect answers its status with `Location` — ports pass
//!   through the privileged-port mapping, so `curl -L` lands on this fake when not root — and
//!   the small page Google's front ends send with redirects (`<TITLE>301 Moved</TITLE>` … "The
//!   document has moved"; that URL-map redirects carry this very page is assumed). Nothing
//!   answering is Google's front-end 404 page.
//! - **TLS.** A target HTTPS proxy terminates TLS (rustls; TLS 1.2 and 1.3; ALPN `h2` and
//!   `http/1.1`) with the certificate chosen by SNI among its `sslCertificates`: the first whose
//!   SAN DNS names (else subject CN) contain the name, else the first with a wildcard name
//!   covering it (one label), else — no SNI, or no match — the first of the list, Google's
//!   "primary" certificate ("SSL certificates overview",
//!   <https://cloud.google.com/load-balancing/docs/ssl-certificates>, multiple certificates per
//!   proxy). Read at each handshake (no session resumption), so `setSslCertificates` applies
//!   to new connections. Self-managed certificates' private keys are kept apart from the
//!   resource, never in a read, `/_fake/state`, the journal or a log, and go with the
//!   certificate; managed certificates have no key here and cannot serve (skipped).
//! - **Backends.** A backend service's members are the instances of its `backends[].group`
//!   instance groups, or the endpoints of its NEGs; traffic goes to the instance's IP on the
//!   group's named port called the service's `portName` (default `http`), else the service's
//!   `port`, or to the endpoint's IP and port. An endpoint gets no new request from the moment
//!   the operation detaching it is DONE (requests under way finish; see "Not modelled"). Only HEALTHY members get traffic (and none of a backend whose `capacityScaler` is
//!   0), round robin over all of them: balancing modes, capacities, rates, session affinity and
//!   locality are not modelled. No healthy member: **502** with Google's page ("Error: Server
//!   Error / The server encountered a temporary error and could not complete your request.
//!   Please try again in 30 seconds.", as recorded in the troubleshooting section of the GCE
//!   ingress controller's README, kubernetes/ingress `controllers/gce/README.md`, and in
//!   terraform-google-modules/terraform-google-lb-http#189,
//!   GoogleCloudPlatform/deploymentmanager-samples#399 with `statusDetails:
//!   failed_to_pick_backend`), and no connection is attempted; a backend that fails to connect
//!   or answer gives the same 502. `protocol` `HTTP` (HTTP/1.1), `HTTPS` (TLS, the backend's
//!   certificate not verified and no SNI sent, as Google documents for encryption to backends,
//!   <https://cloud.google.com/load-balancing/docs/ssl-certificates/encryption-to-the-backends>)
//!   or `HTTP2` (HTTP/2 over TLS, ALPN `h2`); any other protocol is a 502. `timeoutSec`
//!   (default 30) bounds the whole response (the API reference's `BackendService.timeoutSec`:
//!   how long the load balancer waits for a backend to return a full response): no headers in
//!   time is a 502, a body still streaming then is cut. Bodies stream both ways; one backend
//!   connection per request. An HTTP/1 client connection waiting 610 s for a request, or for
//!   the rest of one's headers, is closed (Google's client HTTP keepalive timeout, "External
//!   Application Load Balancer overview", timeouts; the default of `httpKeepAliveTimeoutSec`);
//!   so is one sending nothing that long; HTTP/2 client connections have no idle timeout.
//! - **Headers**, as Google's load balancers add them ("Target proxies",
//!   <https://cloud.google.com/load-balancing/docs/target-proxies>, and "External Application
//!   Load Balancer overview", <https://cloud.google.com/load-balancing/docs/https>, section
//!   "X-Forwarded-For header": `X-Forwarded-For: <client-ip>,<load-balancer-ip>`, or
//!   `<supplied-value>,<client-ip>,<load-balancer-ip>` when the request carries the header):
//!   `X-Forwarded-For` gets `,<client IP>,<forwarding rule IP>` appended to what the client
//!   sent (several header lines of it joined with `, ` first), or is that pair alone;
//!   `X-Forwarded-Proto: http|https`; `Via: 1.1 google` on the request and the response;
//!   `X-Cloud-Trace-Context: TRACE/SPAN;o=0` (32 hex digits / decimal; the shape of the Cloud
//!   Run and Cloud Functions "request headers" references, e.g.
//!   `65011637f09e0a5179677a7429456db7/1027871334010811884;o=1`) unless the client sent one.
//!   `Host` and the path (with the query) are passed as sent; hop-by-hop headers are not. A
//!   request naming no host (HTTP/1.0 needs no `Host`), or no valid one (`Host: a b`), is
//!   routed and redirected as one for the forwarding rule's IP (a redirect keeping the host
//!   reads `http://<IP>/…`, not `http:///…`), and a backend gets that IP as `Host` (what reaches
//!   it is HTTP/1.1, which must carry one). Google documents neither; this is our choice, the
//!   address being what the client reached.
//! - **Health checks probe.** Every backend service with backends has each member probed with
//!   its health check (`healthChecks[0]`, global or regional, or a legacy `httpHealthChecks`):
//!   types `HTTP`, `HTTPS`, `HTTP2` (a `GET` of `requestPath`, default `/`, with `Host:` the
//!   `host` field or else the member's IP — the discovery document's `host`: "If left empty …
//!   the host header is set to the destination IP address" — and `User-Agent: GoogleHC/1.0`,
//!   the agent users see from Google's probers, e.g. oauth2-proxy's GCP health-check option;
//!   success is status 200 within `timeoutSec`, and when `response` is set that string within
//!   the first 1,024 bytes of the body — the discovery document's `HTTP2HealthCheck.response`
//!   (and its HTTP/HTTPS twins): "In addition to the required HTTP 200 (OK) status code", and
//!   "Health checks overview", <https://cloud.google.com/load-balancing/docs/health-check-concepts>,
//!   success criteria),
//!   `TCP` (a connection opens; `request`/`response` not modelled), `SSL` (a TLS handshake
//!   completes); `GRPC` is not modelled and always fails. The port follows
//!   `portSpecification`: `USE_FIXED_PORT` `port`, `USE_NAMED_PORT` the group's named port
//!   `portName` (missing: the probe fails), `USE_SERVING_PORT` the port traffic goes to; none
//!   given: `port`, else `portName` (the discovery document: "If not specified, HTTP health
//!   check follows behavior specified in port and portName fields"; the API writes the
//!   default port 80/443 when neither is given). A new target is probed at once, then every
//!   `checkIntervalSec` ([`DataPlane::probe_interval`] / `--probe-interval-ms` overrides every
//!   interval, for tests and the sandbox, and nothing else). Each probe has the health check's
//!   `timeoutSec`, whatever the interval (the API reference's `HealthCheck.timeoutSec`: "How
//!   long (in seconds) to wait before claiming failure"). Compute refuses a `timeoutSec` above
//!   `checkIntervalSec`, so its probes of one target never overlap; under a shorter override
//!   they still do not: the next probe starts at the later of the previous start plus the
//!   interval and the previous end. `healthyThreshold`
//!   consecutive successes make a member HEALTHY, `unhealthyThreshold` consecutive failures
//!   UNHEALTHY ("a configurable number of sequential successful or failed probes", health
//!   checks overview). A new member is UNHEALTHY until it passes: Google does not document the
//!   initial state; users see backends reported UNHEALTHY right after a load balancer is
//!   created, until health checks pass (kubernetes/ingress-gce#35, the `backends` annotation
//!   `UNHEALTHY` after creation; GoogleCloudPlatform/continuous-deployment-on-kubernetes#31,
//!   "health checking can take up to 5-7 minutes"). So is a member whose probe changes — its
//!   health check, the check's type, port, `requestPath`, `host` or `response` — as a new
//!   target (earlier probes of something else say nothing of it); new `checkIntervalSec`,
//!   `timeoutSec` or thresholds keep its state and counts. Health is kept per (backend service,
//!   instance, IP, serving port), so the endpoints of one instance in a NEG (pods on one
//!   node, all on one port) each have their own; a supervisor reconciles the probes with the
//!   store whenever an operation applies or instances are seeded (and every 5 s), stopping
//!   those of removed members. `getHealth` and `listNetworkEndpoints` (`healthStatus: SHOW`)
//!   answer from the probes; an instance or a NEG endpoint the admin API marks UNHEALTHY
//!   ([`FakeGce::set_instance_health`], [`FakeGce::set_endpoint_health`]) stays UNHEALTHY for
//!   both and gets no traffic whatever its probes say.
//! - **Loopback only.** Nothing listens on or connects to an address outside `127.0.0.0/8`:
//!   a forwarding-rule address outside the fake's block is refused, and an instance with an IP
//!   outside `127.0.0.0/8` is unreachable (its probes fail without connecting, it gets no
//!   traffic).
//! - **Admin view.** `GET /_fake/dataplane`: `{block, privilegedPorts, listeners: [{forwardingRule,
//!   ip, port, listening, address, error?}], health: [{backendService, healthCheck, instance,
//!   ip, port, probePort, state, probes, lastError}]}` (`block` null and empty lists when off).
//! - **Not modelled:** Cloud CDN, IAP, Cloud Armor, HTTP/3 and QUIC (`quicOverride` is
//!   ignored), SSL policies (rustls' defaults serve), mutual TLS, custom request and response
//!   headers, session affinity, balancing modes and capacities, connection draining (a
//!   detached endpoint or removed instance gets no new request at once, as Compute documents,
//!   but requests under way run to the service's `timeoutSec` rather than being cut after
//!   `connectionDraining.drainingTimeoutSec`, and `listNetworkEndpoints` never reports
//!   `DRAINING`: whether Compute lists a detached endpoint as `DRAINING` is not documented —
//!   "Enable connection draining", <https://cloud.google.com/load-balancing/docs/enabling-connection-draining>),
//!   WebSockets and other upgrades, retries, URL rewrites and the other route actions, traffic
//!   splitting (see `route.rs`), backend buckets, internet and serverless NEGs, regional load
//!   balancers, IPv6 addresses, `httpKeepAliveTimeoutSec` (its default, 610 s, applies), the
//!   PROXY protocol header of health checks, logging and monitoring.
//!
//! # Admin API (JSON, under `/_fake/`)
//!
//! | route | effect |
//! |---|---|
//! | `GET /_fake/stats`, `DELETE /_fake/stats` (or `POST /_fake/stats/reset`) | counters, reset them |
//! | `GET /_fake/journal[?since=SEQ]`, `DELETE /_fake/journal` | [`Journal`] `{entries, dropped, nextSeq}` (entries with `seq >= SEQ`), clear it |
//! | `GET /_fake/state` | `{resources, networks, members, endpoints, operations, pendingOperations, zones, unhealthyInstances, unhealthyEndpoints}` (networks apart from the other resources; stored ones only, see "Networks") |
//! | `POST /_fake/reset` | back to the start configuration (resources, operations, knobs, counters, journal) |
//! | `GET`/`PUT /_fake/latency` | [`Latency`]: `{"defaultMs":100,"perOperation":{"urlMaps.insert":300}}` |
//! | `GET`/`POST`/`DELETE /_fake/faults`, `DELETE /_fake/faults/{id}` | list (with counters), add (→ `{"id"}`), clear, remove |
//! | `GET /_fake/quotas`, `PUT /_fake/quotas/{collection}` `{"limit":5}`, `DELETE /_fake/quotas/{collection}` | quotas |
//! | `GET`/`PUT`/`DELETE /_fake/rate-limit` | `{"qps":10,"burst":10,"categories":["mutations"],"status":403}` |
//! | `POST /_fake/instances` `{"zone","name","project"?,"ip"?,"tags"?,"network"?,"subnetwork"?,"aliasIpRanges"?}` | seed an instance ([`InstanceSeed`]; → `{"selfLink"}`) |
//! | `DELETE /_fake/instances/{zone}/{name}[?project=]` | delete an instance |
//! | `PUT /_fake/instances/{zone}/{name}/health[?project=]` `{"healthState":"UNHEALTHY"}` | health reported by `getHealth` (with the data plane on, UNHEALTHY wins over the probes) |
//! | `PUT /_fake/endpoints/{zone}/{neg}/health[?project=]` `{"ipAddress","port","healthState"}` | the same for one endpoint of a zonal NEG, in `getHealth`, `listNetworkEndpoints` and traffic (404 when the NEG has no such endpoint; the override goes with the endpoint) |
//! | `GET /_fake/dataplane` | the data plane: `{block, listeners, health}` (see "Data plane") |
//!
//! # Metadata server
//!
//! With `Metadata-Flavor: Google` (403 without): `/computeMetadata/v1/project/project-id`
//! ([`Config::project_id`]), `.../project/numeric-project-id`,
//! `.../instance/service-accounts/default/token` (`{"access_token","expires_in","token_type"}`,
//! the required token if any), `.../default/email`, `.../default/scopes`, `.../instance/zone`,
//! `.../instance/id`, `.../instance/hostname`, and `/`.
//!
//! # Binary
//!
//! `fake-gce --listen 127.0.0.1:8787` prints `fake-gce listening on http://ADDR` (use port 0 for
//! a free port) and serves until Ctrl-C. Flags: `--project-id` (`fake-project`),
//! `--require-token TOKEN`, `--latency-ms MS`, `--latency KEY=MS`…, `--wait-cap-secs S` (120),
//! `--zone ZONE`… (replaces the default zones), `--network NAME|PATH`… (replaces `default`),
//! `--instance ZONE/NAME[=IP]`…,
//! `--quota COLLECTION=N`…, `--rate-limit QPS[:BURST]`, `--fault JSON`…, `--seed N`,
//! `--url-map-max-host-rules N`, `--url-map-max-path-matchers N`, `--url-map-max-path-rules N`,
//! `--url-map-max-path-patterns N`, `--url-map-max-services N`, `--url-map-max-size-bytes N`,
//! `--max-ssl-certificates N`, `--journal-capacity N`, and for the data plane `--data-plane`,
//! `--data-plane-block 127.A.B.0`, `--data-plane-port-offset N` (10000),
//! `--probe-interval-ms N` (with the data plane on, a second line says
//! `fake-gce data plane on 127.A.B.0/24`). `--listen`, `--project-id` and
//! `--require-token` also read `FAKE_GCE_LISTEN`, `FAKE_GCE_PROJECT_ID`, `FAKE_GCE_REQUIRE_TOKEN`.
//!
//! # Not modelled
//!
//! Subnetworks (links are checked for shape and made full, not looked up), network patch and
//! peering, backend buckets, security policies, certificate maps, target SSL/TCP proxies, managed
//! instance groups, `aggregatedList` of other collections, IAM, managed-certificate
//! provisioning delays, per-minute quota windows (the rate limit is a token bucket), the exact
//! wording of some rarely seen validation messages, and the URL-map size as Google measures it
//! (here: compact JSON length). Which checks the real API makes synchronously and which inside
//! the operation is not documented; the fake checks everything synchronously and again at
//! completion, except resource quotas, the one-load-balanced-group rule and a network in use,
//! checked only at completion (as Compute's users report them). Also not modelled: the balancing-mode
//! compatibility of a group two backend services share ("backend services 1 and 2 point to the
//! same instance group but the backends have incompatible balancing_mode", Google's
//! troubleshooting page), the `IN_USE_ADDRESSES` quota an ephemeral forwarding-rule IP takes,
//! hosts per host rule (1,000), and the scheme migration states. For NEGs: global NEGs (and so
//! a `global` key in the aggregated list), endpoints of types other than `GCE_VM_IP_PORT`,
//! `GCE_VM_IP` and `NON_GCP_PRIVATE_IP_PORT` (attaching them is refused, saying so), which NEG
//! types a zonal or regional NEG may have, endpoint `annotations`, `ipv6Address` and
//! `clientDestinationPort`, `forwardingRule` in `healths` (passthrough load balancers), alias IP
//! ranges given as a size (`/24`) or named after a subnetwork's secondary range (and whether
//! they lie in the subnetwork), instances with more than one interface, and connection
//! draining on detach (see "Data plane").
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod config;
mod dataplane;
mod errors;
mod faults;
mod filter;
mod http;
mod ids;
mod journal;
mod json;
mod kinds;
mod list;
mod metadata;
mod mutation;
mod operations;
mod quota;
mod ratelimit;
mod reads;
mod resources;
mod routes;
mod server;
mod state;
mod stats;
mod store;

pub use config::{Config, DataPlane, InstanceSeed, Latency, UrlMapLimits};
pub use dataplane::LoopbackBlock;
pub use errors::ApiError;
pub use faults::{FaultAction, FaultError, FaultRule, FaultStatus};
pub use journal::{
    AppliedEntry, AppliedStatus, Journal, JournalEntry, JournalEvent, RequestEntry, ResourceChange,
};
pub use ratelimit::RateLimit;
pub use server::{FakeGce, StartError};
pub use state::ConfigError;
pub use stats::{Category, Counts, OperationCounts, RejectReason, Rejected, Stats};
