#!/usr/bin/env python3
"""Builds and tears down a global external HTTP(S) load balancer on fake-gce with Google's own
client library (`google-cloud-compute`, REST transport), the way a user of that library would,
and reports every place where the fake answers differently from Compute Engine.

An independent client for fake-gce's contract tests (issue 12, item 3): nothing here comes from
this project's provider, so the fake is checked against what Google's library sends and parses.

    python3 l7_chain.py --endpoint http://127.0.0.1:PORT --project P

Needs the packages `.ci/run` installs into target/gce-python (google-cloud-compute, cryptography)
on PYTHONPATH. Talks to the endpoint only, which must be a literal address in 127.0.0.0/8: every
client, the operation clients the library builds by itself included, is pointed at it, and an
audit hook refuses any other connection or name lookup (a proxy that refuses everything stands in
for any other host for libraries that bypass Python's sockets).

The chain: two unmanaged instance groups (two zones) holding instances seeded through the fake's
admin API, with named ports; a health check; two backend services whose `backends[].group` are
partial paths; a URL map with host and path rules; target HTTP and HTTPS proxies; a self-signed
SSL certificate; a global address; forwarding rules on :80 and :443 sharing that address.
References are sent in the forms Compute accepts (full URLs, partial `projects/...` paths, and
`global/addresses/A` for an IP address) and every read must show the canonical
`https://www.googleapis.com/compute/v1/...` links. Deletes that Compute refuses while a resource
is in use are tried out of order and must fail with 400 `resourceInUseByAnotherResource`; then
everything is deleted in reverse order.

The script goes on past a failed step where it can (a resource whose insert is refused with a
reference form is inserted again with full URLs, so that later steps still run) and prints one
line per deviation. Exit status: 0 when there are none, 1 when there are deviations, 2 on usage
errors.
"""

import argparse
import ipaddress
import json
import os
import sys
import time
import traceback
import urllib.parse
import urllib.request

LINK = "https://www.googleapis.com/compute/v1/"
# Compute also accepts references under its newer host (issue 12).
ALT_LINK = "https://compute.googleapis.com/compute/v1/"
ZONE_A = "us-central1-a"
ZONE_B = "us-central1-b"
IN_USE = "resourceInUseByAnotherResource"
IN_USE_OP = "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE"


LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def guard_network(endpoint):
    """Refuses an endpoint that is not a literal 127.0.0.0/8 address, then makes any connection or
    name lookup elsewhere an error in this process (an audit hook on every socket), and sends the
    libraries that do their own networking (grpc's core) to a proxy that does not exist."""
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    try:
        loopback = ipaddress.IPv4Address(host) in LOOPBACK
    except ValueError:
        loopback = False
    if not loopback:
        print(f"usage: --endpoint must be an address in 127.0.0.0/8, got {endpoint!r}", file=sys.stderr)
        sys.exit(2)

    def refuse_elsewhere(event, args):
        if event == "socket.getaddrinfo" and args[0] not in (host, host.encode()):
            raise ConnectionRefusedError(f"l7_chain: name lookup of {args[0]!r} refused: loopback only")
        if event == "socket.connect":
            address = args[1]
            if isinstance(address, tuple):
                try:
                    inside = ipaddress.ip_address(address[0]) in LOOPBACK
                except ValueError:
                    inside = False
                if not inside:
                    raise ConnectionRefusedError(f"l7_chain: connection to {address!r} refused: loopback only")

    sys.addaudithook(refuse_elsewhere)
    # Nothing listens on port 9: a library that goes around Python's sockets fails here too.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ[var] = "http://127.0.0.1:9"
    for var in ("NO_PROXY", "no_proxy"):
        os.environ[var] = host
    # google-auth must not look for credentials anywhere.
    os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    os.environ["NO_GCE_CHECK"] = "True"


class Run:
    """Steps, checks and the deviations they found."""

    def __init__(self):
        self.deviations = []
        self.failed = set()
        self.checks = 0

    def deviation(self, where, what):
        self.deviations.append(f"{where}: {what}")
        print(f"  DEVIATION {where}: {what}", flush=True)

    def check(self, where, cond, what):
        self.checks += 1
        if not cond:
            self.deviation(where, what)
        return cond

    def equal(self, where, got, want):
        return self.check(where, got == want, f"got {got!r}, Compute answers {want!r}")

    def step(self, name, fn, needs=()):
        """Runs `fn`; an exception is a deviation and marks the step failed. A step whose needs
        failed is skipped (and counts as failed for its own dependents)."""
        missing = [n for n in needs if n in self.failed]
        if missing:
            print(f"SKIP {name} (needs {', '.join(missing)})", flush=True)
            self.failed.add(name)
            return None
        print(f"STEP {name}", flush=True)
        before = len(self.deviations)
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001 - every failure is reported, then we go on
            self.deviation(name, f"unexpected {describe(e)}")
            if os.environ.get("L7_CHAIN_TRACEBACK"):
                traceback.print_exc()
            self.failed.add(name)
            return None
        if len(self.deviations) > before:
            print(f"  ({len(self.deviations) - before} deviation(s) in {name})", flush=True)
        return out


def describe(e):
    """An exception as `Class status reason: message`."""
    from google.api_core import exceptions as gex

    if isinstance(e, gex.GoogleAPICallError):
        text = f"{type(e).__name__} {e.code} {reason_of(e) or '-'}: {e.message}"
    else:
        text = f"{type(e).__name__}: {e}"
    text = " ".join(text.split())
    return text if len(text) <= 400 else text[:400] + "..."


