//! Loopback blocks: a `/24` of `127.0.0.0/8` that one process (or one fake) uses on its own.
//!
//! Linux routes the whole of `127.0.0.0/8` to the loopback interface, so any `127.A.B.C` can be
//! bound without configuration. Many test processes and fakes run at once on one machine, each
//! binding the same well-known ports (80, 443, node ports) on its own addresses; a block is
//! therefore claimed exclusively, by keeping a listener bound on its `.254` at one fixed port
//! ([`LoopbackBlock::CLAIM_PORT`]): a second claim of the same block fails to bind and moves on.
//! The claim lasts as long as the [`LoopbackBlock`] value (the socket closes with it, also when
//! the process dies).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::{SystemTime, UNIX_EPOCH};

/// A `/24` block of `127.0.0.0/8` held exclusively by this value (see the module docs):
/// `127.A.B.0/24`, never `127.0.0.0/24`. Its `.1`–`.253` are free for the holder to bind; `.254`
/// carries the claim.
#[derive(Debug)]
pub struct LoopbackBlock {
    base: Ipv4Addr,
    /// Held, never accepted on: its bind is the claim.
    _claim: TcpListener,
}

impl LoopbackBlock {
    /// The port of the claim listener on `.254` of every claimed block.
    pub const CLAIM_PORT: u16 = 47391;
    /// The host number of the claim listener.
    pub const CLAIM_HOST: u8 = 254;

    /// Claims a free block: tries every block but `127.0.0.0/24`, starting from a pseudo-random
    /// one (process id, time), so that processes starting together rarely try the same ones.
    /// Fails only if every block is taken or loopback addresses other than `127.0.0.1` cannot be
    /// bound (not Linux).
    pub fn claim() -> io::Result<LoopbackBlock> {
        let start = start_point();
        for i in 0..u16::MAX {
            // 65,535 blocks: every (A, B) but (0, 0).
            let n = start.wrapping_add(i) % u16::MAX + 1;
            let [a, b] = n.to_be_bytes();
            match Self::claim_at(Ipv4Addr::new(127, a, b, 0)) {
                Ok(block) => return Ok(block),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                // Anything else (no such address, ...) would fail for every block alike.
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "every loopback block of 127.0.0.0/8 is claimed",
        ))
    }

    /// Claims one given block, `127.A.B.0` (any host number is taken as its block). `AddrInUse`
    /// when someone holds it; `InvalidInput` for an address outside `127.0.0.0/8` or in
    /// `127.0.0.0/24` (where `127.0.0.1` lives, shared by everyone).
    pub fn claim_at(base: Ipv4Addr) -> io::Result<LoopbackBlock> {
        let base = block_base(base)?;
        let [_, a, b, _] = base.octets();
        let claim = TcpListener::bind(SocketAddr::from((
            Ipv4Addr::new(127, a, b, Self::CLAIM_HOST),
            Self::CLAIM_PORT,
        )))?;
        Ok(LoopbackBlock { base, _claim: claim })
    }

    /// `127.A.B.0`.
    pub fn base(&self) -> Ipv4Addr {
        self.base
    }

    /// `127.A.B.host`.
    pub fn ip(&self, host: u8) -> Ipv4Addr {
        let [_, a, b, _] = self.base.octets();
        Ipv4Addr::new(127, a, b, host)
    }
}

/// The block of `ip` (`127.A.B.0`), if it is a block the data plane may use.
pub(crate) fn block_base(ip: Ipv4Addr) -> io::Result<Ipv4Addr> {
    match ip.octets() {
        [127, 0, 0, _] => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "127.0.0.0/24 is shared by every process; use another block of 127.0.0.0/8",
        )),
        [127, a, b, _] => Ok(Ipv4Addr::new(127, a, b, 0)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{ip} is not in 127.0.0.0/8"),
        )),
    }
}

/// Where a claim starts looking: mixes the process id and the clock through a randomly keyed
/// hasher, so that parallel test processes spread over the blocks.
fn start_point() -> u16 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    h.write_u128(nanos);
    let [a, b, ..] = h.finish().to_le_bytes();
    u16::from_le_bytes([a, b])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_exclusive_and_never_the_shared_one() {
        let first = LoopbackBlock::claim().expect("a free block");
        assert_ne!(first.base().octets()[..3], [127, 0, 0]);
        assert_eq!(first.ip(7), {
            let [_, a, b, _] = first.base().octets();
            Ipv4Addr::new(127, a, b, 7)
        });
        let again = LoopbackBlock::claim_at(first.base()).expect_err("held");
        assert_eq!(again.kind(), io::ErrorKind::AddrInUse);
        let second = LoopbackBlock::claim().expect("another block");
        assert_ne!(first.base(), second.base());
        let base = first.base();
        drop(first);
        LoopbackBlock::claim_at(base).expect("free again once dropped");
    }

    #[test]
    fn only_loopback_blocks_outside_the_first() {
        for bad in [Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(10, 1, 2, 0)] {
            assert_eq!(
                block_base(bad).expect_err("refused").kind(),
                io::ErrorKind::InvalidInput
            );
        }
        assert_eq!(
            block_base(Ipv4Addr::new(127, 3, 4, 9)).ok(),
            Some(Ipv4Addr::new(127, 3, 4, 0))
        );
    }
}
