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
//! | `networkEndpointGroups` | zonal (regional: same methods) | get, list, insert, delete, `attachNetworkEndpoints`, `detachNetworkEndpoints`, `listNetworkEndpoints` (POST) |
//! | `instances` | zonal | get, list (created by seeding only) |
//! | `operations` | global, regional, zonal | get, list, `wait` (POST), delete |
//! | `zones` | — | `projects/p/zones`, `projects/p/zones/{zone}` |
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
//! whatever host was called, references accepted as full URLs (any host and version) or partial
//! paths and stored as full URLs (`backends[].group` must be a full URL, as documented), unknown
//! JSON fields kept on round trip, output-only fields sent by a client ignored, server defaults
//! written on create so reads show them (health-check timing and ports, backend-service
//! defaults, forwarding rule `IPProtocol`/`networkTier`/`loadBalancingScheme`, `portRange` "80" →
//! "80-80", `IPAddress` always numeric, firewall direction/priority/source ranges, ...). Lists:
//! `{kind, id, items, nextPageToken, selfLink}` with `items` omitted when empty, `maxResults`
//! 0–500 (default 500), opaque `pageToken`, `orderBy` `name` (default) or
//! `creationTimestamp desc`, and `filter` in both dialects (`name eq REGEX`, `name ne REGEX`,
//! `(a eq x)(b eq y)`; `name = "x"`, `!=`, `:`, `:*`, `<`, `>`, `AND`, `OR`, `NOT`, wildcards).
//!
//! # Operations
//!
//! Every mutation is checked when requested — a failed check is a synchronous error and nothing
//! happens — and answers with a RUNNING operation (global, regional or zonal, like its target).
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
//!   health check and instance group and NEG by backend service.
//! - 400 `resourceNotReady`, 400 `memberAlreadyExists` / `memberNotFound` (instance groups).
//! - 412 `conditionNotMet` (`Invalid fingerprint.`) for a missing or stale fingerprint on
//!   backend-service and URL-map update/patch, proxy and SSL-policy patch, and label fingerprint
//!   on `setLabels`; a fingerprint sent to forwarding-rule patch or `setNamedPorts` must match.
//!   Fingerprints change on every write (an instance group's only when its named ports change).
//! - 413 `fieldSizeTooLarge` for URL maps over [`UrlMapLimits`].
//! - 403 `quotaExceeded` (`Quota 'BACKEND_SERVICES' exceeded.  Limit: 5.0 globally.`),
//!   403/429 `rateLimitExceeded`, 401 `required`/`authError`, and injected errors.
//!
//! Addresses track their users (`status` RESERVED/IN_USE, `users[]`); forwarding rules without
//! `IPAddress` get an ephemeral IP; `setTarget` keeps the IP. Instance groups and NEGs hold only
//! instances that exist in their zone; deleting an instance removes it from them. `getHealth`
//! answers per instance (group) or endpoint (NEG), HEALTHY unless set otherwise; the port is the
//! group's named port matching the service's `portName`, else the service's `port`. Managed
//! certificates are ACTIVE at once.
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
//! - Quotas per collection (discovery names): count stored resources plus running inserts.
//! - A token-bucket [`RateLimit`] over all or some request categories (403 by default, or 429).
//! - Instances: [`FakeGce::seed_instance`], [`Config::instances`]; health with
//!   [`FakeGce::set_instance_health`].
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
//! # Admin API (JSON, under `/_fake/`)
//!
//! | route | effect |
//! |---|---|
//! | `GET /_fake/stats`, `DELETE /_fake/stats` (or `POST /_fake/stats/reset`) | counters, reset them |
//! | `GET /_fake/journal[?since=SEQ]`, `DELETE /_fake/journal` | [`Journal`] `{entries, dropped, nextSeq}` (entries with `seq >= SEQ`), clear it |
//! | `GET /_fake/state` | `{resources, members, endpoints, operations, pendingOperations, zones, unhealthyInstances}` |
//! | `POST /_fake/reset` | back to the start configuration (resources, operations, knobs, counters, journal) |
//! | `GET`/`PUT /_fake/latency` | [`Latency`]: `{"defaultMs":100,"perOperation":{"urlMaps.insert":300}}` |
//! | `GET`/`POST`/`DELETE /_fake/faults`, `DELETE /_fake/faults/{id}` | list (with counters), add (→ `{"id"}`), clear, remove |
//! | `GET /_fake/quotas`, `PUT /_fake/quotas/{collection}` `{"limit":5}`, `DELETE /_fake/quotas/{collection}` | quotas |
//! | `GET`/`PUT`/`DELETE /_fake/rate-limit` | `{"qps":10,"burst":10,"categories":["mutations"],"status":403}` |
//! | `POST /_fake/instances` `{"zone","name","project"?,"ip"?,"tags"?}` | seed an instance (→ `{"selfLink"}`) |
//! | `DELETE /_fake/instances/{zone}/{name}[?project=]` | delete an instance |
//! | `PUT /_fake/instances/{zone}/{name}/health[?project=]` `{"healthState":"UNHEALTHY"}` | health reported by `getHealth` |
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
//! `--zone ZONE`… (replaces the default zones), `--instance ZONE/NAME[=IP]`…,
//! `--quota COLLECTION=N`…, `--rate-limit QPS[:BURST]`, `--fault JSON`…, `--seed N`,
//! `--url-map-max-host-rules N`, `--url-map-max-path-matchers N`, `--url-map-max-path-rules N`,
//! `--url-map-max-size-bytes N`, `--max-ssl-certificates N`, `--journal-capacity N`. `--listen`, `--project-id` and
//! `--require-token` also read `FAKE_GCE_LISTEN`, `FAKE_GCE_PROJECT_ID`, `FAKE_GCE_REQUIRE_TOKEN`.
//!
//! # Not modelled
//!
//! Networks and subnetworks (links are accepted and expanded, never checked), backend buckets,
//! security policies, certificate maps, target SSL/TCP proxies, managed instance groups,
//! `aggregatedList`, IAM, the data plane (nothing listens on the IPs), managed-certificate
//! provisioning delays, per-minute quota windows (the rate limit is a token bucket), the exact
//! wording of some rarely seen validation messages, and the URL-map size as Google measures it
//! (here: compact JSON length). Which checks the real API makes synchronously and which inside
//! the operation is not documented; the fake checks everything synchronously and again at
//! completion.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod config;
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
mod ratelimit;
mod reads;
mod resources;
mod routes;
mod server;
mod state;
mod stats;
mod store;

pub use config::{Config, InstanceSeed, Latency, UrlMapLimits};
pub use errors::ApiError;
pub use faults::{FaultAction, FaultError, FaultRule, FaultStatus};
pub use journal::{
    AppliedEntry, AppliedStatus, Journal, JournalEntry, JournalEvent, RequestEntry, ResourceChange,
};
pub use ratelimit::RateLimit;
pub use server::{FakeGce, StartError};
pub use state::ConfigError;
pub use stats::{Category, Counts, OperationCounts, RejectReason, Rejected, Stats};