def reason_of(e):
    """The first reason of an API error: `errors[0].reason` of a synchronous error body, or
    `error.errors[0].code` of a failed operation."""
    for item in getattr(e, "errors", None) or []:
        if isinstance(item, dict):
            return item.get("reason") or item.get("code") or ""
        return getattr(item, "reason", "") or getattr(item, "code", "")
    return ""


def to_op_code(reason):
    """`resourceInUseByAnotherResource` -> `RESOURCE_IN_USE_BY_ANOTHER_RESOURCE`."""
    return "".join("_" + ch if ch.isupper() else ch.upper() for ch in reason)


class Clients:
    """One client per Compute service, every one (and every operation client the library makes
    for its extended operations) on the fake's endpoint over plain http."""

    def __init__(self, endpoint):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import compute_v1

        split = urllib.parse.urlsplit(endpoint)
        self.host = split.netloc
        self.scheme = split.scheme or "http"
        self.creds = AnonymousCredentials()
        c = compute_v1
        self.global_ops = self._make(c.GlobalOperationsClient, "global_operations")
        self.zone_ops = self._make(c.ZoneOperationsClient, "zone_operations")
        self.region_ops = self._make(c.RegionOperationsClient, "region_operations")
        self.instance_groups = self._make(c.InstanceGroupsClient, "instance_groups")
        self.instances = self._make(c.InstancesClient, "instances")
        self.health_checks = self._make(c.HealthChecksClient, "health_checks")
        self.backend_services = self._make(c.BackendServicesClient, "backend_services")
        self.url_maps = self._make(c.UrlMapsClient, "url_maps")
        self.http_proxies = self._make(c.TargetHttpProxiesClient, "target_http_proxies")
        self.https_proxies = self._make(c.TargetHttpsProxiesClient, "target_https_proxies")
        self.certificates = self._make(c.SslCertificatesClient, "ssl_certificates")
        self.addresses = self._make(c.GlobalAddressesClient, "global_addresses")
        self.forwarding_rules = self._make(c.GlobalForwardingRulesClient, "global_forwarding_rules")

    def _make(self, client_class, module):
        import importlib

        transports = importlib.import_module(f"google.cloud.compute_v1.services.{module}.transports")
        transport_class = next(
            getattr(transports, n) for n in dir(transports) if n.endswith("RestTransport")
        )
        transport = transport_class(host=self.host, credentials=self.creds, url_scheme=self.scheme)
        # The library builds its own operation clients on compute.googleapis.com (see the
        # transports' `_global_operations_client`): hand it ours.
        ops = getattr(transport, "_extended_operations_services", None)
        if ops is not None:
            for key, attr in (
                ("global_operations", "global_ops"),
                ("zone_operations", "zone_ops"),
                ("region_operations", "region_ops"),
            ):
                if hasattr(self, attr):
                    ops[key] = getattr(self, attr)
        return client_class(transport=transport)


def admin_seed_instance(endpoint, project, zone, name):
    """Seeds an instance through the fake's admin API (`POST /_fake/instances`)."""
    body = json.dumps({"zone": zone, "name": name, "project": project}).encode()
    req = urllib.request.Request(
        endpoint.rstrip("/") + "/_fake/instances",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=30) as resp:
        return json.loads(resp.read())["selfLink"]


