//! Leader election on a coordination.k8s.io/v1 Lease, so that of several replicas only one
//! writes to the cloud and the cluster.
//!
//! A lease is expired when its record has not changed for its duration, measured on this
//! replica's clock from when it last saw the record change (not from the `renewTime` written
//! by another machine, whose clock may differ).
//!
//! The leader's permission to write to the cloud is a [`WriteFence`] granted, on each successful
//! renewal, until the moment that renewal was sent plus the renew deadline: always before another
//! replica can take the lease (the lease duration after it saw that renewal), and running out on
//! its own should this process stall or lose the API server, whatever its tasks are doing.

use cloud::WriteFence;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Timings, as client-go's defaults.
#[derive(Clone, Copy, Debug)]
pub struct Timings {
    /// How long a lease holds without renewal.
    pub lease_duration: Duration,
    /// The leader gives up when it has not renewed for this long.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

impl Timings {
    /// The lease duration as written in the Lease (whole seconds, at least 1).
    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs())
            .unwrap_or(i32::MAX)
            .max(1)
    }

    /// Refuses timings under which a leader could write after another replica took over, or
    /// could not renew in time.
    pub fn validate(&self) -> Result<(), String> {
        if self.lease_duration < Duration::from_secs(1) || self.lease_duration.subsec_nanos() != 0 {
            return Err(format!(
                "the lease duration ({:?}) must be a whole number of seconds, at least 1s",
                self.lease_duration
            ));
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(format!(
                "the renew deadline ({:?}) must be shorter than the lease duration ({:?})",
                self.renew_deadline, self.lease_duration
            ));
        }
        if self.retry_period >= self.renew_deadline {
            return Err(format!(
                "the retry period ({:?}) must be shorter than the renew deadline ({:?})",
                self.retry_period, self.renew_deadline
            ));
        }
        Ok(())
    }
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// The lease, held and renewed in the background.
pub struct Leadership {
    election: Arc<LeaderElection>,
    stop: CancellationToken,
    lost: CancellationToken,
    renewal: Option<tokio::task::JoinHandle<()>>,
}

impl Leadership {
    /// Fires when this replica is no longer the leader: it must stop writing at once.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Stops renewing and gives the lease up (when still ours), so a standby takes over at
    /// once. The fence is closed first: nothing this process still runs may write afterwards.
    pub async fn release(mut self) {
        self.election.fence.close();
        self.stop.cancel();
        if let Some(renewal) = self.renewal.take() {
            let _ = renewal.await;
        }
        if !self.lost.is_cancelled() {
            self.election.release().await;
        }
    }
}

impl Drop for Leadership {
    /// Dropped without [`Leadership::release`] (the task running the controller ended
    /// abruptly): no more writes, no more renewals; the lease expires on its own.
    fn drop(&mut self) {
        self.election.fence.close();
        self.stop.cancel();
        if let Some(renewal) = &self.renewal {
            renewal.abort();
        }
    }
}

/// One replica's candidacy.
pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    timings: Timings,
    /// The record last seen and when it was seen changing.
    observed: tokio::sync::Mutex<Option<(LeaseSpec, Instant)>>,
    /// Granted while this replica holds the lease.
    fence: WriteFence,
}

impl LeaderElection {
    /// A candidacy that grants `fence` (which should start shut) while it leads.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timings: Timings,
        fence: WriteFence,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            timings,
            observed: tokio::sync::Mutex::new(None),
            fence,
        }
    }

    /// How long after sending a successful renewal this replica may still write: the renew
    /// deadline, and never as long as the lease others read (whole seconds) lasts.
    fn grant(&self) -> Duration {
        let written = Duration::from_secs(self.timings.lease_seconds().unsigned_abs().into());
        self.timings.renew_deadline.min(written)
    }

    /// Waits until this replica holds the lease (`None` if `cancel` fires first), then keeps
    /// renewing it in the background from that moment on.
    pub async fn lead(self, cancel: &CancellationToken) -> Option<Leadership> {
        let acquired = loop {
            let sent = Instant::now();
            match self.attempt().await {
                Ok(true) => {
                    self.fence.grant_until(sent + self.grant());
                    break sent;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election: cannot read or write the lease"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return None,
                _ = tokio::time::sleep(self.timings.retry_period) => {}
            }
        };
        tracing::info!(lease = %self.name, identity = %self.identity, "became the leader");
        let election = Arc::new(self);
        let stop = CancellationToken::new();
        let lost = CancellationToken::new();
        let renewal = tokio::spawn({
            let (election, stop, lost) = (election.clone(), stop.clone(), lost.clone());
            async move {
                if let Err(reason) = election.renew(&stop, acquired).await {
                    election.fence.close();
                    tracing::error!(reason, "lost the leadership");
                    lost.cancel();
                }
            }
        });
        Some(Leadership {
            election,
            stop,
            lost,
            renewal: Some(renewal),
        })
    }

    /// Renews the lease (acquired by a request sent at `acquired`) until `stop` fires (`Ok`), or
    /// until it could not be renewed within the renew deadline or another replica took it (`Err`).
    async fn renew(&self, stop: &CancellationToken, acquired: Instant) -> Result<(), String> {
        let mut last_renewed = acquired;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.timings.retry_period) => {}
            }
            // Measured from when the renewal was sent: the lease runs from about then.
            let sent = Instant::now();
            match self.attempt().await {
                Ok(true) => {
                    last_renewed = sent;
                    self.fence.grant_until(sent + self.grant());
                }
                Ok(false) => return Err("another replica holds the lease".to_owned()),
                Err(e) => tracing::warn!(error = %e, "leader election: renewing the lease failed"),
            }
            if last_renewed.elapsed() > self.timings.renew_deadline {
                return Err(format!(
                    "the lease was not renewed for {:?}",
                    self.timings.renew_deadline
                ));
            }
        }
    }

    /// One round, bounded in time: a hung request must not keep a leader that cannot renew.
    async fn attempt(&self) -> Result<bool, String> {
        match tokio::time::timeout(self.timings.renew_deadline, self.try_acquire_or_renew()).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.timings.renew_deadline)),
        }
    }

    /// Gives the lease up, so a standby takes over at once rather than after it expires.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(&self.identity) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => tracing::info!(lease = %self.name, "released the lease"),
            Err(e) => tracing::warn!(error = %e, "could not release the lease"),
        }
    }

    /// One round: `Ok(true)` when we hold the lease afterwards.
    async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let duration = self.timings.lease_seconds();
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_deref() == Some(&self.identity);
        if !mine && holder.is_some() && !self.expired(&spec).await {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(duration),
            acquire_time: if mine {
                spec.acquire_time
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..spec
        });
        // The resourceVersion in `lease` makes this fail if someone else wrote meanwhile.
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether another holder's record has stood unchanged for longer than its duration.
    async fn expired(&self, spec: &LeaseSpec) -> bool {
        let mut observed = self.observed.lock().await;
        let now = Instant::now();
        let seen_at = match observed.as_ref() {
            Some((s, at)) if s == spec => *at,
            _ => {
                *observed = Some((spec.clone(), now));
                now
            }
        };
        let duration =
            Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(15)).unwrap_or(15));
        now.duration_since(seen_at) > duration
    }
}
