//! The data plane: load balancers built through the REST API serve traffic on loopback, to tiny
//! backends each test runs on addresses of a loopback block of its own.
//!
//! Every wait polls a condition until a generous deadline (the machine may be busy); nothing
//! asserts how long something took. The fakes probe every 200 ms, each probe with its health
//! check's `timeoutSec` (1 s here unless a test says otherwise); a starved machine may still
//! miss a probe, so health checks here need many failures in a row (unless a test is about
//! failing), and a request expected to succeed is retried until it does, while what must never
//! happen (traffic to an unhealthy instance) is asserted on every answer.

mod health;
mod listeners;
pub(crate) mod support;
mod tls;
mod traffic;