def self_signed(host):
    """A self-signed certificate for `host` and its key, as PEM."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return cert_pem, key_pem


class Chain:
    def __init__(self, run, clients, endpoint, project, prefix):
        self.run = run
        self.c = clients
        self.endpoint = endpoint
        self.p = project
        self.prefix = prefix
        self.n = {
            "ig_a": f"{prefix}-ig-a",
            "ig_b": f"{prefix}-ig-b",
            "hc": f"{prefix}-hc",
            "bs_web": f"{prefix}-bs-web",
            "bs_api": f"{prefix}-bs-api",
            "um": f"{prefix}-um",
            "http": f"{prefix}-http",
            "https": f"{prefix}-https",
            "cert": f"{prefix}-cert",
            "addr": f"{prefix}-addr",
            "fr80": f"{prefix}-fr-80",
            "fr443": f"{prefix}-fr-443",
        }
        self.nodes = {ZONE_A: [f"{prefix}-a-0", f"{prefix}-a-1"], ZONE_B: [f"{prefix}-b-0"]}
        self.node_links = {}
        self.waited = set()

    # --- links ------------------------------------------------------------------------------

    def path(self, kind, name, zone=None):
        """`projects/P/global/KIND/NAME` or `projects/P/zones/Z/KIND/NAME`."""
        scope = f"zones/{zone}" if zone else "global"
        return f"projects/{self.p}/{scope}/{kind}/{name}"

    def link(self, kind, name, zone=None):
        return LINK + self.path(kind, name, zone)

    def zone_link(self, zone):
        return f"{LINK}projects/{self.p}/zones/{zone}"

    # --- operations -------------------------------------------------------------------------

    def finish(self, what, op, kind, name, zone=None, verb="insert"):
        """Waits on an operation as the library does (`result()`, polling `get`), and once per
        scope also through the operations client's `wait`; checks the operation's links."""
        scope = "zone" if zone else "global"
        if scope not in self.waited:
            self.waited.add(scope)
            if zone:
                waited = self.c.zone_ops.wait(project=self.p, zone=zone, operation=op.name)
            else:
                waited = self.c.global_ops.wait(project=self.p, operation=op.name)
            self.run.equal(f"{what}: operations.wait status", waited.status.name, "DONE")
        op.result(timeout=120)
        self.run.equal(f"{what}: operation status", op.status.name, "DONE")
        self.run.equal(f"{what}: operation targetLink", op.target_link, self.link(kind, name, zone))
        want_op = (
            f"{LINK}projects/{self.p}/zones/{zone}/operations/{op.name}"
            if zone
            else f"{LINK}projects/{self.p}/global/operations/{op.name}"
        )
        self.run.equal(f"{what}: operation selfLink", op.self_link, want_op)
        if zone:
            self.run.equal(f"{what}: operation zone", op.zone, self.zone_link(zone))
        self.run.equal(f"{what}: operationType", op.operation_type, verb)

    def insert(self, what, attempt, fallback, kind, name, zone=None):
        """Inserts with the reference forms under test; when that is refused, reports it and
        inserts again with full URLs (so the chain goes on)."""
        from google.api_core import exceptions as gex

        try:
            op = attempt()
        except gex.GoogleAPICallError as e:
            if fallback is None:
                raise
            self.run.deviation(
                what, f"refused ({describe(e)}); Compute accepts these reference forms"
            )
            print("  retrying with full URLs", flush=True)
            op = fallback()
        self.finish(what, op, kind, name, zone)

    def expect_in_use(self, what, call, kind, name, zone=None):
        """A delete Compute refuses while the resource is used: 400
        `resourceInUseByAnotherResource`, synchronously or as the operation's error, and the
        resource still there."""
        from google.api_core import exceptions as gex

        form = None
        try:
            op = call()
        except gex.GoogleAPICallError as e:
            form = "synchronous"
            self.run.check(
                what,
                e.code == 400 and reason_of(e) == IN_USE,
                f"got {describe(e)}; Compute answers 400 {IN_USE}",
            )
            message = e.message
        else:
            try:
                op.result(timeout=120)
            except gex.GoogleAPICallError as e:
                form = "operation error"
                self.run.check(
                    what,
                    e.code == 400 and reason_of(e) == IN_USE_OP,
                    f"operation failed with {describe(e)}; Compute answers 400 {IN_USE_OP}",
                )
                message = e.message
            else:
                self.run.deviation(what, f"the delete succeeded; Compute answers 400 {IN_USE}")
                return
        print(f"  refused ({form}): {message}", flush=True)
        # Still there.
        getter = self.getter(kind)
        if zone:
            getter(project=self.p, zone=zone, **{self.arg(kind): name})
        else:
            getter(project=self.p, **{self.arg(kind): name})

    def expect_error(self, what, call, status, reason):
        """A request Compute refuses with `status` and `reason`, synchronously or as the
        operation's error."""
        from google.api_core import exceptions as gex

        try:
            op = call()
            op.result(timeout=120)
        except gex.GoogleAPICallError as e:
            self.run.check(
                what,
                e.code == status and reason_of(e) in (reason, to_op_code(reason)),
                f"got {describe(e)}; Compute answers {status} {reason}",
            )
            return
        self.run.deviation(what, f"accepted; Compute answers {status} {reason}")

    def getter(self, kind):
        return {
            "instanceGroups": self.c.instance_groups.get,
            "healthChecks": self.c.health_checks.get,
            "backendServices": self.c.backend_services.get,
            "urlMaps": self.c.url_maps.get,
            "targetHttpProxies": self.c.http_proxies.get,
            "targetHttpsProxies": self.c.https_proxies.get,
            "sslCertificates": self.c.certificates.get,
            "addresses": self.c.addresses.get,
            "forwardingRules": self.c.forwarding_rules.get,
        }[kind]

    @staticmethod
    def arg(kind):
        return {
            "instanceGroups": "instance_group",
            "healthChecks": "health_check",
            "backendServices": "backend_service",
            "urlMaps": "url_map",
            "targetHttpProxies": "target_http_proxy",
            "targetHttpsProxies": "target_https_proxy",
            "sslCertificates": "ssl_certificate",
            "addresses": "address",
            "forwardingRules": "forwarding_rule",
        }[kind]

    def delete(self, what, kind, name, zone=None):
        deleter = {
            "instanceGroups": self.c.instance_groups.delete,
            "healthChecks": self.c.health_checks.delete,
            "backendServices": self.c.backend_services.delete,
            "urlMaps": self.c.url_maps.delete,
            "targetHttpProxies": self.c.http_proxies.delete,
            "targetHttpsProxies": self.c.https_proxies.delete,
            "sslCertificates": self.c.certificates.delete,
            "addresses": self.c.addresses.delete,
            "forwardingRules": self.c.forwarding_rules.delete,
        }[kind]
        kwargs = {"project": self.p, self.arg(kind): name}
        if zone:
            kwargs["zone"] = zone
        return deleter(**kwargs)

    def delete_and_check(self, what, kind, name, zone=None):
        from google.api_core import exceptions as gex

        op = self.delete(what, kind, name, zone)
        self.finish(what, op, kind, name, zone, verb="delete")
        try:
            getter = self.getter(kind)
            kwargs = {"project": self.p, self.arg(kind): name}
            if zone:
                kwargs["zone"] = zone
            getter(**kwargs)
        except gex.NotFound:
            return
        self.run.deviation(what, "still readable after its delete operation is DONE")

    # --- the chain ---------------------------------------------------------------------------

    def seed(self):
        for zone, names in self.nodes.items():
            for name in names:
                got = admin_seed_instance(self.endpoint, self.p, zone, name)
                want = self.link("instances", name, zone)
                self.run.equal(f"seed {zone}/{name}: selfLink", got, want)
                self.node_links[name] = want
        # Read back through the library.
        for zone, names in self.nodes.items():
            listed = {i.name: i for i in self.c.instances.list(project=self.p, zone=zone)}
            for name in names:
                inst = listed.get(name)
                if not self.run.check(f"instances.list {zone}", inst is not None, f"{name} missing"):
                    continue
                self.run.equal(f"instance {name}: zone", inst.zone, self.zone_link(zone))

    def create_groups(self):
        from google.cloud import compute_v1 as c

        # Zone A: named ports given at insert.
        self.insert(
            "instanceGroups.insert (zone A)",
            lambda: self.c.instance_groups.insert(
                project=self.p,
                zone=ZONE_A,
                instance_group_resource=c.InstanceGroup(
                    name=self.n["ig_a"],
                    description="google-cloud-compute contract test",
                    named_ports=[c.NamedPort(name="http", port=30080)],
                ),
            ),
            None,
            "instanceGroups",
            self.n["ig_a"],
            ZONE_A,
        )
        # Zone B: no named ports at insert, set with setNamedPorts and the group's fingerprint.
        self.insert(
            "instanceGroups.insert (zone B)",
            lambda: self.c.instance_groups.insert(
                project=self.p,
                zone=ZONE_B,
                instance_group_resource=c.InstanceGroup(name=self.n["ig_b"]),
            ),
            None,
            "instanceGroups",
            self.n["ig_b"],
            ZONE_B,
        )
        group_b = self.c.instance_groups.get(project=self.p, zone=ZONE_B, instance_group=self.n["ig_b"])
        op = self.c.instance_groups.set_named_ports(
            project=self.p,
            zone=ZONE_B,
            instance_group=self.n["ig_b"],
            instance_groups_set_named_ports_request_resource=c.InstanceGroupsSetNamedPortsRequest(
                named_ports=[c.NamedPort(name="http", port=30080)],
                fingerprint=group_b.fingerprint,
            ),
        )
        self.finish("instanceGroups.setNamedPorts", op, "instanceGroups", self.n["ig_b"], ZONE_B, "compute.instanceGroups.setNamedPorts")

    def add_instances(self):
        from google.cloud import compute_v1 as c

        # Zone A: one full URL, one partial path; zone B: the full URL under compute.googleapis.com.
        a0, a1 = self.nodes[ZONE_A]
        (b0,) = self.nodes[ZONE_B]
        cases = [
            (ZONE_A, self.n["ig_a"], [self.link("instances", a0, ZONE_A), self.path("instances", a1, ZONE_A)]),
            (ZONE_B, self.n["ig_b"], [ALT_LINK + self.path("instances", b0, ZONE_B)]),
        ]
        from google.api_core import exceptions as gex

        for zone, group, refs in cases:
            what = f"instanceGroups.addInstances ({zone}, {refs})"

            def attempt(zone=zone, group=group, refs=refs):
                return self.c.instance_groups.add_instances(
                    project=self.p,
                    zone=zone,
                    instance_group=group,
                    instance_groups_add_instances_request_resource=c.InstanceGroupsAddInstancesRequest(
                        instances=[c.InstanceReference(instance=r) for r in refs]
                    ),
                )

            def fallback(zone=zone, group=group, refs=refs):
                full = [LINK + r.split("/compute/v1/")[-1] if "://" in r else LINK + r for r in refs]
                return self.c.instance_groups.add_instances(
                    project=self.p,
                    zone=zone,
                    instance_group=group,
                    instance_groups_add_instances_request_resource=c.InstanceGroupsAddInstancesRequest(
                        instances=[c.InstanceReference(instance=r) for r in full]
                    ),
                )

            try:
                op = attempt()
            except gex.GoogleAPICallError as e:
                self.run.deviation(what, f"refused ({describe(e)}); Compute accepts these reference forms")
                op = fallback()
            self.finish(what, op, "instanceGroups", group, zone, "compute.instanceGroups.addInstances")

    def read_groups(self):
        from google.cloud import compute_v1 as c

        for zone, key in ((ZONE_A, "ig_a"), (ZONE_B, "ig_b")):
            name = self.n[key]
            where = f"instanceGroups.get {zone}/{name}"
            g = self.c.instance_groups.get(project=self.p, zone=zone, instance_group=name)
            self.run.equal(f"{where}: selfLink", g.self_link, self.link("instanceGroups", name, zone))
            self.run.equal(f"{where}: zone", g.zone, self.zone_link(zone))
            self.run.equal(f"{where}: size", g.size, len(self.nodes[zone]))
            self.run.equal(
                f"{where}: namedPorts", [(p.name, p.port) for p in g.named_ports], [("http", 30080)]
            )
            # An unmanaged group takes the network of its instances (`network` is output only:
            # "The URL of the network to which all instances in the instance group belong").
            self.run.check(
                f"{where}: network",
                g.network.startswith(LINK + f"projects/{self.p}/global/networks/"),
                f"got {g.network!r}; Compute shows the instances' network as a full URL "
                f"({LINK}projects/{self.p}/global/networks/default for the default network)",
            )
            members = self.c.instance_groups.list_instances(
                project=self.p,
                zone=zone,
                instance_group=name,
                instance_groups_list_instances_request_resource=c.InstanceGroupsListInstancesRequest(
                    instance_state="ALL"
                ),
            )
            got = sorted(m.instance for m in members)
            want = sorted(self.link("instances", n, zone) for n in self.nodes[zone])
            self.run.equal(f"instanceGroups.listInstances {zone}/{name}", got, want)

    def aggregated_groups(self):
        """aggregatedList: both groups, each under its `zones/Z` key."""
        seen = {}
        for scope, scoped in self.c.instance_groups.aggregated_list(project=self.p):
            for g in scoped.instance_groups:
                seen[g.name] = scope
        for zone, key in ((ZONE_A, "ig_a"), (ZONE_B, "ig_b")):
            self.run.equal(
                f"instanceGroups.aggregatedList: scope of {self.n[key]}", seen.get(self.n[key]), f"zones/{zone}"
            )

    def create_health_check(self):
        from google.cloud import compute_v1 as c

        self.insert(
            "healthChecks.insert",
            lambda: self.c.health_checks.insert(
                project=self.p,
                health_check_resource=c.HealthCheck(
                    name=self.n["hc"],
                    type_="HTTP",
                    check_interval_sec=5,
                    timeout_sec=5,
                    http_health_check=c.HTTPHealthCheck(
                        port_specification="USE_SERVING_PORT", request_path="/healthz"
                    ),
                ),
            ),
            None,
            "healthChecks",
            self.n["hc"],
        )
        self.expect_error(
            "healthChecks.insert of a taken name",
            lambda: self.c.health_checks.insert(
                project=self.p,
                health_check_resource=c.HealthCheck(
                    name=self.n["hc"], type_="TCP", tcp_health_check=c.TCPHealthCheck(port=80)
                ),
            ),
            409,
            "alreadyExists",
        )
        hc = self.c.health_checks.get(project=self.p, health_check=self.n["hc"])
        self.run.equal("healthChecks.get: selfLink", hc.self_link, self.link("healthChecks", self.n["hc"]))
        self.run.equal("healthChecks.get: type", hc.type_, "HTTP")
        self.run.equal("healthChecks.get: requestPath", hc.http_health_check.request_path, "/healthz")

    def create_backend_services(self):
        from google.cloud import compute_v1 as c

        def service(name, hc_ref, group_refs):
            return c.BackendService(
                name=name,
                protocol="HTTP",
                port_name="http",
                load_balancing_scheme="EXTERNAL",
                timeout_sec=30,
                health_checks=[hc_ref],
                backends=[c.Backend(group=g, balancing_mode="UTILIZATION", max_utilization=0.8) for g in group_refs],
            )

        partial_groups = [
            self.path("instanceGroups", self.n["ig_a"], ZONE_A),
            self.path("instanceGroups", self.n["ig_b"], ZONE_B),
        ]
        full_groups = [LINK + g for g in partial_groups]
        # bs-web: partial paths everywhere (backends[].group and healthChecks[]), as Terraform's
        # `google_compute_instance_group.x.id` and `google_compute_health_check.x.id` send them.
        self.insert(
            "backendServices.insert (partial backends[].group and healthChecks[])",
            lambda: self.c.backend_services.insert(
                project=self.p,
                backend_service_resource=service(
                    self.n["bs_web"], self.path("healthChecks", self.n["hc"]), partial_groups
                ),
            ),
            lambda: self.c.backend_services.insert(
                project=self.p,
                backend_service_resource=service(
                    self.n["bs_web"], self.link("healthChecks", self.n["hc"]), full_groups
                ),
            ),
            "backendServices",
            self.n["bs_web"],
        )
        # bs-api: full URLs, one of them under compute.googleapis.com.
        self.insert(
            "backendServices.insert (compute.googleapis.com links in backends[].group and healthChecks[])",
            lambda: self.c.backend_services.insert(
                project=self.p,
                backend_service_resource=service(
                    self.n["bs_api"],
                    ALT_LINK + self.path("healthChecks", self.n["hc"]),
                    [full_groups[0], ALT_LINK + partial_groups[1]],
                ),
            ),
            lambda: self.c.backend_services.insert(
                project=self.p,
                backend_service_resource=service(
                    self.n["bs_api"], self.link("healthChecks", self.n["hc"]), full_groups
                ),
            ),
            "backendServices",
            self.n["bs_api"],
        )
        for key in ("bs_web", "bs_api"):
            name = self.n[key]
            where = f"backendServices.get {name}"
            bs = self.c.backend_services.get(project=self.p, backend_service=name)
            self.run.equal(f"{where}: selfLink", bs.self_link, self.link("backendServices", name))
            self.run.equal(f"{where}: healthChecks", list(bs.health_checks), [self.link("healthChecks", self.n["hc"])])
            self.run.equal(f"{where}: backends[].group", sorted(b.group for b in bs.backends), sorted(full_groups))
            self.run.equal(f"{where}: loadBalancingScheme", bs.load_balancing_scheme, "EXTERNAL")
        # The library's pager follows nextPageToken; a regular-expression filter (`eq`, RE2,
        # matching the whole field, as Compute's list methods document).
        from google.cloud import compute_v1 as c

        paged = self.c.backend_services.list(
            request=c.ListBackendServicesRequest(project=self.p, max_results=1, filter=f"name eq {self.prefix}-bs-.*")
        )
        self.run.equal(
            "backendServices.list (maxResults=1, filter, all pages)",
            sorted(b.name for b in paged),
            sorted([self.n["bs_web"], self.n["bs_api"]]),
        )

    def backend_health(self):
        from google.cloud import compute_v1 as c

        for zone, key in ((ZONE_A, "ig_a"), (ZONE_B, "ig_b")):
            group = self.link("instanceGroups", self.n[key], zone)
            health = self.c.backend_services.get_health(
                project=self.p,
                backend_service=self.n["bs_web"],
                resource_group_reference_resource=c.ResourceGroupReference(group=group),
            )
            got = sorted((h.instance, h.health_state) for h in health.health_status)
            want = sorted((self.link("instances", n, zone), "HEALTHY") for n in self.nodes[zone])
            self.run.equal(f"backendServices.getHealth {self.n[key]}", got, want)

    def create_url_map(self):
        from google.cloud import compute_v1 as c

        def url_map(web_default, web_pm, api_rule, api_pm):
            return c.UrlMap(
                name=self.n["um"],
                default_service=web_default,
                host_rules=[
                    c.HostRule(hosts=["example.com", "*.example.org"], path_matcher="web"),
                    c.HostRule(hosts=["api.example.com"], path_matcher="api"),
                ],
                path_matchers=[
                    c.PathMatcher(
                        name="web",
                        default_service=web_pm,
                        path_rules=[c.PathRule(paths=["/api", "/api/*"], service=api_rule)],
                    ),
                    c.PathMatcher(name="api", default_service=api_pm),
                ],
            )

        web, api = self.n["bs_web"], self.n["bs_api"]
        missing = f"{self.prefix}-missing"
        self.expect_error(
            "urlMaps.insert naming a backend service that does not exist",
            lambda: self.c.url_maps.insert(
                project=self.p,
                url_map_resource=c.UrlMap(
                    name=f"{self.prefix}-um-bad", default_service=self.link("backendServices", missing)
                ),
            ),
            404,
            "notFound",
        )
        self.insert(
            "urlMaps.insert (partial and full service references)",
            lambda: self.c.url_maps.insert(
                project=self.p,
                url_map_resource=url_map(
                    self.path("backendServices", web),
                    self.link("backendServices", web),
                    ALT_LINK + self.path("backendServices", api),
                    self.path("backendServices", api),
                ),
            ),
            lambda: self.c.url_maps.insert(
                project=self.p,
                url_map_resource=url_map(
                    self.link("backendServices", web),
                    self.link("backendServices", web),
                    self.link("backendServices", api),
                    self.link("backendServices", api),
                ),
            ),
            "urlMaps",
            self.n["um"],
        )
        um = self.c.url_maps.get(project=self.p, url_map=self.n["um"])
        where = f"urlMaps.get {self.n['um']}"
        self.run.equal(f"{where}: selfLink", um.self_link, self.link("urlMaps", self.n["um"]))
        self.run.equal(f"{where}: defaultService", um.default_service, self.link("backendServices", web))
        self.run.equal(
            f"{where}: hostRules",
            [(list(h.hosts), h.path_matcher) for h in um.host_rules],
            [(["example.com", "*.example.org"], "web"), (["api.example.com"], "api")],
        )
        pms = {pm.name: pm for pm in um.path_matchers}
        if self.run.check(f"{where}: pathMatchers", set(pms) == {"web", "api"}, f"got {sorted(pms)}"):
            self.run.equal(f"{where}: pathMatchers[web].defaultService", pms["web"].default_service, self.link("backendServices", web))
            self.run.equal(
                f"{where}: pathMatchers[web].pathRules",
                [(list(r.paths), r.service) for r in pms["web"].path_rules],
                [(["/api", "/api/*"], self.link("backendServices", api))],
            )
            self.run.equal(f"{where}: pathMatchers[api].defaultService", pms["api"].default_service, self.link("backendServices", api))

    def create_certificate(self):
        from google.cloud import compute_v1 as c

        cert_pem, key_pem = self_signed("example.com")
        self.insert(
            "sslCertificates.insert",
            lambda: self.c.certificates.insert(
                project=self.p,
                ssl_certificate_resource=c.SslCertificate(
                    name=self.n["cert"], certificate=cert_pem, private_key=key_pem
                ),
            ),
            None,
            "sslCertificates",
            self.n["cert"],
        )
        got = self.c.certificates.get(project=self.p, ssl_certificate=self.n["cert"])
        where = f"sslCertificates.get {self.n['cert']}"
        self.run.equal(f"{where}: selfLink", got.self_link, self.link("sslCertificates", self.n["cert"]))
        self.run.equal(f"{where}: certificate", got.certificate.strip(), cert_pem.strip())
        # "For security, only insert requests include this field."
        self.run.equal(f"{where}: privateKey (never returned)", got.private_key, "")

    def create_proxies(self):
        from google.cloud import compute_v1 as c

        um = self.n["um"]
        self.insert(
            "targetHttpProxies.insert (partial urlMap)",
            lambda: self.c.http_proxies.insert(
                project=self.p,
                target_http_proxy_resource=c.TargetHttpProxy(name=self.n["http"], url_map=self.path("urlMaps", um)),
            ),
            lambda: self.c.http_proxies.insert(
                project=self.p,
                target_http_proxy_resource=c.TargetHttpProxy(name=self.n["http"], url_map=self.link("urlMaps", um)),
            ),
            "targetHttpProxies",
            self.n["http"],
        )
        self.insert(
            "targetHttpsProxies.insert (full urlMap, partial sslCertificates[])",
            lambda: self.c.https_proxies.insert(
                project=self.p,
                target_https_proxy_resource=c.TargetHttpsProxy(
                    name=self.n["https"],
                    url_map=self.link("urlMaps", um),
                    ssl_certificates=[self.path("sslCertificates", self.n["cert"])],
                ),
            ),
            lambda: self.c.https_proxies.insert(
                project=self.p,
                target_https_proxy_resource=c.TargetHttpsProxy(
                    name=self.n["https"],
                    url_map=self.link("urlMaps", um),
                    ssl_certificates=[self.link("sslCertificates", self.n["cert"])],
                ),
            ),
            "targetHttpsProxies",
            self.n["https"],
        )
        hp = self.c.http_proxies.get(project=self.p, target_http_proxy=self.n["http"])
        self.run.equal("targetHttpProxies.get: selfLink", hp.self_link, self.link("targetHttpProxies", self.n["http"]))
        self.run.equal("targetHttpProxies.get: urlMap", hp.url_map, self.link("urlMaps", um))
        sp = self.c.https_proxies.get(project=self.p, target_https_proxy=self.n["https"])
        self.run.equal("targetHttpsProxies.get: selfLink", sp.self_link, self.link("targetHttpsProxies", self.n["https"]))
        self.run.equal("targetHttpsProxies.get: urlMap", sp.url_map, self.link("urlMaps", um))
        self.run.equal(
            "targetHttpsProxies.get: sslCertificates",
            list(sp.ssl_certificates),
            [self.link("sslCertificates", self.n["cert"])],
        )

    def create_address(self):
        from google.cloud import compute_v1 as c

        self.insert(
            "globalAddresses.insert",
            lambda: self.c.addresses.insert(project=self.p, address_resource=c.Address(name=self.n["addr"])),
            None,
            "addresses",
            self.n["addr"],
        )
        a = self.c.addresses.get(project=self.p, address=self.n["addr"])
        self.run.equal("globalAddresses.get: selfLink", a.self_link, self.link("addresses", self.n["addr"]))
        self.run.check("globalAddresses.get: address", bool(a.address), "no IP address")
        self.run.equal("globalAddresses.get: status", a.status, "RESERVED")
        self.ip = a.address

    def create_forwarding_rules(self):
        from google.cloud import compute_v1 as c

        def rule(name, ip_ref, port, target):
            return c.ForwardingRule(
                name=name,
                I_p_address=ip_ref,
                I_p_protocol="TCP",
                port_range=port,
                target=target,
                load_balancing_scheme="EXTERNAL",
            )

        addr = self.n["addr"]
        # :80 — partial address and partial target.
        self.insert(
            "globalForwardingRules.insert :80 (partial IPAddress and target)",
            lambda: self.c.forwarding_rules.insert(
                project=self.p,
                forwarding_rule_resource=rule(
                    self.n["fr80"], self.path("addresses", addr), "80", self.path("targetHttpProxies", self.n["http"])
                ),
            ),
            lambda: self.c.forwarding_rules.insert(
                project=self.p,
                forwarding_rule_resource=rule(
                    self.n["fr80"], self.link("addresses", addr), "80", self.link("targetHttpProxies", self.n["http"])
                ),
            ),
            "forwardingRules",
            self.n["fr80"],
        )
        # :443 — `global/addresses/A` (a form the IPAddress field documents) and a full target.
        self.insert(
            "globalForwardingRules.insert :443 (global/addresses/A)",
            lambda: self.c.forwarding_rules.insert(
                project=self.p,
                forwarding_rule_resource=rule(
                    self.n["fr443"], f"global/addresses/{addr}", "443", self.link("targetHttpsProxies", self.n["https"])
                ),
            ),
            lambda: self.c.forwarding_rules.insert(
                project=self.p,
                forwarding_rule_resource=rule(
                    self.n["fr443"], self.link("addresses", addr), "443", self.link("targetHttpsProxies", self.n["https"])
                ),
            ),
            "forwardingRules",
            self.n["fr443"],
        )
        for key, target_kind, target, port in (
            ("fr80", "targetHttpProxies", self.n["http"], "80-80"),
            ("fr443", "targetHttpsProxies", self.n["https"], "443-443"),
        ):
            name = self.n[key]
            where = f"globalForwardingRules.get {name}"
            fr = self.c.forwarding_rules.get(project=self.p, forwarding_rule=name)
            self.run.equal(f"{where}: selfLink", fr.self_link, self.link("forwardingRules", name))
            self.run.equal(f"{where}: IPAddress (always the number)", fr.I_p_address, self.ip)
            self.run.equal(f"{where}: target", fr.target, self.link(target_kind, target))
            self.run.equal(f"{where}: portRange", fr.port_range, port)
            self.run.equal(f"{where}: IPProtocol", fr.I_p_protocol, "TCP")
            self.run.equal(f"{where}: loadBalancingScheme", fr.load_balancing_scheme, "EXTERNAL")
        a = self.c.addresses.get(project=self.p, address=addr)
        self.run.equal("globalAddresses.get: status with users", a.status, "IN_USE")
        self.run.equal(
            "globalAddresses.get: users",
            sorted(a.users),
            sorted([self.link("forwardingRules", self.n["fr80"]), self.link("forwardingRules", self.n["fr443"])]),
        )

    def out_of_order_deletes(self):
        cases = [
            ("delete backend service used by the URL map", "backendServices", self.n["bs_api"], None),
            ("delete health check used by backend services", "healthChecks", self.n["hc"], None),
            ("delete instance group used by backend services", "instanceGroups", self.n["ig_a"], ZONE_A),
            ("delete URL map used by target proxies", "urlMaps", self.n["um"], None),
            ("delete target HTTP proxy used by a forwarding rule", "targetHttpProxies", self.n["http"], None),
            ("delete SSL certificate used by the HTTPS proxy", "sslCertificates", self.n["cert"], None),
            ("delete address used by forwarding rules", "addresses", self.n["addr"], None),
        ]
        for what, kind, name, zone in cases:
            self.run.step(
                what,
                lambda what=what, kind=kind, name=name, zone=zone: self.expect_in_use(
                    what, lambda: self.delete(what, kind, name, zone), kind, name, zone
                ),
            )

    def teardown(self):
        order = [
            ("fr443", "forwardingRules", None),
            ("fr80", "forwardingRules", None),
            ("addr", "addresses", None),
            ("https", "targetHttpsProxies", None),
            ("http", "targetHttpProxies", None),
            ("cert", "sslCertificates", None),
            ("um", "urlMaps", None),
            ("bs_api", "backendServices", None),
            ("bs_web", "backendServices", None),
            ("hc", "healthChecks", None),
            ("ig_b", "instanceGroups", ZONE_B),
            ("ig_a", "instanceGroups", ZONE_A),
        ]
        for key, kind, zone in order:
            name = self.n[key]
            self.run.step(
                f"delete {kind}/{name}",
                lambda kind=kind, name=name, zone=zone: self.delete_and_check(f"{kind}.delete {name}", kind, name, zone),
            )
            if key == "fr80":
                self.run.step("address released", self.address_released)
        # Deleting an unmanaged group leaves its instances.
        self.run.step("instances survive their groups", self.instances_survive)

    def address_released(self):
        a = self.c.addresses.get(project=self.p, address=self.n["addr"])
        self.run.equal("globalAddresses.get after the rules: status", a.status, "RESERVED")
        self.run.equal("globalAddresses.get after the rules: users", list(a.users), [])

    def instances_survive(self):
        for zone, names in self.nodes.items():
            listed = {i.name for i in self.c.instances.list(project=self.p, zone=zone)}
            for name in names:
                self.run.check(f"instances.list {zone}", name in listed, f"{name} is gone with its group")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="fake-gce root, e.g. http://127.0.0.1:8787")
    parser.add_argument("--project", required=True)
    parser.add_argument("--prefix", default="gcc", help="prefix of every resource name")
    args = parser.parse_args()
    guard_network(args.endpoint)

    try:
        import google.cloud.compute_v1  # noqa: F401
        from importlib.metadata import version
    except ImportError as e:
        print(f"google-cloud-compute is not importable ({e}); see .ci/run for the install", file=sys.stderr)
        return 2
    print(f"google-cloud-compute {version('google-cloud-compute')}, google-api-core {version('google-api-core')}")
    print(f"endpoint {args.endpoint}, project {args.project}", flush=True)

    started = time.monotonic()
    run = Run()
    clients = Clients(args.endpoint)
    chain = Chain(run, clients, args.endpoint, args.project, args.prefix)

    run.step("seed instances (admin API)", chain.seed)
    run.step("instance groups", chain.create_groups)
    run.step("add instances", chain.add_instances, needs=["seed instances (admin API)", "instance groups"])
    run.step("read instance groups", chain.read_groups, needs=["add instances"])
    run.step("instanceGroups.aggregatedList", chain.aggregated_groups, needs=["instance groups"])
    run.step("health check", chain.create_health_check)
    run.step("backend services", chain.create_backend_services, needs=["instance groups", "health check"])
    run.step("backend health", chain.backend_health, needs=["backend services", "add instances"])
    run.step("URL map", chain.create_url_map, needs=["backend services"])
    run.step("SSL certificate", chain.create_certificate)
    run.step("target proxies", chain.create_proxies, needs=["URL map", "SSL certificate"])
    run.step("global address", chain.create_address)
    run.step("forwarding rules", chain.create_forwarding_rules, needs=["target proxies", "global address"])
    if {"forwarding rules", "backend services"} & run.failed:
        print("SKIP out-of-order deletes (the chain is incomplete)")
        run.failed.add("out-of-order deletes")
    else:
        chain.out_of_order_deletes()
    chain.teardown()

    took = time.monotonic() - started
    print()
    if run.deviations:
        print(f"{len(run.deviations)} deviation(s) from Compute in {run.checks} checks ({took:.1f}s):")
        for d in run.deviations:
            print(f"- {d}")
        return 1
    print(f"OK: the whole chain behaves as on Compute ({run.checks} checks, {took:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
